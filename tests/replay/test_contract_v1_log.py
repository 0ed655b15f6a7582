"""Stored events are forever: a log exported by the code of contract version 1 (before the
house was rebuilt) imports, verifies and replays to the same answers on both stores."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from entry.cli import main
from ledger.application import Ledger
from ledger.domain.pricing import StoredExchange, StoredGift
from ledger.domain.redemption import RedemptionRecorded
from ledger.settings import Settings
from tests.conftest import ADMIN_KEY, TEST_MASTER_KEY
from tests.polling import caught_up

pytestmark = pytest.mark.integration
FIXTURE = Path(__file__).parent.parent / "fixtures" / "contract-v1"
EXPECTED: dict[str, Any] = json.loads((FIXTURE / "expected.json").read_text())
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def imported(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The fixture log imported into the test's empty store, its views rebuilt."""
    log = tmp_path / "log.jsonl"
    with gzip.open(FIXTURE / "log.jsonl.gz") as packed, log.open("wb") as out:
        shutil.copyfileobj(packed, out)
    shutil.copy(FIXTURE / "log.jsonl.keys", tmp_path / "log.jsonl.keys")
    monkeypatch.setenv("LEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LEDGER_MASTER_KEY", TEST_MASTER_KEY.hex())
    assert main(["import", str(log)]) == 0
    assert main(["rebuild"]) == 0
    return settings


def test_the_old_log_verifies_clean(imported: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "intact" in out
    assert "digests of 2 closed months: match" in out


def _subset(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` differs from `expected` (fields `actual` has beyond it are new, not wrong)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {actual!r} is not an object"]
        return [d for k, v in expected.items() for d in _subset(v, actual.get(k), f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {actual!r} is not {expected!r}"]
        return [
            d
            for n, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in _subset(e, a, f"{path}[{n}]")
        ]
    return [] if expected == actual else [f"{path}: {actual!r}, expected {expected!r}"]


def test_the_old_log_replays_to_the_same_answers(imported: Settings) -> None:
    with TestClient(create_app(imported)) as client:
        caught_up(client)
        as_of = EXPECTED["as_of"]
        for card, want in EXPECTED["members"].items():
            got = client.get(f"/v1/members/{card}/balance", params={"as_of": as_of}, headers=ADMIN)
            assert got.status_code == 200, got.text
            body = got.json()
            body["lots"] = len(body["lots"])
            assert _subset(want, body) == [], card
        for period, want in EXPECTED["settlements"].items():
            got = client.get(f"/v1/settlements/{period}", headers=ADMIN)
            assert got.status_code == 200, got.text
            assert _subset(want, got.json()) == [], period
        liability = client.get("/v1/liability", params={"as_of": as_of}, headers=ADMIN)
        assert _subset(EXPECTED["liability"], liability.json()) == []
        history = client.get("/v1/members/FX000101/history", params={"limit": 200}, headers=ADMIN)
        items = [
            [i["type"], i["points_delta"], i["balance_after"]] for i in history.json()["items"]
        ]
        assert items == EXPECTED["history_FX000101"]


def test_old_gift_and_exchange_requests_decode_and_keep_their_stated_cost(
    imported: Settings,
) -> None:
    """Contract version 1's gifts (`gift_sku`, `cost_fen`) and exchanges (`cash_price_fen`,
    `cost_fen`) stated their own cost; contract version 2 takes it from the catalogue. The
    stored requests still decode as they were posted, and each keeps the cost it stated."""
    ledger = Ledger(imported)
    try:
        recorded = [
            e for e in ledger.core.stored(RedemptionRecorded) if isinstance(e, RedemptionRecorded)
        ]
    finally:
        ledger.close()
    old = [e for e in recorded if isinstance(e.request, StoredGift | StoredExchange)]
    assert StoredGift in {type(e.request) for e in old}  # the fixture holds gifts
    for event in old:
        request = event.request
        assert isinstance(request, StoredGift | StoredExchange)
        assert request.cost_fen == event.cost_fen == event.receipt.cost_fen
        assert request.points == event.receipt.points_redeemed + event.receipt.points_held
    gifts = [e.request for e in old if isinstance(e.request, StoredGift)]
    assert all(g.gift_sku and g.sku is None for g in gifts)
