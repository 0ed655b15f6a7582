"""Personal data over HTTP: sealed at rest, exported with every read logged, crypto-shredded by
erasure while the points stay; master key handling and rotation."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from litestar.testing import TestClient

from api.app import create_app
from entry.cli import main as cli_main
from ledger.application import Ledger
from ledger.domain.model import now_utc
from ledger.infrastructure.vault import KeyUnreadable
from ledger.settings import ConfigError, Settings
from tests.chain import ADMIN, Chain
from tests.polling import caught_up

pytestmark = pytest.mark.e2e

PERSON = {
    "name": "张三",
    "phone": "13800138000",
    "id_number": "11010519491231002x",
    "birthday": "1980-05-17",
}


def _log_bytes(ledger: Ledger) -> bytes:
    """The stored log, its hex digests (hash chains, fingerprints) blanked: '1980' may be in
    one by chance, and a digest is not the value in clear."""
    log = b"".join(n.state for n in ledger.core.recorder.select_notifications(1, 10_000))
    return re.sub(rb"[0-9a-f]{64}", b"<digest>", log)


def _clear_forms(value: str) -> list[bytes]:
    return [value.encode(), json.dumps(value).encode().strip(b'"')]


def test_personal_data_is_sealed_in_the_log(chain: Chain, client: TestClient[Any]) -> None:
    chain.standard()
    assert chain.enrol("M1", **PERSON).status_code == 201
    log = _log_bytes(client.app.state.ledger)
    for value in (*PERSON.values(), PERSON["id_number"].upper(), "1980"):
        for form in _clear_forms(value):
            assert form not in log, f"{value!r} is in the log in clear"
    wrapped = client.app.state.ledger.core.keys.get(client.app.state.ledger.members.key("M1"))
    assert isinstance(wrapped, bytes)
    assert len(wrapped) == 12 + 32 + 16  # nonce, AES-256 key, GCM tag: the key is wrapped


def test_export_decrypts_and_every_read_is_logged(chain: Chain, client: TestClient[Any]) -> None:
    chain.standard()
    chain.enrol("M1", **PERSON)
    assert chain.sale("R1", member_id="M1").status_code == 201
    service = chain.service()
    assert client.get("/v1/members/M1/export", headers=chain.pos()).status_code == 403

    first = client.get("/v1/members/M1/export", headers=service)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["personal"] == {
        "status": "held",
        "data": PERSON | {"id_number": PERSON["id_number"].upper()},
    }
    assert [e["type"] for e in body["events"]] == ["MemberEnrolled", "PointsAccrued"]
    assert "sealed" not in body["events"][0]["data"]
    assert body["events"][1]["data"]["reference"] == "R1"
    assert body["member"]["points"] == chain.member("M1")["points"]
    keys = client.get("/v1/admin/api-keys", headers=ADMIN).json()
    service_id = next(k["key_id"] for k in keys if k["role"] == "service")
    assert [(a["key_id"], a["role"], a["purpose"]) for a in body["accesses"]] == [
        (service_id, "service", "export")
    ]
    again = client.get("/v1/members/M1/export", headers=service).json()
    assert len(again["accesses"]) == 2

    assert chain.enrol("M2").status_code == 201  # no personal data: nothing to read, no read
    plain = client.get("/v1/members/M2/export", headers=service).json()
    assert plain["personal"] == {"status": "none"}
    assert plain["accesses"] == []
    assert client.get("/v1/members/NOPE/export", headers=service).status_code == 404


def test_erasure_shreds_personal_data_and_keeps_the_points(
    chain: Chain, client: TestClient[Any], settings: Settings
) -> None:
    chain.standard()
    chain.enrol("M1", **PERSON)
    chain.sale("R1", member_id="M1")
    before = chain.member("M1")
    service = chain.service()

    assert (
        client.post("/v1/members/M1/erase", json={"reason": "x"}, headers=service).status_code
        == 403
    )
    assert client.post("/v1/members/M1/erase", json={}, headers=ADMIN).status_code in (400, 422)
    erased = client.post("/v1/members/M1/erase", json={"reason": "member asked"}, headers=ADMIN)
    assert erased.status_code == 201, erased.text
    replay = client.post("/v1/members/M1/erase", json={"reason": "again"}, headers=ADMIN)
    assert replay.status_code == 200
    assert replay.json() == erased.json()
    assert erased.json()["reason"] == "member asked"

    ledger: Ledger = client.app.state.ledger
    assert ledger.core.keys.get(ledger.members.key("M1")) == "erased"
    export = client.get("/v1/members/M1/export", headers=service).json()
    assert export["personal"] == {"status": "erased"}
    assert [e["type"] for e in export["events"]][-1] == "MemberErased"
    after = chain.member("M1")
    assert after["personal_data_erased"] is True
    assert {k: v for k, v in after.items() if k != "personal_data_erased"} == {
        k: v for k, v in before.items() if k != "personal_data_erased"
    }
    assert chain.sale("R2", member_id="M1").status_code == 201  # the card goes on earning

    caught_up(client)
    history = client.get("/v1/members/M1/history", headers=service).json()["items"]
    assert [i["type"] for i in history] == [
        "PointsAccrued",
        "MemberErased",
        "PointsAccrued",
        "MemberEnrolled",
    ]
    assert history[1]["points_delta"] == 0

    # Another process with the same master key cannot read it either: the key is gone.
    other = Ledger(settings)
    try:
        principal = ledger.access.authenticate(service["Authorization"].removeprefix("Bearer "))
        assert principal is not None
        record = other.personal.read("M1", principal, "export", now_utc())
        assert record.status == "erased"
    finally:
        other.close()


def test_api_keys_rotate_and_revoke(chain: Chain, client: TestClient[Any]) -> None:
    chain.standard()
    issued = client.post(
        "/v1/admin/api-keys",
        json={"role": "pos", "store_id": "S1", "holder": "till 1"},
        headers=ADMIN,
    )
    old = issued.json()
    old_auth = {"Authorization": f"Bearer {old['key']}"}
    assert client.get("/v1/rules/current", headers=old_auth).status_code == 200

    rotated = client.post(f"/v1/admin/api-keys/{old['key_id']}/rotate", headers=ADMIN)
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert (new["role"], new["store_id"], new["replaces"]) == ("pos", "S1", old["key_id"])
    new_auth = {"Authorization": f"Bearer {new['key']}"}
    assert client.get("/v1/rules/current", headers=old_auth).status_code == 401
    chain.keys["S1"] = new_auth
    chain.enrol("M1")
    sale = chain.sale("R1", member_id="M1")
    assert sale.status_code == 201

    listed = {k["key_id"]: k for k in client.get("/v1/admin/api-keys", headers=ADMIN).json()}
    assert listed[old["key_id"]]["revoked"] is True
    assert listed[old["key_id"]]["replaced_by"] == new["key_id"]
    assert listed[new["key_id"]]["revoked"] is False
    assert "key" not in listed[new["key_id"]]
    again = client.post(f"/v1/admin/api-keys/{old['key_id']}/rotate", headers=ADMIN)
    assert again.status_code == 409
    assert again.json()["type"].endswith("api-key-revoked")

    revoked = client.delete(
        f"/v1/admin/api-keys/{new['key_id']}", params={"reason": "till stolen"}, headers=ADMIN
    )
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["revoked"], revoked.json()["reason"]) == (True, "till stolen")
    assert client.get("/v1/rules/current", headers=new_auth).status_code == 401
    assert (
        client.delete(f"/v1/admin/api-keys/{new['key_id']}", headers=ADMIN).json()["reason"]
        == "till stolen"
    )
    assert client.delete("/v1/admin/api-keys/not-a-key", headers=ADMIN).status_code == 404
    member_uuid = str(client.app.state.ledger.members.key("M1"))
    assert client.delete(f"/v1/admin/api-keys/{member_uuid}", headers=ADMIN).status_code == 404
    assert (
        client.delete(f"/v1/admin/api-keys/{old['key_id']}", headers=chain.service()).status_code
        == 403
    )

    caught_up(client)
    entry = client.get("/v1/members/M1/history", headers=chain.service()).json()["items"][0]
    assert entry["operator"]["key_id"] == new["key_id"]  # the key's identity is on the event
    assert entry["operator"]["holder"] == "till 1"  # a rotation keeps the holder


def test_production_needs_a_master_key(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="LEDGER_MASTER_KEY is required"):
        Settings.from_env({"LEDGER_ENV": "production"})
    with pytest.raises(ConfigError, match="64 hex digits"):
        Settings.from_env({"LEDGER_MASTER_KEY": "not-hex"})
    key_file = tmp_path / "dev.key"
    dev = Settings.from_env({"LEDGER_MASTER_KEY_FILE": str(key_file)})
    assert len(dev.master_key) == 32
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert Settings.from_env({"LEDGER_MASTER_KEY_FILE": str(key_file)}).master_key == dev.master_key


def test_master_key_rotation_rewraps_every_member_key(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        chain = Chain(client).standard()
        chain.enrol("M1", **PERSON)
        chain.enrol("M2", name="李四")
        service = chain.service()
    rotated = Settings(
        database_url=settings.database_url,
        admin_key=settings.admin_key,
        master_key=bytes.fromhex("22" * 32),
    )
    ledger = Ledger(rotated)
    try:
        principal = ledger.access.authenticate(service["Authorization"].removeprefix("Bearer "))
        assert principal is not None
        with pytest.raises(KeyUnreadable):
            ledger.personal.read("M1", principal, "export", now_utc())
        # M1's and M2's keys, and the identity index's own secret
        assert ledger.personal.rewrap_keys(settings.master_key) == 3
        assert ledger.personal.rewrap_keys(settings.master_key) == 0  # a rerun skips them
        record = ledger.personal.read("M2", principal, "export", now_utc())
        assert record.data is not None
        assert record.data.name == "李四"
    finally:
        ledger.close()


def test_after_an_erasure_verify_finds_every_chain_and_view_intact(
    chain: Chain,
    client: TestClient[Any],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chain.standard()
    chain.enrol("M1", **PERSON)
    chain.sale("R1", member_id="M1")
    assert (
        client.post("/v1/members/M1/erase", json={"reason": "asked"}, headers=ADMIN).status_code
        == 201
    )
    chain.sale("R2", member_id="M1")
    caught_up(client)
    monkeypatch.setenv("LEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LEDGER_MASTER_KEY", settings.master_key.hex())
    assert cli_main(["verify"]) == 0
    out = capsys.readouterr().out
    assert "intact" in out and "identical to a replay" in out
