"""Dependencies handed to handlers: the ledger application, the projections' queries and the
caller (`now` is in app.py)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State

from ledger.apikey import Principal
from ledger.application import Ledger
from projections.queries import Queries


def provide_ledger(state: State) -> Ledger:
    ledger: Ledger = state.ledger
    return ledger


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


def provide_queries(state: State) -> Queries:
    queries: Queries = state.queries
    return queries
