"""The idempotency record of a numbered operation (conversion, stored-value payment, adjustment).

Its id is derived from the operation's number, so a second post of the same number collides in
the event store; it keeps the request's fingerprint and the receipt the caller was given, so a
retry gets the very same answer. Follow-ups (refunds of a payment) are recorded on it too.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from ledger.domain.model import Aggregate, DomainEvent, born

R = TypeVar("R")


class OperationRecorded(DomainEvent, frozen=True, kw_only=True):
    kind: str
    number: str
    member_id: str
    fingerprint: str
    amount_fen: int = 0
    receipt: bytes  # JSON of the operation's receipt struct (JSON keeps each time's offset)


class FollowUpRecorded(DomainEvent, frozen=True, kw_only=True):
    number: str
    fingerprint: str
    amount_fen: int
    receipt: bytes


class Operation(Aggregate, kw_only=True):
    kind: str
    number: str
    member_id: str
    fingerprint: str
    amount_fen: int
    receipt: bytes
    follow_ups: dict[str, FollowUpRecorded] = msgspec.field(default_factory=dict)
    followed_fen: int = 0


def evolve(state: Operation | None, event: DomainEvent) -> Operation:
    if isinstance(event, OperationRecorded):
        return Operation(
            **born(event),
            kind=event.kind,
            number=event.number,
            member_id=event.member_id,
            fingerprint=event.fingerprint,
            amount_fen=event.amount_fen,
            receipt=event.receipt,
        )
    if isinstance(event, FollowUpRecorded) and state is not None:
        state.follow_ups[event.number] = event
        state.followed_fen += event.amount_fen
        return state
    raise TypeError(f"Operation cannot apply {type(event).__name__}")


def decode(receipt: bytes, cls: type[R]) -> R:
    """A recorded receipt, as it was first given."""
    return msgspec.json.decode(receipt, type=cls)


def encode(receipt: msgspec.Struct) -> bytes:
    return msgspec.json.encode(receipt)
