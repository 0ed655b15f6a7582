"""`ledger serve --expire-daily`: the service runs the expiry run itself, at 00:05 chain time.

Off by default: production usually schedules `ledger expire` from cron instead. Several
workers or processes may all run it; the run is idempotent, so the later ones expire nothing.
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
from ledger.policies.chaintime import next_daily
from ledger.services.runs import RunResult, RunsService
from projections.queries import Queries

RUN_AT = time(0, 5)
log = structlog.get_logger("api.scheduler")


def _expire(runs: RunsService, queries: Queries, now: datetime) -> RunResult:
    due = queries.due_members(now)
    return runs.expire(now, "scheduler:expire-daily", now, members=due)


async def expire_daily(
    runs: RunsService, queries: Queries, zone: ZoneInfo, clock: Callable[[], datetime]
) -> None:
    while True:
        now = clock()
        due = next_daily(now, RUN_AT, zone)
        await asyncio.sleep((due - now).total_seconds())
        now = clock()
        try:
            result = await anyio.to_thread.run_sync(functools.partial(_expire, runs, queries, now))
        except LedgerError as e:  # the store is down: say so, and try again tomorrow
            log.exception("expiry run failed", error=e.detail)
            continue
        log.info(
            "expiry run",
            as_of=now.isoformat(),
            lots_expired=result.lots_expired,
            points_expired=result.points_expired,
        )
