"""`/health`: liveness, whether the event store answers, and the version running."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec

from api.outage import StoreGate
from ledger.services.core import LedgerCore
from ledger.version import VERSION


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    store: str
    version: str  # the package's (pyproject.toml), as `ledger --version` says


class HealthController(Controller):
    path = "/health"
    tags = ["system"]  # noqa: RUF012

    @get(
        "/",
        operation_id="health",
        sync_to_thread=True,
        exclude_from_auth=True,
        responses={503: ResponseSpec(Health, description="The event store does not answer")},
    )
    def health(
        self, request: Request[Any, Any, Any], core: NamedDependency[LedgerCore]
    ) -> Response[Health]:
        # while the store is known down, a probe answers at once (a ping retries for seconds)
        gate: StoreGate = request.app.state.store_gate
        ok = gate.up() and core.ping()
        if not ok:
            gate.mark_down()
        return Response(
            Health(
                status="ok" if ok else "degraded", store="up" if ok else "down", version=VERSION
            ),
            status_code=200 if ok else 503,
        )
