"""The hash chain (`ledger.sealing`) and the month digests (`ledger.settlement.MonthDigests`)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
import pytest

from ledger.domain.member import PointsConverted
from ledger.domain.model import DomainEvent
from ledger.domain.settlement import Digest, MonthDigests, PeriodClosed
from ledger.infrastructure import hashchain
from ledger.infrastructure.topics import topic_of

pytestmark = pytest.mark.unit
AT = datetime(2026, 1, 31, 20, 0, tzinfo=UTC)  # 2026-02-01 04:00 in Shanghai


class Noted(DomainEvent, frozen=True, kw_only=True):
    text: str


def _stored(event: DomainEvent) -> bytes:
    return msgspec.json.encode(event)  # what the mapper stores


def _walk(events: list[DomainEvent]) -> str:
    prev = hashchain.GENESIS
    for event in events:
        prev = hashchain.check(
            prev,
            event.originator_id,
            event.originator_version,
            topic_of(type(event)),
            _stored(event),
        )
    return prev


def test_each_event_chains_to_its_aggregates_previous_one() -> None:
    a, b = uuid4(), uuid4()
    batch = [
        Noted(originator_id=a, originator_version=1, text="a1"),
        Noted(originator_id=b, originator_version=1, text="b1"),
        Noted(originator_id=a, originator_version=2, text="a2"),
    ]
    heads: dict[UUID, tuple[int, str]] = {}
    first = hashchain.chained(batch, heads)
    assert all(len(e.chain) == hashchain.HASH_CHARS for e in first)
    assert heads[a] == (2, first[2].chain) and heads[b] == (1, first[1].chain)
    later = hashchain.chained([Noted(originator_id=a, originator_version=3, text="a3")], heads)
    assert _walk([first[0], first[2], *later]) == later[0].chain
    assert _walk([first[1]]) == first[1].chain


def test_the_hash_covers_the_body_the_version_the_topic_and_the_predecessor() -> None:
    event = hashchain.chained([Noted(originator_id=uuid4(), originator_version=1, text="x")], {})[0]
    state = _stored(event)
    topic = topic_of(Noted)
    assert hashchain.check("", event.originator_id, 1, topic, state) == event.chain
    for prev, version, what, stored in [
        ("", 1, topic, state.replace(b'"text":"x"', b'"text":"y"')),
        ("", 2, topic, state),
        ("", 1, topic_of(PeriodClosed), state),
        ("0" * 64, 1, topic, state),
    ]:
        with pytest.raises(hashchain.ChainBroken):
            hashchain.check(prev, event.originator_id, version, what, stored)


def test_an_unsealed_or_malformed_event_is_broken() -> None:
    bare = _stored(Noted(originator_id=uuid4(), originator_version=1, text="x"))
    with pytest.raises(hashchain.ChainBroken, match="malformed"):
        hashchain.split(bare)
    with pytest.raises(hashchain.ChainBroken, match="no hash"):
        hashchain.split(b'{"originator_id":"x"}')


def test_sealing_needs_the_previous_hash_beyond_version_one() -> None:
    later = Noted(originator_id=uuid4(), originator_version=2, text="x")
    with pytest.raises(KeyError):
        hashchain.chained([later], {})
    with pytest.raises(KeyError):
        hashchain.chained([later], {later.originator_id: (3, "0" * 64)})


def test_a_month_digest_covers_its_events_and_late_ones_go_to_the_next_open_month() -> None:
    def converted(month_day: datetime, chain: str) -> PointsConverted:
        return PointsConverted(
            originator_id=uuid4(),
            originator_version=2,
            chain=chain,
            store_id="S1",
            reference="C1",
            occurred_at=month_day,
            points=100,
            credited_fen=100,
            takes=[],
            rule_version=1,
            operator="t",
        )

    def closed(period: str) -> PeriodClosed:
        return PeriodClosed(
            originator_id=uuid4(), originator_version=1, period=period, closed_at=AT, operator="t"
        )

    digests = MonthDigests()
    for event in [
        converted(datetime(2026, 1, 10, tzinfo=UTC), "a"),
        converted(AT, "b"),  # February in chain time
        closed("2026-01"),
        converted(datetime(2026, 1, 11, tzinfo=UTC), "c"),  # late: February
        closed("2026-02"),
    ]:
        digests.add(event)
    assert digests.closed["2026-01"] == Digest(hashlib.sha256(b"a").hexdigest(), 1)
    assert digests.closed["2026-02"] == Digest(hashlib.sha256(b"bc").hexdigest(), 2)
