"""Numbered commands, carried out once: the idempotency every POS retry relies on.

Every numbered write (a sale by its receipt, a refund, a redemption, a conversion, a payment, an
adjustment, an enrolment by its card) goes the same way: find what was recorded under the
number; if something was, compare the request's fingerprint with the recorded one and replay
the recorded answer (200) or refuse the other request (409); if nothing was, decide the events
and save them (201). A clash in the store (another request for the same member or the same
number got there first) runs it all again with fresh state, a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import msgspec

from ledger.domain.errors import IdempotencyConflict, LedgerError
from ledger.domain.model import DomainEvent
from ledger.infrastructure.identityindex import IdentityChange
from ledger.services.core import LedgerCore

R = TypeVar("R")


class Found(msgspec.Struct, Generic[R], frozen=True):
    """What was recorded under the number: the request's fingerprint and the answer given."""

    fingerprint: str
    receipt: R


class Decided(msgspec.Struct, Generic[R], frozen=True):
    """A new command's events and the answer they give (and its identity-index rows, written
    in the same transaction)."""

    events: Sequence[DomainEvent]
    receipt: R
    identity: IdentityChange | None = None


Step = Callable[[bool], "Found[R] | Decided[R]"]


def once(
    core: LedgerCore,
    fingerprint: str,
    step: Step[R],
    conflict: Callable[[], LedgerError] | None = None,
) -> tuple[R, bool]:
    """Carry out a numbered command once; returns its answer and whether it was new.

    `step(retry)` looks up the number and returns `Found`, or decides and returns `Decided`;
    `retry` is False on the first attempt, so a command whose first event's deterministic id
    is its own idempotency check (a sale) may skip the lookup until a clash says to look.
    `conflict` is the error for another request under the same number; a command without it
    (a capture, a void: the number is all they name) replays whatever was recorded.
    """
    attempts = 0

    def attempt() -> tuple[R, bool]:
        nonlocal attempts
        attempts += 1
        outcome = step(attempts > 1)
        if isinstance(outcome, Found):
            if conflict is not None and outcome.fingerprint != fingerprint:
                raise conflict()
            return outcome.receipt, False
        core.save(*outcome.events, identity=outcome.identity)
        return outcome.receipt, True

    return core.retrying(attempt)


def reused(what: str, field: str) -> Callable[[], IdempotencyConflict]:
    """The 409 for another request under a number already used; `what` names the number."""
    return lambda: IdempotencyConflict(
        f"{what} was already used with a different request", field=field
    )
