"""One mapping from every error to an RFC 9457 problem document (`application/problem+json`).

Ledger errors carry their own stable slug; framework errors get one here. A 500 never shows a
traceback: the request id in the document finds the logged one.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from eventsourcing.persistence import DataError, InterfaceError, OperationalError, PersistenceError
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from ledger.domain.errors import Conflict, InvalidInput, LedgerError, NotFound, Unavailable

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "x-request-id"
log = structlog.get_logger("api")


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem document; `field` names the offending input where there is one."""

    type: str
    title: str
    status: int
    detail: str | None = None
    field: str | None = None
    errors: list[dict[str, Any]] | None = None
    request_id: str | None = None
    current_member_id: str | None = None  # card-replaced, member-merged: the card to use


def problem(
    request: Request[Any, Any, Any], doc: Problem, headers: dict[str, str] | None = None
) -> Response[Problem]:
    doc.request_id = request.scope.get("state", {}).get("request_id")
    headers = dict(headers or {})
    if doc.request_id:
        headers[REQUEST_ID_HEADER] = doc.request_id
    return Response(doc, status_code=doc.status, media_type=PROBLEM_JSON, headers=headers or None)


def _ledger_status(exc: LedgerError) -> int:
    if isinstance(exc, InvalidInput):
        return HTTP_422_UNPROCESSABLE_ENTITY
    if isinstance(exc, NotFound):
        return HTTP_404_NOT_FOUND
    if isinstance(exc, Conflict):
        return HTTP_409_CONFLICT
    if isinstance(exc, Unavailable):
        return HTTP_503_SERVICE_UNAVAILABLE
    return HTTP_400_BAD_REQUEST


def connection_lost(exc: BaseException | None) -> bool:
    """Whether `exc` says the database cannot be reached (the only thing that trips the gate):
    a value it refused, or a statement it failed, is about that request alone."""
    return isinstance(exc, OperationalError | InterfaceError)


def _store_down(request: Request[Any, Any, Any]) -> None:
    """Tell the store gate (api/outage.py) to answer 503 at once until the store is back."""
    gate = getattr(request.app.state, "store_gate", None)
    if gate is not None:
        gate.mark_down()


def ledger_problem(exc: LedgerError) -> Problem:
    return Problem(
        type=exc.slug,
        title=exc.title,
        status=_ledger_status(exc),
        detail=exc.detail,
        field=exc.field,
        current_member_id=getattr(exc, "current_member_id", None),
    )


def ledger_error(request: Request[Any, Any, Any], exc: LedgerError) -> Response[Problem]:
    if isinstance(exc, Unavailable) and connection_lost(exc.__cause__):
        _store_down(request)
    return problem(request, ledger_problem(exc))


def _field_of(key: str | None) -> str | None:
    """Litestar reports `data.lines[0].amount_fen` style keys; the body itself is `data`."""
    if not key:
        return None
    return key.removeprefix("data.").removeprefix("data") or None


def validation_problem(exc: ValidationException) -> Problem:
    errors = (
        [e for e in (exc.extra or []) if isinstance(e, dict)] if isinstance(exc.extra, list) else []
    )
    for e in errors:
        e["key"] = _field_of(e.get("key")) or e.get("key")
    first = errors[0] if errors else {}
    detail = "; ".join(f"{e.get('key')}: {e.get('message')}" for e in errors) or exc.detail
    return Problem(
        type="invalid-input",
        title="Invalid input",
        status=HTTP_422_UNPROCESSABLE_ENTITY,
        detail=detail,
        field=first.get("key"),
        errors=errors or None,
    )


def validation_error(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Problem]:
    return problem(request, validation_problem(exc))


_HTTP_SLUGS: dict[type[HTTPException], tuple[str, str]] = {
    NotAuthorizedException: ("unauthorized", "No valid API key"),
    PermissionDeniedException: ("forbidden", "This key may not do that"),
    NotFoundException: ("not-found", "Not found"),
    TooManyRequestsException: ("rate-limited", "Too many requests for this API key"),
}


def http_problem(exc: HTTPException) -> Problem:
    slug, title = _HTTP_SLUGS.get(type(exc), ("", ""))
    if not slug:
        if exc.status_code == 413:
            slug, title = "body-too-large", "Request body too large"
        elif exc.status_code == 405:
            slug, title = "method-not-allowed", "Method not allowed"
        elif isinstance(exc, ClientException) and exc.status_code == HTTP_400_BAD_REQUEST:
            slug, title = "malformed-request", "Malformed request"
        else:
            slug, title = "http-error", "HTTP error"
    return Problem(type=slug, title=title, status=exc.status_code, detail=exc.detail)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    return problem(request, http_problem(exc), headers=dict(exc.headers or {}))


def status_of(exc: Exception) -> int:
    """The status the handlers below answer `exc` with (for the request log)."""
    if isinstance(exc, LedgerError):
        return _ledger_status(exc)
    if isinstance(exc, DataError):
        return HTTP_422_UNPROCESSABLE_ENTITY
    if isinstance(exc, PersistenceError):
        return HTTP_503_SERVICE_UNAVAILABLE
    if isinstance(exc, HTTPException):
        return exc.status_code
    return HTTP_500_INTERNAL_SERVER_ERROR


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.exception("unhandled error", error=type(exc).__name__)
    return problem(
        request,
        Problem(
            type="internal-error",
            title="Internal error",
            status=HTTP_500_INTERNAL_SERVER_ERROR,
            detail="the error was logged with this request id",
        ),
    )


def store_unavailable(request: Request[Any, Any, Any], exc: PersistenceError) -> Response[Problem]:
    log.warning("event store unavailable", error=type(exc).__name__)
    if connection_lost(exc):
        _store_down(request)
    return ledger_error(
        request, Unavailable(f"the event store is unavailable: {type(exc).__name__}")
    )


def value_refused(request: Request[Any, Any, Any], exc: DataError) -> Response[Problem]:
    """A value the database refuses (SPEC 3.1): the request's fault, a 422, never an outage."""
    log.warning("value refused by the store", error=type(exc).__name__)
    return ledger_error(request, InvalidInput("the store refused a value of this request"))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    LedgerError: ledger_error,
    DataError: value_refused,
    PersistenceError: store_unavailable,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: internal_error,
}
