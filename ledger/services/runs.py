"""Runs over all members: the expiry run (SPEC 2.5) and the tier review (SPEC 2.2)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

import msgspec
import structlog
from eventsourcing.persistence import IntegrityError, PersistenceError

from ledger.domain import expiry, tierreview
from ledger.domain.bounds import check_instant
from ledger.domain.errors import InvalidInput, Unavailable, invariant
from ledger.domain.expiry import MemberDue
from ledger.domain.member import (
    BonusGranted,
    MemberEnrolled,
    PointsAccrued,
    PointsAdjusted,
    PointsExpired,
    RedemptionVoided,
)
from ledger.domain.member import evolve as evolve_member
from ledger.domain.opening import MemberImported
from ledger.domain.sale import FUTURE_TOLERANCE
from ledger.services.core import LedgerCore
from ledger.services.rules import RulesService

EXPIRY_CHUNK = 200  # members decided and saved per transaction by an expiry run
U = TypeVar("U")
log = structlog.get_logger("ledger.runs")


class MembersSeen(Protocol):
    """Where an expiry run may decide from without reading members (the members view, D66)."""

    def due_seen(self, members: Sequence[UUID], as_of: datetime) -> dict[UUID, MemberDue]: ...


class ExpiryTrace(msgspec.Struct, kw_only=True):
    """How an expiry run decided (for benches and tests; the caller's, filled by the run)."""

    members_from_view: int = 0  # decided from the view's head and lots, no event read
    members_read: int = 0  # decided from a full read of the member (first attempt)
    chunks_redone: int = 0  # chunks refused by the store (a stale decision) and redone by reads


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an expiry run or a tier review did."""

    as_of: datetime
    members_reviewed: int = 0
    lots_expired: int = 0
    points_expired: int = 0
    downgraded: int = 0
    upgraded: int = 0
    skipped: int = 0  # members a review would have changed but for a change at or after as_of


def _chunks(items: Iterable[U], size: int) -> Iterator[list[U]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _not_ahead(as_of: datetime, now: datetime) -> None:
    check_instant(as_of, "as_of")
    if as_of > now + FUTURE_TOLERANCE:
        raise InvalidInput("as_of is in the future", field="as_of")


class RunsService:
    def __init__(self, core: LedgerCore, rules: RulesService) -> None:
        self.core = core
        self.rules = rules

    def expire(
        self,
        as_of: datetime,
        operator: str,
        now: datetime,
        members: Iterable[UUID] | None = None,
        *,
        seen: MembersSeen | None = None,
        trace: ExpiryTrace | None = None,
    ) -> RunResult:
        """Expire every lot due at `as_of` (idempotent; safe beside POS traffic).

        `members` narrows the run to these members (a view's list of members with due lots);
        by default every member that ever held a lot is looked at. Members are decided in
        chunks saved in one transaction each; a chunk that clashes with a concurrent write is
        redone member by member with fresh state, so a busy member is retried, never skipped.

        `seen` (the members view, D66): a member it has a head and due lots for is decided
        from those, appended after the view's version with the view's chain head, and not read;
        if the member has moved past that version (the view lags, or a write came meanwhile)
        the store refuses the chunk and it is redone member by member from full reads.
        """
        _not_ahead(as_of, now)
        candidates = (
            members
            if members is not None
            else self.core.originators(
                PointsAccrued, PointsAdjusted, BonusGranted, RedemptionVoided
            )
        )
        trace = trace if trace is not None else ExpiryTrace()
        result = RunResult(as_of=as_of)
        for chunk in _chunks(candidates, EXPIRY_CHUNK):
            try:
                expired = self._expire_chunk(chunk, as_of, operator, seen, trace)
            except IntegrityError:
                trace.chunks_redone += 1
                expired = []
                for member_uuid in chunk:
                    expired += self.core.retrying(
                        functools.partial(self._expire_chunk, [member_uuid], as_of, operator)
                    )
            except PersistenceError as e:
                raise Unavailable(f"the event store is unavailable: {type(e).__name__}") from e
            result = msgspec.structs.replace(
                result,
                members_reviewed=result.members_reviewed + len(chunk),
                lots_expired=result.lots_expired + len(expired),
                points_expired=result.points_expired + sum(e.points for e in expired),
            )
        if seen is not None:
            log.info("expiry_run_paths", **msgspec.structs.asdict(trace))
        return result

    def _expire_chunk(
        self,
        members: Sequence[UUID],
        as_of: datetime,
        operator: str,
        seen: MembersSeen | None = None,
        trace: ExpiryTrace | None = None,
    ) -> list[PointsExpired]:
        found = self._seen(seen, members, as_of)
        events: list[PointsExpired] = []
        for member_uuid in members:
            decided = found.get(member_uuid)
            if decided is not None:
                self.core.remember_head(member_uuid, decided.version, decided.chain)
                events += expiry.expire_seen(decided, as_of, operator)
                if trace is not None:
                    trace.members_from_view += 1
                continue
            member = self.core.get(member_uuid, evolve_member)
            if member is not None:
                events += expiry.expire(member, as_of, operator)
            if trace is not None:
                trace.members_read += 1
        if events:
            self.core.save(*events)
        return events

    @staticmethod
    def _seen(
        seen: MembersSeen | None, members: Sequence[UUID], as_of: datetime
    ) -> dict[UUID, MemberDue]:
        """What the view saw of these members; nothing (full reads) if it cannot answer."""
        if seen is None:
            return {}
        try:
            return seen.due_seen(members, as_of)
        except PersistenceError as e:
            log.warning("expiry_run_reads_members", reason=f"the view: {type(e).__name__}")
            return {}

    def review_tiers(self, as_of: datetime, operator: str, now: datetime) -> RunResult:
        """Recompute every member's tier from the spend in `[as_of − window, as_of)`, except
        members whose tier changed at or after `as_of` (counted as skipped)."""
        _not_ahead(as_of, now)
        version = self.rules.in_force(as_of)
        members = down = up = skipped = 0
        for member_uuid in self.core.originators(MemberEnrolled, MemberImported):

            def attempt(member_uuid: UUID = member_uuid) -> str | None:
                member = self.core.get(member_uuid, evolve_member)
                invariant(member is not None, "an enrolled member exists")
                if (
                    member is not None and member.merged_into is not None
                ):  # a duplicate's account lives on elsewhere
                    return None
                change, skip = tierreview.review(member, version, as_of, operator)  # type: ignore[arg-type]
                if change is None:
                    return "skipped" if skip else None
                self.core.save(change)
                return change.direction

            outcome = self.core.retrying(attempt)
            members += 1
            down += outcome == "downgrade"
            up += outcome == "upgrade"
            skipped += outcome == "skipped"
        return RunResult(
            as_of=as_of, members_reviewed=members, downgraded=down, upgraded=up, skipped=skipped
        )
