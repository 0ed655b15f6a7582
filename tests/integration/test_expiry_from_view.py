"""The expiry run decided from the members view (D66), on real stores (SQLite and PostgreSQL):
the events equal what full reads decide; a view that lags, or a member written between the
view's read and the append, is refused by the store and the member redone from a full read
(expired once, nothing twice); a view built before the view kept heads falls back to reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest

from ledger.application import Ledger
from ledger.domain import expiry, ids
from ledger.domain.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.domain.expiry import MemberDue
from ledger.domain.identity import MergeMember
from ledger.domain.member import Member, PointsExpired
from ledger.domain.member import evolve as evolve_member
from ledger.domain.model import DomainEvent
from ledger.infrastructure import hashchain
from ledger.services.runs import ExpiryTrace
from ledger.settings import Settings
from projections.members import MembersView
from projections.runtime import Projections
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
LATER = NOW + timedelta(days=3 * 366)  # every lot of the test is due by then
CARDS = ["M1", "M2", "M3", "M4", "D1"]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _sale(card: str, receipt: str, days_ago: int, amount_fen: int = 10_000) -> PostSale:
    return PostSale(
        store_id="S1",
        receipt_no=receipt,
        member_id=card,
        occurred_at=NOW - timedelta(days=days_ago),
        lines=[SaleLine(sku="A", amount_fen=amount_fen, category="otc")],
    )


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Ledger]:
    """Members with lots of several ages; M4 holds the lots of a merged duplicate (huge lot
    ids) and, after them, lots of its own (so its lots are not in lot id order)."""
    app = Ledger(settings)
    app.rules.publish(ruleset(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00")), "t")
    app.access.configure_store(
        "S1", RegisterStore(name="One", kind="franchise", franchisee="F1"), "t"
    )
    for card in CARDS:
        app.members.enrol(EnrolMember(member_id=card, store_id="S1"), "t", NOW - timedelta(days=60))
    n = 0
    for days_ago in (50, 40, 30, 20):
        for card in CARDS:
            n += 1
            app.sales.post(_sale(card, f"R{n}", days_ago, 10_000 + 100 * n), "op", NOW)
    app.identity.merge("M4", MergeMember(from_member_id="D1", reason="dup"), "t", NOW)
    app.sales.post(_sale("M4", "R-after-merge", 1), "op", NOW)
    yield app
    app.close()


@pytest.fixture
def views(settings: Settings, ledger: Ledger) -> Iterator[Projections]:
    found = Projections(settings, ["members"])
    found.replay(ledger.core.log_position())
    yield found
    found.stop()


def _members() -> list[UUID]:
    return [ids.member_id(card) for card in CARDS]


def _read(ledger: Ledger, member_id: UUID) -> Member:
    member = ledger.core.get(member_id, evolve_member)
    assert member is not None
    return member


def _bare(event: DomainEvent) -> bytes:
    """An event as stored, but for what saving adds (its hash) and the clock it was made at."""
    return msgspec.json.encode(msgspec.structs.replace(event, chain="", timestamp=EPOCH))


def _full_reads(ledger: Ledger) -> dict[UUID, list[bytes]]:
    """What the run must write: each member's decision from a full read of its events."""
    return {m: [_bare(e) for e in expiry.expire(_read(ledger, m), LATER, "t")] for m in _members()}


def _written(ledger: Ledger, start: int, others: int = 0) -> dict[UUID, list[bytes]]:
    """The expiries stored after `start`, per member (and `others` events of other types)."""
    core = ledger.core
    found: dict[UUID, list[bytes]] = {m: [] for m in _members()}
    for n in core.recorder.select_notifications(start, 10_000, inclusive_of_start=False):
        event = core.mapper.to_domain_event(n)
        if isinstance(event, PointsExpired):
            found[event.originator_id].append(_bare(event))
        else:
            others -= 1
    assert others == 0
    return found


def _chains_hold(ledger: Ledger) -> None:
    """Every member's events, as stored, chain each to the one before (`ledger verify`)."""
    for member_id in _members():
        prev = hashchain.GENESIS
        stored_events = ledger.core.recorder.select_events(member_id)
        for version, stored in enumerate(stored_events, start=1):
            assert stored.originator_version == version
            prev = hashchain.check(prev, member_id, version, stored.topic, stored.state)


def _expire(ledger: Ledger, seen: object, trace: ExpiryTrace) -> int:
    start = ledger.core.log_position()
    result = ledger.runs.expire(LATER, "t", LATER, _members(), seen=seen, trace=trace)  # type: ignore[arg-type]
    assert result.members_reviewed == len(CARDS)
    return start


def test_a_run_decided_from_the_view_writes_what_full_reads_decide(
    ledger: Ledger, views: Projections
) -> None:
    expected = _full_reads(ledger)
    m4 = views.members.due_seen([ids.member_id("M4")], LATER)[ids.member_id("M4")]
    assert [lot.lot_id for lot in m4.lots] != sorted(lot.lot_id for lot in m4.lots)
    trace = ExpiryTrace()
    start = _expire(ledger, views.members, trace)
    assert (trace.members_from_view, trace.members_read, trace.chunks_redone) == (4, 1, 0)
    assert _written(ledger, start) == expected  # D1 (merged away) has nothing left: read
    assert sum(len(e) for e in expected.values()) > 12
    _chains_hold(ledger)
    again = ExpiryTrace()
    views.replay(ledger.core.log_position())
    start = _expire(ledger, views.members, again)
    assert ledger.core.log_position() == start, "nothing expires twice"
    assert again.members_from_view == 0


def test_a_lagging_view_is_refused_by_the_store_and_the_member_read(
    ledger: Ledger, views: Projections
) -> None:
    ledger.sales.post(_sale("M2", "R-late", 10), "op", NOW)  # the view has not seen it
    stale = views.members.due_seen([ids.member_id("M2")], LATER)[ids.member_id("M2")]
    assert stale.version < _read(ledger, ids.member_id("M2")).version
    expected = _full_reads(ledger)
    trace = ExpiryTrace()
    start = _expire(ledger, views.members, trace)
    assert trace.chunks_redone == 1, "the stale decision was refused"
    assert _written(ledger, start) == expected
    _chains_hold(ledger)


class WrittenMeanwhile:
    """The members view, with a sale of M3 written just after the view was read: the member
    moves on between the decision and the append."""

    def __init__(self, view: MembersView, ledger: Ledger) -> None:
        self.view, self.ledger, self.calls = view, ledger, 0

    def due_seen(self, members: Sequence[UUID], as_of: datetime) -> dict[UUID, MemberDue]:
        seen = self.view.due_seen(members, as_of)
        self.calls += 1
        if self.calls == 1:
            self.ledger.sales.post(_sale("M3", "R-meanwhile", 5), "op", NOW)
        return seen


def test_a_member_written_between_the_views_read_and_the_append_is_redone(
    ledger: Ledger, views: Projections
) -> None:
    trace = ExpiryTrace()
    start = _expire(ledger, WrittenMeanwhile(views.members, ledger), trace)
    assert trace.chunks_redone == 1, "the decision from before the sale was refused"
    sale = 2  # PointsAccrued and SaleRecorded, written meanwhile
    assert _written(ledger, start, sale) == _decided_before_the_runs_events(ledger)
    _chains_hold(ledger)
    assert expiry.due_lots(_read(ledger, ids.member_id("M3")).lots, LATER) == []


def _decided_before_the_runs_events(ledger: Ledger) -> dict[UUID, list[bytes]]:
    """What full reads decide of each member as it stood before the run's own events (the
    sale written meanwhile included): the fixture's log holds no other expiry."""
    decided: dict[UUID, list[bytes]] = {}
    for member_id in _members():
        member: Member | None = None
        for event in ledger.core.events.get(member_id):
            if isinstance(event, DomainEvent) and not isinstance(event, PointsExpired):
                member = evolve_member(member, event)
                member.version = event.originator_version
        assert member is not None
        decided[member_id] = [_bare(e) for e in expiry.expire(member, LATER, "t")]
    return decided


def test_a_view_built_before_heads_were_kept_starts_and_falls_back_to_reads(
    settings: Settings, ledger: Ledger, views: Projections
) -> None:
    with views.members.transaction() as cursor:  # the view as it was before D66
        cursor.execute("DROP TABLE {heads}")
        cursor.execute("DROP TABLE {lot_details}")
    started = Projections(settings, ["members"])  # starts on it: the new tables are made
    try:
        ledger.sales.post(_sale("M1", "R-new", 2), "op", NOW)  # M1: a head, one lot detailed
        started.replay(ledger.core.log_position())
        expected = _full_reads(ledger)
        assert started.members.due_seen(_members(), LATER) == {}
        trace = ExpiryTrace()
        start = _expire(ledger, started.members, trace)
        assert (trace.members_from_view, trace.members_read) == (0, len(CARDS))
        assert _written(ledger, start) == expected
        started.drop()  # `ledger rebuild members`: from then on decided from the view
        started.replay(ledger.core.log_position())
        ledger.sales.post(_sale("M1", "R-newer", 1), "op", NOW)
        started.replay(ledger.core.log_position())
        assert list(started.members.due_seen(_members(), LATER)) == [ids.member_id("M1")]
    finally:
        started.stop()


def test_a_run_beside_sales_to_its_members_expires_each_lot_once(
    ledger: Ledger, views: Projections
) -> None:
    """Sales to the run's members while it decides from the view: some decisions go stale and
    are redone from reads; no lot expires twice, and a second run leaves nothing due."""
    stop = threading.Event()

    def sell() -> int:
        n = 0
        while not stop.is_set():
            n += 1
            card = CARDS[n % 4]  # not the merged duplicate
            ledger.sales.post(_sale(card, f"R-beside-{n}", 3), "op", NOW)
        return n

    with ThreadPoolExecutor(1) as pool:
        sold = pool.submit(sell)
        try:
            for _ in range(3):
                ledger.runs.expire(LATER, "t", LATER, _members(), seen=views.members)
                views.replay(ledger.core.log_position())
        finally:
            stop.set()
        assert sold.result() > 0
    ledger.runs.expire(LATER, "t", LATER, _members(), seen=views.members)
    for member_id in _members():
        events = list(ledger.core.events.get(member_id))
        expired = [e.lot_id for e in events if isinstance(e, PointsExpired)]
        assert len(expired) == len(set(expired)), "no lot expires twice"
        assert expiry.due_lots(_read(ledger, member_id).lots, LATER) == []
    _chains_hold(ledger)
