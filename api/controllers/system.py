"""`/health`: liveness, and whether the event store answers."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency

from ledger.application import Ledger


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    store: str


class HealthController(Controller):
    path = "/health"
    tags = ["system"]  # noqa: RUF012

    @get("/", operation_id="health", sync_to_thread=True, exclude_from_auth=True)
    def health(self, ledger: NamedDependency[Ledger]) -> Response[Health]:
        ok = ledger.ping()
        return Response(
            Health(status="ok" if ok else "degraded", store="up" if ok else "down"),
            status_code=200 if ok else 503,
        )
