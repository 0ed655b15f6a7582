"""Who is looking: the console's session, its CSRF token and the role's pages.

The session is an encrypted cookie (AES-GCM, Litestar's client-side backend) holding the API key
the person signed in with, their language and a CSRF token; its secret is derived from the
master key, so every worker and every restart reads it. The key is authenticated again on every
request (`AccessService.authenticate`, as the Bearer middleware does), so a revoked key is signed out;
signing out records the session's random id on the server (`ledger.infrastructure.sessions`), so a
copy of the cookie kept by anyone is refused from then on.
The cookie is HttpOnly and SameSite=Strict, and Secure whenever the request came over https
(uvicorn takes the scheme from X-Forwarded-Proto of a proxy on 127.0.0.1); over plain http, i.e.
on localhost in development and in the tests, it cannot be Secure. Forms carry the session's
CSRF token in a hidden field, and a POST without the right one is refused (403).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request
from litestar.middleware.session import SessionMiddleware
from litestar.middleware.session.client_side import ClientSideSessionBackend, CookieBackendConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from api.console.text import language
from ledger.application import Ledger
from ledger.domain.apikey import Principal
from ledger.domain.commands import Role

COOKIE = "ledger_console"
SESSION_SECONDS = 8 * 3600  # a shift
CSRF_FIELD = "_csrf"

# Which roles see which page (admin sees every page). Operations' analytics table follows
# GET /v1/analytics's guard; its projection lag is shown to admins only.
PAGES: dict[str, tuple[Role, ...]] = {
    "members": ("service",),
    "finance": ("finance",),
    "operations": ("service", "finance"),
}
CONSOLE_ROLES: tuple[Role, ...] = ("service", "finance", "admin")


class SignInRequired(Exception):
    """No session, or its key is no longer valid: the person is sent to the sign-in page."""


class PageForbidden(Exception):
    def __init__(self, viewer: Viewer) -> None:
        super().__init__(f"role {viewer.principal.role!r} may not see this page")
        self.viewer = viewer


class CsrfFailed(Exception):
    """A form came without the session's CSRF token."""


class Viewer(msgspec.Struct, frozen=True, kw_only=True):
    principal: Principal
    lang: str
    csrf: str

    def may(self, page: str) -> bool:
        return self.principal.role == "admin" or self.principal.role in PAGES[page]

    def require(self, page: str) -> None:
        if not self.may(page):
            raise PageForbidden(self)


def session_secret(master_key: bytes) -> bytes:
    """The session cookie's AES-256 key, derived from the master key (a random one per process
    when there is none, so sessions then end with the process)."""
    if not master_key:
        return secrets.token_bytes(32)
    return hmac.new(master_key, b"pharmacy-ledger console session v1", hashlib.sha256).digest()


def _backend(secret: bytes, secure: bool) -> ClientSideSessionBackend:
    config = CookieBackendConfig(
        secret=secret,
        key=COOKIE,
        path="/console",
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure,
    )
    return ClientSideSessionBackend(config=config)


class ConsoleSession:
    """Litestar's session middleware, with a Secure cookie when the request came over https."""

    def __init__(self, app: ASGIApp, secret: bytes) -> None:
        self.https = SessionMiddleware(app, backend=_backend(secret, secure=True))
        self.http = SessionMiddleware(app, backend=_backend(secret, secure=False))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.https if scope.get("scheme") == "https" else self.http
        await chosen(scope, receive, send)


def session_data(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """A copy of the session's data (empty when there is none or it was cleared)."""
    data = request.scope.get("session")
    return dict(data) if isinstance(data, dict) else {}


def csrf_token(request: Request[Any, Any, Any]) -> str:
    """The session's CSRF token (a session is started if there is none)."""
    session = session_data(request)
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
        request.set_session(session)
    return token


def check_csrf(request: Request[Any, Any, Any], form: dict[str, Any]) -> None:
    expected = session_data(request).get("csrf")
    given = form.get(CSRF_FIELD)
    if not isinstance(expected, str) or not isinstance(given, str):
        raise CsrfFailed
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfFailed


async def provide_viewer(request: Request[Any, Any, Any]) -> Viewer:
    """The signed-in person (SignInRequired otherwise), re-authenticated from the session."""
    session = session_data(request)
    key, sid = session.get("key"), session.get("sid")
    if not isinstance(key, str) or not isinstance(sid, str):
        raise SignInRequired
    ledger: Ledger = request.app.state.ledger
    if await anyio.to_thread.run_sync(ledger.core.ended_sessions.ended, sid):
        request.clear_session()
        raise SignInRequired  # signed out: a replayed copy of the cookie is worth nothing
    principal = await anyio.to_thread.run_sync(ledger.access.authenticate, key)
    if principal is None or principal.role not in CONSOLE_ROLES:
        request.clear_session()
        raise SignInRequired
    request.scope["state"]["principal"] = principal  # the request log names the role
    return Viewer(principal=principal, lang=language(session.get("lang")), csrf=csrf_token(request))


def pop_flash(request: Request[Any, Any, Any]) -> str | None:
    """The message a redirect left for the next page, once."""
    session = session_data(request)
    flash = session.pop("flash", None)
    if flash is not None:
        request.set_session(session)
    return flash if isinstance(flash, str) else None


def set_flash(request: Request[Any, Any, Any], message: str) -> None:
    request.set_session(session_data(request) | {"flash": message})
