"""The as-of fold read from moves (D67): each stored event decoded straight into the few fields
the fold sums gives the very answers the whole decoded events give, on both stores, for late
(offline) sales, a replacement card, and members whose moves are kept between questions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ledger.application import Ledger
from ledger.domain import ids
from ledger.domain.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.domain.errors import MemberNotFound
from ledger.domain.identity import ReplaceCard
from ledger.domain.member import MemberEvent
from ledger.infrastructure.topics import STORED
from ledger.policies import asofcheckpoint
from ledger.policies.asof import member_as_of, move_type
from ledger.services import asof as asof_service
from ledger.settings import Settings
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def _sale(receipt: str, occurred_at: datetime, amount_fen: int = 10000) -> PostSale:
    return PostSale(
        store_id="S1",
        receipt_no=receipt,
        member_id="M1",
        occurred_at=occurred_at,
        lines=[SaleLine(sku="A", amount_fen=amount_fen, category="otc")],
    )


@pytest.fixture
def ledger(settings: Settings) -> Ledger:
    app = Ledger(settings)
    app.rules.publish(ruleset(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00")), "t")
    app.access.configure_store(
        "S1", RegisterStore(name="One", kind="franchise", franchisee="F1"), "t"
    )
    app.members.enrol(
        EnrolMember(member_id="M1", store_id="S1", occurred_at=NOW - timedelta(days=20)), "t", NOW
    )
    return app


def _same(ledger: Ledger, as_of: datetime, recorded_as_of: datetime | None = None) -> None:
    events = list(ledger.core.events.get(ids.member_id("M1")))
    whole = member_as_of([e for e in events if isinstance(e, MemberEvent)], as_of, recorded_as_of)
    ledger.members.forget_histories()
    cold = ledger.members.as_of("M1", as_of, recorded_as_of)
    warm = ledger.members.as_of("M1", as_of, recorded_as_of)
    assert msgspec.to_builtins(cold) == msgspec.to_builtins(whole)
    assert msgspec.to_builtins(warm) == msgspec.to_builtins(whole)


def test_moves_answer_as_the_whole_events_do_with_a_late_sale(ledger: Ledger) -> None:
    ledger.sales.post(_sale("R1", NOW - timedelta(days=10), 250_000), "op", NOW)
    ledger.sales.post(_sale("R2", NOW - timedelta(days=2)), "op", NOW)
    ledger.members.as_of("M1", NOW)  # its moves are kept now: the late sale is read on
    recorded_before_late = datetime.now(UTC)
    # an offline store's sale, recorded last but belonging to 8 days ago
    ledger.sales.post(_sale("R3", NOW - timedelta(days=8), 30_000), "op", NOW)
    kept = ledger.members.as_of("M1", NOW - timedelta(days=5))
    assert [lot.reference for lot in kept.lots] == ["R1", "R3"]  # counted at its own time
    for days in (30, 15, 9, 8, 5, 1, 0):
        _same(ledger, NOW - timedelta(days=days))
        _same(ledger, NOW - timedelta(days=days), recorded_before_late)
    told = ledger.members.as_of("M1", NOW - timedelta(days=5), recorded_before_late)
    assert [lot.reference for lot in told.lots] == ["R1"]  # not recorded yet then


def test_checkpoints_count_a_late_sale_recorded_after_them(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asofcheckpoint, "EVERY", 3)
    monkeypatch.setattr(asof_service, "EVERY", 3)
    for n in range(8):  # enrolment + 8 sales (and a tier change): checkpoints at 3, 6, 9
        ledger.sales.post(_sale(f"R{n}", NOW - timedelta(days=15 - n), 20_000 * (n + 1)), "op", NOW)
    _same(ledger, NOW)  # the first question writes the checkpoints
    member = ids.member_id("M1")
    index = list(ledger.core.snapshots.get(asofcheckpoint.index_id(member)))  # type: ignore[union-attr]
    assert index and isinstance(index[-1], asofcheckpoint.FoldIndex)
    assert [s.version for s in index[-1].segments] == [3, 6, 9]
    recorded_before_late = datetime.now(UTC)
    # recorded after every checkpoint, but 14 days ago in business time: before most of them
    ledger.sales.post(_sale("LATE", NOW - timedelta(days=14, hours=12), 30_000), "op", NOW)
    for days in (16, 14, 13, 10, 7, 3, 0):
        for recorded in (None, recorded_before_late):
            _same(ledger, NOW - timedelta(days=days), recorded)
    then = ledger.members.as_of("M1", NOW - timedelta(days=14))
    assert "LATE" in [lot.reference for lot in then.lots]
    for n in range(6):  # more events: new checkpoints past the late sale; answers unchanged
        ledger.sales.post(_sale(f"S{n}", NOW - timedelta(days=5 - n)), "op", NOW)
    _same(ledger, NOW)
    segments = ledger.members._as_of._segments(member)
    late = next(
        e.originator_version
        for e in ledger.core.events.get(member)
        if getattr(e, "reference", None) == "LATE"
    )
    steps = asofcheckpoint.plan(segments, NOW - timedelta(days=13), None)
    assert steps.start > 0  # from a checkpoint
    assert any(a < late <= (b or late) for a, b in steps.reads)  # the late sale's segment
    head = segments[-1].version + 3
    read = sum(min(b or head, head) - a for a, b in steps.reads)
    assert read < head - steps.start  # and segments in between are skipped
    for days in (16, 14, 13, 10, 7, 3, 0):
        _same(ledger, NOW - timedelta(days=days))
        _same(ledger, NOW - timedelta(days=days), recorded_before_late)


def test_a_replacement_card_reads_the_account_and_an_unknown_card_is_not_found(
    ledger: Ledger,
) -> None:
    ledger.sales.post(_sale("R1", NOW - timedelta(days=3)), "op", NOW)
    ledger.identity.replace_card(
        "M1", ReplaceCard(new_member_id="M2", store_id="S1", reason="lost"), "t", NOW
    )
    assert ledger.core.account_id("M2") == ids.member_id("M1")
    for card in ("M1", "M2"):
        then = ledger.members.as_of(card, NOW)
        assert (then.member_id, [lot.reference for lot in then.lots]) == ("M2", ["R1"])
    _same(ledger, NOW)
    with pytest.raises(MemberNotFound):
        ledger.members.as_of("NOPE", NOW)


def test_every_member_event_class_has_a_move_of_its_own_fields() -> None:
    for cls in STORED.values():
        kind = move_type(cls)
        if kind is not None:  # a member event: the move keeps a subset of its fields
            assert set(kind.__struct_fields__) <= {f.name for f in msgspec.structs.fields(cls)}, cls
