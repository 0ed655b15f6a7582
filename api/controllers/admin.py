"""`/v1/admin`: the expiry run and the tier review (also `ledger expire` / `ledger review-tiers`)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.auth import roles
from ledger.domain.apikey import Principal
from ledger.domain.commands import RunAsOf
from ledger.services.runs import RunResult, RunsService
from projections.queries import Queries


class AdminRunsController(Controller):
    path = "/v1/admin"
    tags = ["admin"]  # noqa: RUF012

    @post(
        "/expiry-runs",
        operation_id="runExpiry",
        guards=[roles("admin")],
        sync_to_thread=True,
        status_code=200,
    )
    def expire(
        self,
        data: JSONBody[RunAsOf],
        runs: NamedDependency[RunsService],
        queries: NamedDependency[Queries],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> RunResult:
        due = queries.due_members(data.as_of)
        seen = queries.members_seen(due)
        return runs.expire(data.as_of, principal.key_id, now, members=due, seen=seen)

    @post(
        "/tier-reviews",
        operation_id="reviewTiers",
        guards=[roles("admin")],
        sync_to_thread=True,
        status_code=200,
    )
    def review(
        self,
        data: JSONBody[RunAsOf],
        runs: NamedDependency[RunsService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> RunResult:
        return runs.review_tiers(data.as_of, principal.key_id, now)
