"""structlog configured once (JSON lines, ISO timestamps, context vars), and the request log.

Every line of a request carries its request id, role and store. Bodies are never logged, so no
name, phone or ID number can reach a log line.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import status_of

_configured = False


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was configured (a
    redirected or captured stream may be closed by then: pytest's capture, a CLI's wrapper)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: int = logging.INFO) -> None:
    global _configured  # noqa: PLW0603 - structlog is process-wide: configure it once
    if _configured:
        return
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True


log = structlog.get_logger("api.request")


def request_logging(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: a request id per request (or the caller's X-Request-ID), one log line."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        given = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = given if given.isprintable() and given else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status: int | None = None  # none sent: the client went away before the answer (499)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        except Exception as e:
            status = status_of(e)  # raised by middleware, answered outside it
            raise
        finally:
            principal = scope.get("state", {}).get("principal")
            log.info(
                "request",
                method=scope.get("method"),
                path=scope["path"],
                status=status if status is not None else 499,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                role=getattr(principal, "role", None),
                store_id=getattr(principal, "store_id", None),
                key_id=getattr(principal, "key_id", None),
            )
            structlog.contextvars.clear_contextvars()

    return middleware
