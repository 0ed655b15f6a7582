"""Rules: publishing a rule-set version, and which version is in force at a time (SPEC 2.10)."""

from __future__ import annotations

import time
from datetime import datetime

import msgspec

from ledger.domain import ids, rulebook
from ledger.domain.errors import NoRuleSetInForce
from ledger.policies.ruleset import RuleSet, RuleVersion, check
from ledger.services.core import LedgerCore

TTL_SECONDS = 1.0  # how long another process may go on using the rule book it read


class RulesService:
    """The rule book, read at most once a TTL: every sale needs it, it changes a few times a year."""

    def __init__(self, core: LedgerCore) -> None:
        self.core = core
        self._cached: tuple[float, rulebook.RuleBook | None] | None = None

    def _book(self, fresh: bool = False) -> rulebook.RuleBook | None:
        cached = self._cached
        if not fresh and cached is not None and time.monotonic() - cached[0] < TTL_SECONDS:
            return cached[1]
        book = self.core.get(ids.RULEBOOK_ID, rulebook.evolve)
        self._cached = (time.monotonic(), book)
        return book

    def publish(self, rules: RuleSet, operator: str) -> RuleVersion:
        """Publish `rules` as the next version. A version without a time zone gets the chain's,
        pinned on it, so that a replay never drifts with the configuration."""
        rules = check(rules)
        if rules.timezone is None:
            rules = msgspec.structs.replace(rules, timezone=self.core.settings.timezone)

        def attempt() -> RuleVersion:
            event = rulebook.publish(self._book(fresh=True), rules, operator)
            self.core.save(event)
            self._cached = None
            return RuleVersion(version=event.version, published_at=event.timestamp, rules=rules)

        return self.core.retrying(attempt)

    def at(self, when: datetime) -> RuleVersion | None:
        """The version in force at business time `when`, if any."""
        return rulebook.in_force(self._book(), when)

    def numbered(self, number: int) -> RuleVersion | None:
        """Published version `number`, if there is one."""
        book = self._book()
        if book is None or not 1 <= number <= len(book.versions):
            return None
        return book.versions[number - 1]

    def at_or_first(self, when: datetime) -> RuleVersion | None:
        """The version in force at `when`, or, before any, the first to take effect (what a lot
        dated before every version expires and is valued by)."""
        book = self._book()
        found = rulebook.in_force(book, when)
        if found is not None or book is None or not book.versions:
            return found
        return min(book.versions, key=lambda v: (v.rules.effective_from, v.version))

    def in_force(self, when: datetime) -> RuleVersion:
        """The version in force at `when`; 409 `no-rule-set-in-force` when there is none."""
        version = self.at(when)
        if version is None:
            raise NoRuleSetInForce(
                f"no rule set is in force at {when.isoformat()}", field="occurred_at"
            )
        return version
