"""The rule book aggregate: every published rule-set version, and which one is in force when."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ledger.domain.errors import invariant
from ledger.domain.ids import RULEBOOK_ID
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.policies.ruleset import RuleSet, RuleVersion


class RuleSetPublished(DomainEvent, frozen=True, kw_only=True):
    version: int
    rules: RuleSet
    operator: str


class RuleBook(Aggregate, kw_only=True):
    versions: list[RuleVersion] = msgspec.field(default_factory=list)


def evolve(state: RuleBook | None, event: DomainEvent) -> RuleBook:
    if not isinstance(event, RuleSetPublished):
        raise TypeError(f"RuleBook cannot apply {type(event).__name__}")
    if state is None:
        state = RuleBook(
            **born(event),
        )
    invariant(event.version == len(state.versions) + 1, "rule versions are numbered 1, 2, ...")
    state.versions.append(
        RuleVersion(version=event.version, published_at=event.timestamp, rules=event.rules)
    )
    return state


def publish(book: RuleBook | None, rules: RuleSet, operator: str) -> RuleSetPublished:
    """The event that publishes `rules` as the next version (the first if there is no book)."""
    if book is None:
        return RuleSetPublished(
            originator_id=RULEBOOK_ID,
            originator_version=1,
            version=1,
            rules=rules,
            operator=operator,
        )
    return RuleSetPublished(
        **book.next_event_fields(),  # type: ignore[arg-type]
        version=len(book.versions) + 1,
        rules=rules,
        operator=operator,
    )


def in_force(book: RuleBook | None, at: datetime) -> RuleVersion | None:
    """The version with the latest `effective_from` not after `at` (the later version on a tie)."""
    if book is None:
        return None
    candidates = [v for v in book.versions if v.rules.effective_from <= at]
    if not candidates:
        return None
    return max(candidates, key=lambda v: (v.rules.effective_from, v.version))
