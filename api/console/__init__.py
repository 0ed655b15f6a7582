"""The back-office console (`/console`): server-rendered pages for customer service, finance and
operations, signed in with an API key held in an encrypted session cookie (`session.py`).

The pages read through the same services and Queries objects as the JSON API and post adjustments
through the same ledger command; nothing here decides anything about points. `/console` is not
behind the Bearer middleware: the session authenticates it.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, Router
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from api.console.finance import FinancePage
from api.console.identity import IdentityForms
from api.console.members import MembersPage
from api.console.operations import OperationsPage
from api.console.render import STATIC, add_security_headers, page, template_config
from api.console.session import (
    ConsoleSession,
    CsrfFailed,
    PageForbidden,
    SignInRequired,
    provide_viewer,
    session_secret,
)
from api.console.signin import SignInController
from ledger.settings import Settings

__all__ = ["console_routes", "template_config"]


def _sign_in(_: Request[Any, Any, Any], __: SignInRequired) -> Response[Any]:
    return Redirect(path="/console/login", status_code=303)


def _forbidden(request: Request[Any, Any, Any], exc: PageForbidden) -> Response[Any]:
    return page(request, exc.viewer, "forbidden.html", status=403)


def _csrf(request: Request[Any, Any, Any], _: CsrfFailed) -> Response[Any]:
    return page(request, None, "login.html", status=403, error="csrf_failed")


def console_routes(settings: Settings) -> list[Router]:
    """The console's pages (behind the session middleware) and its stylesheet."""
    zone = ZoneInfo(settings.timezone)
    pages = Router(
        path="/",
        route_handlers=[SignInController, MembersPage, IdentityForms, FinancePage, OperationsPage],
        middleware=[DefineMiddleware(ConsoleSession, secret=session_secret(settings.master_key))],
        dependencies={
            "viewer": Provide(provide_viewer),
            "zone": Provide(lambda: zone, sync_to_thread=False),
        },
        exception_handlers={
            SignInRequired: _sign_in,
            PageForbidden: _forbidden,
            CsrfFailed: _csrf,
        },
        after_request=add_security_headers,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/console/static", directories=[STATIC], name="console-static"
    )
    return [pages, static]
