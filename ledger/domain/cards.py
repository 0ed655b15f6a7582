"""Membership cards dispatched to stores (SPEC 2.8): the chain's card registry.

Cards go to stores in numbered ranges (`{from, to}`: one prefix, then a run of digits of one
length). One registry aggregate holds every range, so a card can never be dispatched twice;
dispatching is rare, so its single stream is no bottleneck. Enrolment activates a card; when
the rule set says `cards.require_dispatch`, only a dispatched card can be enrolled.
"""

from __future__ import annotations

import re

import msgspec

from ledger.domain.errors import CardsAlreadyDispatched, InvalidInput
from ledger.domain.ids import CARD_REGISTRY_ID
from ledger.domain.model import Aggregate, DomainEvent, born

RANGE_MAX = 100_000
_CARD = re.compile(r"^(.*?)(\d+)$")


class CardsDispatched(DomainEvent, frozen=True, kw_only=True):
    store_id: str
    first: str
    last: str
    count: int
    operator: str


class CardRange(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    prefix: str
    width: int
    low: int
    high: int

    @property
    def count(self) -> int:
        return self.high - self.low + 1

    def holds(self, card: str) -> bool:
        parsed = parse_card(card)
        return (
            parsed is not None
            and parsed[:2] == (self.prefix, self.width)
            and (self.low <= parsed[2] <= self.high)
        )

    def overlaps(self, other: CardRange) -> bool:
        return (self.prefix, self.width) == (other.prefix, other.width) and not (
            self.high < other.low or other.high < self.low
        )


class CardRegistry(Aggregate, kw_only=True):
    ranges: list[CardRange] = msgspec.field(default_factory=list)


class DispatchReceipt(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    first: str
    last: str
    count: int


def parse_card(card: str) -> tuple[str, int, int] | None:
    match = _CARD.match(card)
    if match is None:
        return None
    prefix, digits = match.groups()
    return prefix, len(digits), int(digits)


def card_range(store_id: str, first: str, last: str) -> CardRange:
    """The range `first..last`, or InvalidInput when the two cannot bound one."""
    a, b = parse_card(first), parse_card(last)
    if a is None or b is None:
        raise InvalidInput("card numbers of a range must end in digits", field="from")
    if a[:2] != b[:2]:
        raise InvalidInput("from and to must share their prefix and number of digits", field="to")
    if a[2] > b[2]:
        raise InvalidInput("from must not be after to", field="to")
    if b[2] - a[2] + 1 > RANGE_MAX:
        raise InvalidInput(f"at most {RANGE_MAX} cards per dispatch", field="to")
    return CardRange(store_id=store_id, prefix=a[0], width=a[1], low=a[2], high=b[2])


def evolve(state: CardRegistry | None, event: DomainEvent) -> CardRegistry:
    if not isinstance(event, CardsDispatched):
        raise TypeError(f"CardRegistry cannot apply {type(event).__name__}")
    if state is None:
        state = CardRegistry(
            **born(event),
        )
    state.ranges.append(card_range(event.store_id, event.first, event.last))
    return state


def dispatch(
    registry: CardRegistry | None, store_id: str, first: str, last: str, operator: str
) -> tuple[CardsDispatched | None, DispatchReceipt]:
    """The dispatch event (None when this very range already went to this store: a replay)."""
    wanted = card_range(store_id, first, last)
    receipt = DispatchReceipt(store_id=store_id, first=first, last=last, count=wanted.count)
    for existing in registry.ranges if registry else []:
        if existing == wanted:
            return None, receipt
        if existing.overlaps(wanted):
            raise CardsAlreadyDispatched(
                f"cards in {first}..{last} were already dispatched to store {existing.store_id}",
                field="from",
            )
    fields = (
        registry.next_event_fields()
        if registry
        else {"originator_id": CARD_REGISTRY_ID, "originator_version": 1}
    )
    event = CardsDispatched(
        **fields,  # type: ignore[arg-type]
        store_id=store_id,
        first=first,
        last=last,
        count=wanted.count,
        operator=operator,
    )
    return event, receipt


def dispatched_to(registry: CardRegistry | None, card: str) -> str | None:
    """The store a card was dispatched to, if any."""
    for existing in registry.ranges if registry else []:
        if existing.holds(card):
            return existing.store_id
    return None
