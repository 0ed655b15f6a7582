"""Signing in and out of the console with an API key, and choosing the language."""

from __future__ import annotations

import secrets
from typing import Any

import anyio.to_thread
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from api.console.render import page
from api.console.session import CONSOLE_ROLES, PAGES, Viewer, check_csrf, session_data
from api.console.text import language
from ledger.services.access import AccessService
from ledger.services.core import LedgerCore

KEY_CHARS_MAX = 200


def _local(path: str | None) -> str:
    """Where to go back to: a console path, never another site."""
    if path and path.startswith("/console") and not path.startswith("//"):
        return path
    return "/console"


class SignInController(Controller):
    path = "/console"
    include_in_schema = False

    @get("/", operation_id="consoleHome", sync_to_thread=False)
    def home(self, viewer: NamedDependency[Viewer]) -> Redirect:
        first = next((name for name in PAGES if viewer.may(name)), "operations")
        return Redirect(path=f"/console/{first}", status_code=303)

    @get("/login", operation_id="consoleSignInForm", sync_to_thread=False)
    def form(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, None, "login.html", error=None)

    @post("/login", operation_id="consoleSignIn", status_code=303)
    async def sign_in(
        self, request: Request[Any, Any, Any], access: NamedDependency[AccessService]
    ) -> Redirect | Template:
        form = dict(await request.form())
        check_csrf(request, form)
        key = str(form.get("key", "")).strip()[:KEY_CHARS_MAX]
        principal = await anyio.to_thread.run_sync(access.authenticate, key) if key else None
        if principal is None or principal.role not in CONSOLE_ROLES:
            error = "bad_key" if principal is None else "pos_refused"
            return page(request, None, "login.html", status=401, error=error)
        lang = language(session_data(request).get("lang"))
        # a new CSRF token with the new session: a token seen before signing in is worth nothing
        request.set_session(
            {
                "key": key,
                "lang": lang,
                "csrf": secrets.token_urlsafe(32),
                "sid": secrets.token_urlsafe(16),  # what signing out ends on the server
            }
        )
        return Redirect(path="/console", status_code=303)

    @post("/logout", operation_id="consoleSignOut", status_code=303)
    async def sign_out(
        self, request: Request[Any, Any, Any], core: NamedDependency[LedgerCore]
    ) -> Redirect:
        check_csrf(request, dict(await request.form()))
        sid = session_data(request).get("sid")
        if isinstance(sid, str):  # a copy of the cookie replayed later is refused
            await anyio.to_thread.run_sync(core.ended_sessions.end, sid)
        request.clear_session()
        return Redirect(path="/console/login", status_code=303)

    @get("/language", operation_id="consoleLanguage", sync_to_thread=False)
    def choose_language(
        self,
        request: Request[Any, Any, Any],
        to: FromQuery[str] = "zh-CN",
        back: FromQuery[str | None] = None,
    ) -> Redirect:
        request.set_session(session_data(request) | {"lang": language(to)})
        return Redirect(path=_local(back), status_code=303)
