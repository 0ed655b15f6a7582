"""`/v1/admin`: the expiry run and the tier review (also `ledger expire` / `ledger review-tiers`)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.auth import roles
from ledger.apikey import Principal
from ledger.application import Ledger, RunResult
from ledger.commands import RunAsOf
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
        queries: NamedDependency[Queries],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> RunResult:
        return queries.expire(data.as_of, principal.key_id, now)

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
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> RunResult:
        return ledger.review_tiers(data.as_of, principal.key_id, now)
