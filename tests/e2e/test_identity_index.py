"""The identity index beside the log (SPEC 2.8), on both stores: ID numbers checked (GB 11643),
one member per person even under a race and across a master key rotation, the birthday
multiplier reading the index, and erasure that forgets (a scan of every table and every stored
event finds nothing derived from the ID number, the phone or the birthday)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from litestar.testing import TestClient

from api.app import create_app
from entry.cli import main
from ledger.application import Ledger
from ledger.domain import ids
from ledger.domain.commands import EnrolMember, RegisterStore
from ledger.domain.errors import IdNumberTaken
from ledger.domain.member import MemberEnrolled
from ledger.settings import Settings
from tests.chain import ADMIN, STEADY, Chain
from tests.conftest import TEST_MASTER_KEY
from tests.polling import caught_up

pytestmark = pytest.mark.e2e

ID_NUMBER = "11010519491231002X"
PERSON = {"name": "张三", "phone": "+86 138-0013-8000", "id_number": ID_NUMBER}
NOW = datetime(2026, 5, 1, 10, tzinfo=UTC)


@pytest.fixture
def ready(chain: Chain) -> Chain:
    return chain.standard()


def _erase(chain: Chain, card: str) -> None:
    response = chain.client.post(
        f"/v1/members/{card}/erase", json={"reason": "asked"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "number",
    ["110105194913310028", "110105194912450021", "11010519491231002Y", "110105194912310021"],
)
def test_a_bad_id_number_is_422_invalid_id_number(ready: Chain, number: str) -> None:
    """Finding 7: month 13, day 45, a bad check character, a wrong check digit: all enrolled."""
    response = ready.enrol("M1", id_number=number)
    assert response.status_code == 422, response.text
    assert (response.json()["type"], response.json()["field"]) == ("invalid-id-number", "id_number")


def test_the_15_digit_form_of_an_enrolled_number_is_taken(ready: Chain) -> None:
    assert ready.enrol("M1", id_number="110101199003071233").status_code == 201
    second = ready.enrol("M2", id_number="110101900307123")
    assert (second.status_code, second.json()["type"]) == (409, "id-number-taken")


def _tables(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the ledger's database holds (on SQLite: every file of it)."""
    url = settings.database_url
    found: dict[str, list[tuple[Any, ...]]] = {}
    if url.startswith("sqlite"):
        folder = Path(url.removeprefix("sqlite:///")).parent
        for path in folder.glob("*.db"):
            with sqlite3.connect(path) as db:
                names = [
                    r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                ]
                for name in names:
                    found[f"{path.name}:{name}"] = db.execute(f'SELECT * FROM "{name}"').fetchall()  # noqa: S608
        return found
    base, schema = url.split("?schema=")
    with psycopg.connect(base) as db:
        names = [
            r[0]
            for r in db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
        ]
        for name in names:
            found[name] = db.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()  # noqa: S608
    return found


def _holds(value: Any, needle: str) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return needle.encode() in bytes(value)
    return needle in str(value)


def test_erasure_forgets_the_person_and_the_number_enrols_again(
    ready: Chain, client: TestClient[Any], settings: Settings
) -> None:
    """Finding 3: after erasure the ID-number hash and the birthday stayed in the log, the
    number stayed taken, and re-posting the enrolment replayed 200."""
    body = PERSON | {"birthday": "1980-02-29"}
    assert ready.enrol("M1", **body).status_code == 201
    assert ready.sale("R1", member_id="M1").status_code == 201
    ledger: Ledger = client.app.state.ledger
    member = ids.member_id("M1")
    row = ledger.core.identities.row(member)
    assert row is not None and row.id_hash and row.phone_hash and row.fingerprint
    assert row.birthday == "02-29"
    old_secret = ids.keyed_hash(TEST_MASTER_KEY, "key", "id-number").encode()
    derived = {
        "id hash": row.id_hash,
        "phone hash": row.phone_hash,
        "personal fingerprint": row.fingerprint,
        "id hash of the old kind": ids.keyed_hash(old_secret, "id-number", ID_NUMBER),
    }
    _erase(ready, "M1")
    caught_up(client)

    assert ledger.core.identities.row(member) is None
    tables = _tables(settings)
    for table, rows in tables.items():
        for cells in rows:
            for what, value in derived.items():
                assert not any(_holds(c, value) for c in cells), f"{what} in {table}"
            if table.endswith("member_identity"):
                pytest.fail(f"a row is left in {table}: {cells}")
    events = ledger.core.recorder.select_notifications(1, 100_000)
    for notification in events:
        state = notification.state
        for what, value in derived.items():
            assert value.encode() not in state, f"{what} in a stored {notification.topic}"
        assert b'"02-29"' not in state, f"the birthday in a stored {notification.topic}"
    print(  # the figures for the report (pytest -s)
        f"after erasure: {len(tables)} tables ({sum(map(len, tables.values()))} rows) and "
        f"{len(events)} stored events scanned for {len(derived)} values derived from the ID "
        "number and phone, and for the birthday: none found"
    )

    again = ready.enrol("M1", **body)  # the original request: no replay that confirms it
    assert (again.status_code, again.json()["type"]) == (409, "member-erased")
    other = ready.enrol("M1")
    assert (other.status_code, other.json()["type"]) == (409, "member-erased")
    assert ready.enrol("M2", **body).status_code == 201  # the same person, on another card
    assert ready.sale("R2", member_id="M1").status_code == 201  # the card goes on earning


def test_an_identical_enrolment_replays_and_another_body_is_a_conflict(ready: Chain) -> None:
    assert ready.enrol("M1", **PERSON).status_code == 201
    assert ready.enrol("M1", **PERSON).status_code == 200
    other = ready.enrol("M1", **(PERSON | {"name": "李四"}))
    assert (other.status_code, other.json()["type"]) == (409, "member-exists")


def test_the_same_id_number_enrolled_at_once_on_many_cards_is_one_201_and_409s(
    settings: Settings,
) -> None:
    """A race on the index's unique key surfaces as 409 `id-number-taken`, never a 503."""
    ledger = Ledger(settings)
    ledger.access.configure_store("S1", RegisterStore(name="One", kind="direct"), "t")
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def enrol(n: int) -> None:
        start.wait()
        try:
            ledger.members.enrol(
                EnrolMember(member_id=f"M{n}", store_id="S1", id_number=ID_NUMBER),
                "t",
                datetime.now(UTC),
            )
        except IdNumberTaken:
            outcomes.append("taken")
        except Exception as e:  # a 503 or anything else fails the test below
            outcomes.append(type(e).__name__)
        else:
            outcomes.append("enrolled")

    try:
        threads = [threading.Thread(target=enrol, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        ledger.close()
    assert sorted(outcomes) == ["enrolled"] + ["taken"] * 7


def test_after_a_master_key_rotation_the_number_is_still_taken(settings: Settings) -> None:
    """Finding 9: the uniqueness hash's secret derived from the master key."""
    with TestClient(create_app(settings)) as client:
        chain = Chain(client).standard()
        assert chain.enrol("M1", id_number=ID_NUMBER).status_code == 201
    new_master = bytes.fromhex("22" * 32)
    rotated = Ledger(Settings(database_url=settings.database_url, master_key=new_master))
    try:
        assert rotated.personal.rewrap_keys(settings.master_key) == 2  # M1's key, the index's
        with pytest.raises(IdNumberTaken):
            rotated.members.enrol(
                EnrolMember(member_id="M2", store_id="S1", id_number=ID_NUMBER), "t", NOW
            )
    finally:
        rotated.close()


def _birthday_rules() -> dict[str, Any]:
    rules = dict(STEADY)
    rules["accrual"] = STEADY["accrual"] | {"birthday": {"multiplier": "2"}}
    return rules


def test_the_birthday_multiplier_reads_the_index_and_stops_at_erasure(chain: Chain) -> None:
    chain.standard(_birthday_rules())
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert chain.enrol("M1", birthday=today.replace(year=1980).isoformat()).status_code == 201
    doubled = chain.sale("R1").json()
    assert [f["kind"] for f in doubled["factors"] if f["applied"]] == ["birthday"]
    _erase(chain, "M1")
    plain = chain.sale("R2").json()
    assert plain["points_earned"] * 2 == doubled["points_earned"]


def test_a_member_enrolled_before_the_index_keeps_their_birthday_until_erased(
    chain: Chain, client: TestClient[Any]
) -> None:
    """Old `MemberEnrolled` events carry the birthday: the valuation still reads it from there
    (there is no index row), and never once the member is erased."""
    chain.standard(_birthday_rules())
    ledger: Ledger = client.app.state.ledger
    today = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%m-%d")
    ledger.core.save(
        MemberEnrolled(
            originator_id=ids.member_id("OLD1"),
            originator_version=1,
            member_id="OLD1",
            store_id="S1",
            occurred_at=NOW,
            tier="normal",
            birthday=today,
            sealed=None,
            id_hash="an old hash",
            fingerprint="an old fingerprint",
            operator="t",
        )
    )
    doubled = chain.sale("R1", member_id="OLD1").json()
    assert [f["kind"] for f in doubled["factors"] if f["applied"]] == ["birthday"]
    _erase(chain, "OLD1")
    assert (
        chain.sale("R2", member_id="OLD1").json()["points_earned"] * 2 == doubled["points_earned"]
    )


def test_a_member_is_found_by_any_form_of_their_phone_until_erased(
    ready: Chain, client: TestClient[Any]
) -> None:
    """The keyed phone index a later `GET /v1/members?phone=` reads (SPEC 2.8)."""
    assert ready.enrol("M1", phone="+86 138-0013-8000").status_code == 201
    assert ready.enrol("M2", phone="13900000000").status_code == 201
    members = client.app.state.ledger.members
    for form in ("13800138000", "008613800138000", "+86 138 0013 8000"):
        assert members.with_phone(form) == [ids.member_id("M1")]
    _erase(ready, "M1")
    assert members.with_phone("13800138000") == []


def _wipe_index(settings: Settings) -> int:
    """Deletes every identity index row behind the service's back: a store recorded before the
    index existed, upgraded in place. Returns the rows deleted."""
    url = settings.database_url
    if url.startswith("sqlite"):
        deleted = 0
        for path in Path(url.removeprefix("sqlite:///")).parent.glob("*.db"):
            with sqlite3.connect(path) as db:
                tables = db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ?",
                    ("%member_identity",),
                ).fetchall()
                for (name,) in tables:
                    deleted += db.execute(f'DELETE FROM "{name}"').rowcount  # noqa: S608
        return deleted
    base, schema = url.split("?schema=")
    with psycopg.connect(base) as db:
        return db.execute(f'DELETE FROM "{schema}".member_identity').rowcount  # noqa: S608


def test_ledger_reindex_rebuilds_the_index_of_a_store_upgraded_in_place(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store recorded before the identity index has no rows for its members: `ledger reindex`
    writes them from the sealed personal data, so their ID numbers are taken again and their
    phones found; an erased member gets none."""
    with TestClient(create_app(settings)) as client:
        chain = Chain(client).standard()
        assert chain.enrol("M1", **PERSON).status_code == 201
        assert chain.enrol("M3", phone="13900000000").status_code == 201
        _erase(chain, "M3")
    assert _wipe_index(settings) == 1  # M1's row (M3's went with its erasure)
    monkeypatch.setenv("LEDGER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LEDGER_MASTER_KEY", TEST_MASTER_KEY.hex())
    assert main(["reindex"]) == 0
    assert capsys.readouterr().out.strip().endswith("reindex: 1 identity index rows written")
    with TestClient(create_app(settings)) as client:
        chain = Chain(client)
        taken = chain.enrol("M2", id_number=ID_NUMBER)
        assert (taken.status_code, taken.json()["type"]) == (409, "id-number-taken")
        members = client.app.state.ledger.members
        assert members.with_phone("13800138000") == [ids.member_id("M1")]
        assert members.with_phone("13900000000") == []
    assert main(["reindex"]) == 0  # nothing missing: nothing written
    assert capsys.readouterr().out.strip().endswith("reindex: 0 identity index rows written")
