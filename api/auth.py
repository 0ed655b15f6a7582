"""Authentication (`Authorization: Bearer <api key>`) and the role and store guards.

The middleware resolves the key to a `Principal` off the event loop (it reads the store); guards
then check the role, and `require_store` keeps a `pos` key to its own store.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import Guard

from ledger.application import Ledger
from ledger.domain.apikey import Principal
from ledger.domain.commands import Role

# /console authenticates by its own session cookie (api/console/session.py), not by Bearer.
PUBLIC_PATHS = [
    "^/health(/live|/ready)?/?$",
    "^/metrics$",
    "^/schema",
    "^/docs(/|$)",
    "^/console(/|$)",
]


class ApiKeyAuthentication(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise NotAuthorizedException("send Authorization: Bearer <api key>")
        ledger: Ledger = connection.app.state.ledger
        key = key.strip()
        principal = ledger.access.kept(key)  # read in the last second: no thread, no store
        if principal is None:
            principal = await anyio.to_thread.run_sync(ledger.access.authenticate, key)
        if principal is None:
            raise NotAuthorizedException("unknown or revoked API key")
        connection.scope["state"]["principal"] = principal
        return AuthenticationResult(user=principal, auth=key)


def roles(*allowed: Role) -> Guard:
    """A guard that admits these roles (and `admin`, which may call everything). A coroutine:
    Litestar runs a plain function guard in a worker thread, a hop per request for a compare."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal: Principal = connection.user
        if principal.role != "admin" and principal.role not in allowed:
            raise PermissionDeniedException(
                f"role {principal.role!r} may not call this; it needs one of {', '.join(allowed)}"
            )

    return guard


def require_store(principal: Principal, store_id: str) -> None:
    """A `pos` key acts for its own store only."""
    if principal.role == "pos" and principal.store_id != store_id:
        raise PermissionDeniedException(
            f"this key belongs to store {principal.store_id!r}, not {store_id!r}"
        )
