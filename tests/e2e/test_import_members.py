"""Migration (SPEC 2.11, issue 16) on both stores: `ledger import-members` run as a subprocess
against the service's database, and what it brought in read back over HTTP — balances, lots and
their expiry, tier and stored value, history, liability, settlement, a tier review — plus every
kind of bad line, re-runs (unchanged, conflicting), a dry run, CSV input and a run killed
mid-file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from ledger.domain import ids
from ledger.policies.lots import expires_at
from ledger.policies.ruleset import RuleSet
from ledger.settings import Settings
from replay_tools.tamper import check_chains, plain, stored_rows
from replay_tools.whatif import what_if
from tests.chain import ADMIN, STEADY, Chain
from tests.conftest import TEST_MASTER_KEY
from tests.e2e.conftest import Clock
from tests.polling import caught_up, wait_until

pytestmark = pytest.mark.e2e
NOW = datetime.now(UTC)
ID_1 = "110101199001011237"  # valid (GB 11643)
ID_2 = "11010519491231002X"
RULES = msgspec.convert(STEADY | {"effective_from": "2020-01-01T00:00:00+08:00"}, RuleSet)


def _at(**delta: float) -> str:
    return (NOW + timedelta(**delta)).isoformat()


def _month(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).astimezone(RULES.zone).strftime("%Y-%m")


def run_import(
    settings: Settings, *args: str | Path, timeout: float = 120
) -> tuple[int, dict[str, int], str]:
    """`ledger import-members ARGS` against the test's store: exit code, summary, stderr."""
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "ledger", "import-members", *map(str, args)],
        env=_env(settings),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    stdout = done.stdout.decode().strip().splitlines()
    assert stdout, done.stderr.decode()
    return done.returncode, json.loads(stdout[-1]), done.stderr.decode()


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_ADMIN_KEY")}
    return env | {
        "LEDGER_DATABASE_URL": settings.database_url,
        "LEDGER_MASTER_KEY": TEST_MASTER_KEY.hex(),
    }


def member_line(card: str, **fields: Any) -> dict[str, Any]:
    return {
        "member_id": card,
        "store_id": "S1",
        "enrolled_at": "2019-05-04T10:00:00+08:00",
        "source_ref": f"crm-{card}",
    } | fields


def write_lines(path: Path, lines: Sequence[object]) -> Path:
    path.write_text(
        "".join(
            (x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines
        ),
        encoding="utf-8",
    )
    return path


GOLD = member_line(
    "8800000001",
    name="张三",
    phone="13800000000",
    id_number=ID_1,
    birthday="1990-01-01",
    tier="gold",
    tier_spend=[{"month": _month(60), "spend_fen": 1_200_000}],
    lots=[
        {"points": 300, "earned_at": _at(days=-60), "expires_at": _at(days=300)},
        {"points": 200, "earned_at": _at(days=-100)},  # expiry by the rules
        {"points": 100, "earned_at": _at(days=-400)},  # due already: not imported
    ],
    stored_value_fen=1500,
)
EARLY = member_line(  # a lot from before the first rule version, and one earned this month
    "8800000002",
    lots=[
        {"points": 1000, "earned_at": "2019-06-01T10:00:00+08:00", "expires_at": _at(days=500)},
        {"points": 50, "earned_at": _at(minutes=-30)},
    ],
)
FALLEN = member_line(  # gold, but its spend is older than the review's window
    "8800000003", tier="gold", tier_spend=[{"month": _month(900), "spend_fen": 5_000_000}]
)
CLOSE = member_line(  # 50 yuan short of silver: one sale lifts it
    "8800000004", tier="normal", tier_spend=[{"month": _month(40), "spend_fen": 195_000}]
)
BAD: list[Any] = [
    "{not json",
    member_line("8800000011", colour="red"),
    member_line("8800000012", id_number="110101199001011238"),
    member_line("8800000013", store_id="S9"),
    member_line("8800000014", tier="platinum"),
    member_line("8800000015", enrolled_at="1985-01-01T00:00:00+08:00"),
    member_line(
        "8800000016",
        lots=[{"points": 5, "earned_at": _at(days=-10), "expires_at": _at(days=-20)}],
    ),
    member_line("8800000017", id_number=ID_1),  # the GOLD member's ID number
]
REASONS = [
    "invalid-input",
    "invalid-input",
    "invalid-id-number",
    "store-not-found",
    "invalid-input",
    "invalid-input",
    "invalid-input",
    "id-number-taken",
]


@pytest.fixture
def ready(chain: Chain) -> Chain:
    chain.standard()
    assert chain.enrol("M1").status_code == 201  # enrolled here: its import line is a conflict
    assert chain.enrol("M2", id_number=ID_2).status_code == 201
    erased = chain.client.post("/v1/members/M2/erase", json={"reason": "asked"}, headers=ADMIN)
    assert erased.status_code == 201, erased.text
    return chain


def test_import_a_realistic_file(ready: Chain, settings: Settings, tmp_path: Path) -> None:
    lines = [GOLD, EARLY, *BAD, FALLEN, CLOSE, member_line("M1"), member_line("M2", id_number=ID_2)]
    path = write_lines(tmp_path / "members.jsonl", lines)
    code, summary, stderr = run_import(settings, path)
    assert (code, summary) == (
        1,
        {"imported": 4, "unchanged": 0, "conflicts": 2, "rejected": 8, "expired_on_import": 1},
    ), stderr
    for number, reason in zip(range(3, 11), REASONS, strict=True):
        assert f"line {number}: " in stderr and reason in stderr.split(f"line {number}: ")[1]
    client, pos = ready.client, ready.pos()
    gold = ready.member("8800000001")
    assert (gold["points"], gold["stored_value_fen"], gold["tier"]) == (500, 1500, "gold")
    computed = expires_at(RULES, datetime.fromisoformat(GOLD["lots"][1]["earned_at"]))
    assert [(e["points"], datetime.fromisoformat(e["expires_at"])) for e in gold["expiring"]] == [
        (200, computed),
        (300, datetime.fromisoformat(GOLD["lots"][0]["expires_at"])),
    ]
    for card in ("8800000011", "8800000017"):  # nothing of a rejected member
        assert client.get(f"/v1/members/{card}", headers=pos).status_code == 404
    found = cast(Any, client).app.state.ledger.members.with_phone(
        "+86 138-0000-0000"
    )  # the index row
    assert found == [
        ids.member_id("8800000001")
    ]  # (GET /v1/members?phone= is issue 16's other part)

    caught_up(client)
    history = client.get("/v1/members/8800000001/history", headers=ready.service()).json()
    types = [item["type"] for item in history["items"]]
    assert sorted(types) == ["MemberImported", "OpeningLotImported", "OpeningLotImported"]
    assert all("crm-8800000001" in item["explanation"] for item in history["items"])
    assert history["items"][0]["balance_after"] == 500
    liability = client.get("/v1/liability", headers=ready.finance()).json()
    assert liability["points"] == 500 + 1050
    assert liability["value_fen"] == (500 + 1050) * 3  # each lot at its version's cost
    assert liability["stored_value_fen"] == 1500

    # A sale counts the imported tier spend: 195,000 + 10,000 fen reaches silver.
    sale = ready.sale("R1", member_id="8800000004")
    assert sale.status_code == 201, sale.text
    assert (sale.json()["tier_changed"], sale.json()["tier"]) == (True, "silver")
    ledger = cast(Any, client).app.state.ledger
    revalued = what_if(ledger, RULES, NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert (revalued.totals.sales, revalued.totals.points_earned) == (1, 100)  # an imported member
    caught_up(client)
    period = NOW.astimezone(RULES.zone).strftime("%Y-%m")
    report = client.get(f"/v1/settlements/{period}", headers=ready.finance()).json()
    s1 = next(row for row in report["rows"] if row["store_id"] == "S1")
    assert (s1["points_issued"], s1["fee_due_fen"]) == (100, 300)  # the sale only, not the import

    # A review judges the imported months like sales: FALLEN's are too old, GOLD's hold.
    review = client.post("/v1/admin/tier-reviews", json={"as_of": _at(minutes=-1)}, headers=ADMIN)
    assert review.status_code == 200, review.text
    assert review.json()["downgraded"] == 1
    assert (ready.member("8800000003")["tier"], ready.member("8800000001")["tier"]) == (
        "normal",
        "gold",
    )
    assert check_chains(stored_rows(ledger), plain(ledger)).broken == 0


def test_rerun_is_unchanged_and_a_changed_line_a_conflict(
    ready: Chain, settings: Settings, tmp_path: Path
) -> None:
    path = write_lines(tmp_path / "members.jsonl", [GOLD, EARLY, BAD[2]])
    assert run_import(settings, path)[:2] == (
        1,
        {"imported": 2, "unchanged": 0, "conflicts": 0, "rejected": 1, "expired_on_import": 1},
    )
    assert run_import(settings, path)[:2] == (
        1,
        {"imported": 0, "unchanged": 2, "conflicts": 0, "rejected": 1, "expired_on_import": 0},
    )
    changed = write_lines(tmp_path / "changed.jsonl", [GOLD | {"stored_value_fen": 1600}])
    assert run_import(settings, changed)[:2] == (
        0,
        {"imported": 0, "unchanged": 0, "conflicts": 1, "rejected": 0, "expired_on_import": 0},
    )
    assert ready.member("8800000001")["stored_value_fen"] == 1500
    erased = ready.client.post(
        "/v1/members/8800000001/erase", json={"reason": "asked"}, headers=ADMIN
    )
    assert erased.status_code == 201
    assert run_import(settings, path)[1]["conflicts"] == 2 - 1  # erased: its fingerprint is gone

    fresh = write_lines(tmp_path / "fresh.jsonl", [member_line("8800000009", stored_value_fen=9)])
    assert run_import(settings, fresh, "--dry-run")[:2] == (
        0,
        {"imported": 1, "unchanged": 0, "conflicts": 0, "rejected": 0, "expired_on_import": 0},
    )
    assert ready.client.get("/v1/members/8800000009", headers=ready.pos()).status_code == 404


def test_csv_files_import_like_their_json_lines(
    ready: Chain, settings: Settings, tmp_path: Path
) -> None:
    members = tmp_path / "members.csv"
    members.write_text(
        "\ufeffmember_id,store_id,enrolled_at,source_ref,name,phone,id_number,birthday,tier,"
        "tier_spend,stored_value_fen\n"
        f"8800000001,S1,2019-05-04T10:00:00+08:00,crm-8800000001,张三,13800000000,{ID_1},"
        f"1990-01-01,gold,{_month(60)}:1200000,1500\n"
        "8800000021,S1,2019-05-04T10:00:00+08:00,crm-8800000021,,,,,,,\n"
        "8800000022,S1,not a time,crm-8800000022,,,,,,,\n",
        encoding="utf-8",
    )
    lots = tmp_path / "lots.csv"
    rows = "".join(
        f"8800000001,{lot['points']},{lot['earned_at']},{lot.get('expires_at', '')}\n"
        for lot in GOLD["lots"]
    )
    lots.write_text(f"member_id,points,earned_at,expires_at\n{rows}8800000021,7,{_at(days=-1)},\n")
    code, summary, stderr = run_import(settings, members, "--lots", lots)
    assert (code, summary["imported"], summary["rejected"]) == (1, 2, 1), stderr
    assert "line 4: 8800000022: invalid-input" in stderr
    assert ready.member("8800000001")["points"] == 500
    assert ready.member("8800000021")["points"] == 7
    again = write_lines(tmp_path / "gold.jsonl", [GOLD])  # the same member as a JSON line
    assert run_import(settings, again)[1]["unchanged"] == 1


def test_a_run_killed_mid_file_imports_every_member_once_when_run_again(
    ready: Chain, settings: Settings, tmp_path: Path
) -> None:
    count = 6000
    lots = [{"points": 10, "earned_at": _at(days=-5)}, {"points": 5, "earned_at": _at(days=-4)}]
    lines = [  # 400 members with their lots: PostgreSQL's bulk insert (1,000 events or more)
        member_line(f"77{n:08d}", phone=f"139{n:08d}", lots=lots) for n in range(count)
    ]
    path = write_lines(tmp_path / "big.jsonl", lines)
    first = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "ledger", "import-members", str(path)],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client, pos = ready.client, ready.pos()
    try:
        wait_until(
            lambda: client.get("/v1/members/7700000000", headers=pos).status_code == 200,
            timeout=60,
            what="the first batch committed",
        )
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL  # killed, not finished
    code, summary, _ = run_import(settings, path, timeout=300)
    assert code == 0
    assert summary["imported"] + summary["unchanged"] == count
    assert summary["unchanged"] > 0 and summary["imported"] > 0
    caught_up(client, timeout=120)
    liability = client.get("/v1/liability", headers=ready.finance()).json()
    assert (liability["points"], liability["members"]) == (15 * count, count)
    ledger = cast(Any, client).app.state.ledger
    assert ledger.members.with_phone("13900000042") == [ids.member_id("7700000042")]
    assert check_chains(stored_rows(ledger), plain(ledger)).broken == 0


def test_imported_lots_expire_in_the_expiry_run(
    ready: Chain, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    path = write_lines(tmp_path / "members.jsonl", [EARLY])
    assert run_import(settings, path)[1]["imported"] == 1
    caught_up(ready.client)  # the members view holds the imported lots the run looks for
    clock.advance(days=400)  # past the rules' expiry of the lot earned today, not the other's
    as_of = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    run = ready.client.post("/v1/admin/expiry-runs", json={"as_of": as_of}, headers=ADMIN)
    assert run.status_code == 200, run.text
    assert (run.json()["lots_expired"], run.json()["points_expired"]) == (1, 50)
    assert ready.member("8800000002")["points"] == 1000
    caught_up(ready.client)
    history = ready.client.get(
        "/v1/members/8800000002/history", headers=ready.service(), params={"type": "PointsExpired"}
    ).json()
    assert "crm-8800000002" in history["items"][0]["explanation"]
