"""The daily scheduler (`ledger serve --expire-daily`, on by default when LEDGER_ENV=production):
at 00:05 chain time each day the service runs the expiry run, and, on the day after the rule
set's tier-review date (1 January for `review: {month: 12, day: 31}`), the tier review as of
00:00 that day (SPEC 2.2, 2.5). A process started after 00:05 runs the day's runs at once, and a
standby that takes the lease over during the day runs them too (both runs are idempotent).

However many workers or processes run with it on, one runs it: the holder of the `scheduler`
lease (`ledger.infrastructure.leases`; SPEC 4); the others stand by and one of them takes the
lease within LEDGER_LEASE_SECONDS when the holder dies. Both runs are idempotent anyway, so a run
repeated by a new holder changes nothing (a second review finds every member at their level).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime, time
from zoneinfo import ZoneInfo

import anyio.to_thread
import structlog

from ledger.domain.errors import LedgerError
from ledger.infrastructure.leases import Leases
from ledger.policies.chaintime import next_daily
from ledger.policies.tiers import review_due
from ledger.services.runs import RunResult, RunsService
from projections.queries import Queries

RUN_AT = time(0, 5)
SCHEDULER_LEASE = "scheduler"
OPERATOR = "scheduler:expire-daily"
log = structlog.get_logger("api.scheduler")


def _expire(runs: RunsService, queries: Queries, now: datetime) -> RunResult:
    due = queries.due_members(now)
    return runs.expire(now, OPERATOR, now, members=due, seen=queries.members_seen(due))


def review_if_due(runs: RunsService, now: datetime) -> RunResult | None:
    """The tier review as of 00:00 today (chain time), if yesterday was the review date of the
    rule set in force now; None on every other day."""
    version = runs.rules.at(now)
    if version is None:
        return None
    as_of = review_due(version.rules, now.astimezone(version.rules.zone).date())
    if as_of is None:
        return None
    return runs.review_tiers(as_of, OPERATOR, now)


def _daily(runs: RunsService, queries: Queries, now: datetime) -> None:
    expired = _expire(runs, queries, now)
    log.info(
        "expiry run",
        as_of=now.isoformat(),
        lots_expired=expired.lots_expired,
        points_expired=expired.points_expired,
    )
    reviewed = review_if_due(runs, now)
    if reviewed is not None:
        log.info(
            "tier review",
            as_of=reviewed.as_of.isoformat(),
            members_reviewed=reviewed.members_reviewed,
            downgraded=reviewed.downgraded,
            upgraded=reviewed.upgraded,
            skipped=reviewed.skipped,
        )


async def _holds_until(leases: Leases, clock: Callable[[], datetime], until: datetime) -> bool:
    """Whether this process holds the scheduler lease now or takes it over before `until` (the
    next day's run): a standby that takes over after 00:05, its holder having died, still runs
    the day's runs. Were they done already, running them again changes nothing (idempotent)."""
    while not leases.holds(SCHEDULER_LEASE):
        if clock() >= until:
            return False
        await asyncio.sleep(1.0)
    return True


async def expire_daily(
    runs: RunsService,
    queries: Queries,
    zone: ZoneInfo,
    clock: Callable[[], datetime],
    leases: Leases | None = None,
) -> None:
    # Today's run first, at once if its time has passed: a process (re)started after 00:05 does
    # not leave the day without its runs, as a restart after a crash must not.
    due = datetime.combine(clock().astimezone(zone).date(), RUN_AT, tzinfo=zone)
    while True:
        await asyncio.sleep(max(0.0, (due - clock()).total_seconds()))
        following = next_daily(due, RUN_AT, zone)
        if leases is None or await _holds_until(leases, clock, following):
            now = clock()
            try:
                await anyio.to_thread.run_sync(functools.partial(_daily, runs, queries, now))
            except LedgerError as e:  # the store is down: say so, and try again tomorrow
                log.exception("daily run failed", error=e.detail)
        else:
            log.info("daily run left to the scheduler lease's holder", as_of=due.isoformat())
        due = following  # overdue already (a run that outlasted a day): at once
