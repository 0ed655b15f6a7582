"""`/health/live` (the process runs), `/health/ready` and `/health` (it can serve: the store
answers, no projection has failed, every view is within LEDGER_READY_MAX_LAG events of the log),
each saying why in its body (SPEC 4)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from api.outage import StoreGate
from ledger.services.core import LedgerCore
from ledger.version import VERSION
from projections.queries import Queries


class Live(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    version: str


class ViewHealth(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    projection: str
    position: int
    lag_events: int
    failed: str | None = None  # which event it cannot apply, and why


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # ok | degraded
    store: str  # up | down
    version: str
    reasons: list[str]  # why not ready (empty when ok)
    projections: list[ViewHealth]


def _views(queries: Queries, max_lag: int, reasons: list[str]) -> list[ViewHealth]:
    lag = queries.lag()
    failed = queries.projections.failed()
    views = []
    for view in lag.views:
        failure = failed.get(view.projection)
        if failure is not None:
            reasons.append(failure.describe())
        elif view.lag_events > max_lag:
            reasons.append(f"projection {view.projection} lags the log by {view.lag_events} events")
        views.append(
            ViewHealth(
                projection=view.projection,
                position=view.position,
                lag_events=view.lag_events,
                failed=failure.describe() if failure is not None else None,
            )
        )
    return views


class HealthController(Controller):
    path = "/health"
    tags = ["system"]  # noqa: RUF012

    @get("/live", operation_id="healthLive", sync_to_thread=False, exclude_from_auth=True)
    def live(self) -> Live:
        """200 while the process runs (it reads nothing)."""
        return Live(status="live", version=VERSION)

    @get(
        "/ready",
        operation_id="healthReady",
        sync_to_thread=True,
        exclude_from_auth=True,
        responses={503: ResponseSpec(Health, description="Not ready: the body says why")},
    )
    def ready(
        self,
        request: Request[Any, Any, Any],
        core: NamedDependency[LedgerCore],
        queries: NamedDependency[Queries],
    ) -> Response[Health]:
        """200 when the store answers, no projection has failed and every view is within
        LEDGER_READY_MAX_LAG events of the log; 503 otherwise, saying why."""
        return readiness(request.app.state.store_gate, core, queries)

    @get(
        "/",
        operation_id="health",
        sync_to_thread=True,
        exclude_from_auth=True,
        responses={503: ResponseSpec(Health, description="Not ready: the body says why")},
    )
    def health(
        self,
        request: Request[Any, Any, Any],
        core: NamedDependency[LedgerCore],
        queries: NamedDependency[Queries],
    ) -> Response[Health]:
        """The same as `/health/ready`."""
        return readiness(request.app.state.store_gate, core, queries)


def readiness(gate: StoreGate, core: LedgerCore, queries: Queries) -> Response[Health]:
    # while the store is known down, a probe answers at once (a ping retries for seconds)
    up = gate.up() and core.ping()
    reasons: list[str] = []
    views: list[ViewHealth] = []
    if not up:
        gate.mark_down()
        reasons.append("the event store does not answer")
    else:
        try:
            views = _views(queries, core.settings.ready_max_lag, reasons)
        except Exception as e:  # a view's store went away since the ping
            reasons.append(f"the views do not answer: {type(e).__name__}")
    ok = not reasons
    return Response(
        Health(
            status="ok" if ok else "degraded",
            store="up" if up else "down",
            version=VERSION,
            reasons=reasons,
            projections=views,
        ),
        status_code=200 if ok else 503,
    )
