"""Dependencies handed to handlers: each service of the ledger by its name, the projections'
queries and the caller (`now` is in app.py). A controller names the service it needs
(`sales: NamedDependency[SalesService]`); none reaches the whole ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from ledger.application import Ledger
from ledger.domain.apikey import Principal
from projections.queries import Queries

SERVICES = (
    "core",  # the event store itself: only the health check asks it
    "rules",
    "access",
    "members",
    "personal",
    "sales",
    "redemptions",
    "stored_value",
    "bonuses",
    "identity",
    "runs",
    "settlement",
)


def _service(name: str) -> Callable[[State], Any]:
    def provide(state: State) -> Any:
        ledger: Ledger = state.ledger
        return getattr(ledger, name)

    return provide


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


def now_of(request: Request[Any, Any, Any]) -> datetime:
    """The ledger's now (the app's clock), as the `now` dependency gives it: for a handler on
    the sale path that takes one dependency only (Litestar resolves two or more in a task group
    per request, a tenth of an API worker's time per sale)."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock()


def provide_queries(state: State) -> Queries:
    queries: Queries = state.queries
    return queries


def dependencies() -> dict[str, Provide]:
    """Every service, the queries and the caller, for `Litestar(dependencies=…)`."""
    provided = {name: Provide(_service(name), sync_to_thread=False) for name in SERVICES}
    return provided | {
        "principal": Provide(provide_principal, sync_to_thread=False),
        "queries": Provide(provide_queries, sync_to_thread=False),
    }
