"""Dependencies handed to handlers: the ledger application, the caller, and the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request
from litestar.datastructures import State

from ledger.apikey import Principal
from ledger.application import Ledger
from ledger.model import now_utc


def provide_ledger(state: State) -> Ledger:
    ledger: Ledger = state.ledger
    return ledger


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


def provide_now() -> datetime:
    return now_utc()
