"""The composition root: `create_app(settings)` builds the Litestar app around one Ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import anyio.to_thread
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig

from api.auth import PUBLIC_PATHS, ApiKeyAuthentication
from api.console import console_routes, template_config
from api.controllers.admin import AdminRunsController
from api.controllers.analytics import AnalyticsController
from api.controllers.identity import IdentityController
from api.controllers.keys import ApiKeysController
from api.controllers.members import MembersController
from api.controllers.redemptions import RedemptionsController
from api.controllers.reports import ReportsController
from api.controllers.rules import RulesController
from api.controllers.sales import SalesController
from api.controllers.settlements import SettlementsController
from api.controllers.storedvalue import StoredValueController
from api.controllers.stores import StoresController
from api.controllers.system import HealthController
from api.deps import dependencies
from api.docs import docs_routes
from api.errors import EXCEPTION_HANDLERS
from api.logging import configure_logging, request_logging
from api.metrics import PROJECTION_LAG, MetricsController, count_appended, request_metrics
from api.openapi import ProblemJsonRenderPlugin
from api.outage import StoreGate, store_gate
from api.ratelimit import rate_limit
from api.scheduler import SCHEDULER_LEASE, expire_daily
from api.validation import strict_request
from ledger.application import Ledger, open_ledger
from ledger.domain.model import now_utc
from ledger.infrastructure.leases import Leases
from ledger.settings import Settings
from ledger.version import VERSION
from projections.queries import Queries
from projections.runtime import Projections

CONTROLLERS = [
    RulesController,
    StoresController,
    ApiKeysController,
    MembersController,
    IdentityController,
    SalesController,
    RedemptionsController,
    StoredValueController,
    AdminRunsController,
    SettlementsController,
    ReportsController,
    AnalyticsController,
    HealthController,
    MetricsController,
]
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def _lifespan(
    settings: Settings, build: Callable[[], Ledger], clock: Callable[[], datetime]
) -> Lifespan:
    """Open the ledger and the projections at start (off the event loop), close them at stop."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        ledger = await anyio.to_thread.run_sync(build)
        if settings.admin_key:
            await anyio.to_thread.run_sync(ledger.access.ensure_admin_key, settings.admin_key)
        app.state.ledger = ledger
        projections = await anyio.to_thread.run_sync(Projections, settings)
        leases = Leases(
            settings.database_url, settings.lease_seconds, settings.postgres.connect_timeout_seconds
        )
        if settings.expire_daily:
            leases.want([SCHEDULER_LEASE])
        await anyio.to_thread.run_sync(leases.start)
        if settings.run_projections:
            await anyio.to_thread.run_sync(projections.start, leases)
        app.state.queries = Queries(ledger, projections)
        PROJECTION_LAG.source = lambda: (ledger.core.log_position(), projections.positions())
        PROJECTION_LAG.failed = lambda: set(projections.failed())
        scheduler = None
        if settings.expire_daily:
            zone = ZoneInfo(settings.timezone)
            scheduler = asyncio.create_task(
                expire_daily(ledger.runs, app.state.queries, zone, clock, leases)
            )
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.cancel()
            PROJECTION_LAG.source = None
            PROJECTION_LAG.failed = None
            await anyio.to_thread.run_sync(projections.stop)
            await anyio.to_thread.run_sync(leases.stop)
            await anyio.to_thread.run_sync(ledger.close)

    return lifespan


def create_app(
    settings: Settings,
    ledger_factory: Callable[[], Ledger] | None = None,
    clock: Callable[[], datetime] = now_utc,
) -> Litestar:
    """The HTTP service; `clock` is the ledger's idea of now (tests move it to lapse holds)."""
    configure_logging()
    gate = StoreGate(settings.database_url)

    def provide_now() -> datetime:
        return clock()

    def build() -> Ledger:
        if ledger_factory is not None:
            return ledger_factory()
        return open_ledger(settings, on_appended=count_appended)

    return Litestar(
        route_handlers=[*CONTROLLERS, *console_routes(settings), *docs_routes()],
        lifespan=[_lifespan(settings, build, clock)],
        state=State({"store_gate": gate, "zone": ZoneInfo(settings.timezone), "clock": clock}),
        dependencies=dependencies() | {"now": Provide(provide_now, sync_to_thread=False)},
        middleware=[
            request_logging,
            request_metrics,
            store_gate(gate),
            DefineMiddleware(ApiKeyAuthentication, exclude=PUBLIC_PATHS),
            rate_limit(settings),
        ],
        before_request=strict_request,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="pharmacy-ledger",
            version=VERSION,  # the package's; the API itself is /v1
            description="Event-sourced loyalty-points ledger for pharmacy chains (HTTP API v1).",
            path="/schema",
            render_plugins=[ProblemJsonRenderPlugin(path=["/", "/openapi.json"])],
        ),
        request_max_body_size=settings.max_body_bytes,
        template_config=template_config(ZoneInfo(settings.timezone)),
    )
