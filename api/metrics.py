"""Prometheus metrics: per-route request counts and latency histograms (one plain ASGI layer,
`request_metrics`), plus the ledger's own counters. Set PROMETHEUS_MULTIPROC_DIR when running
several workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from litestar.plugins.prometheus import PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.errors import status_of

EVENTS_APPENDED = Counter("ledger_events_appended_total", "Events appended to the ledger's log")

# The names and labels Litestar's PrometheusMiddleware gave them (dashboards keep working).
_LABELS = ("method", "path", "status_code", "app_name")
APP_NAME = "ledger"
REQUESTS = Counter("ledger_requests_total", "Total requests", _LABELS)
REQUEST_ERRORS = Counter("ledger_requests_error_total", "Total errors in requests", _LABELS)
REQUEST_SECONDS = Histogram(
    "ledger_request_duration_seconds",
    "Request duration, in seconds",
    _LABELS,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
IN_PROGRESS = Gauge(
    "ledger_requests_in_progress",
    "Total requests currently in progress",
    _LABELS,
    multiprocess_mode="livesum",
)
_children: dict[tuple[str, str, int], tuple[Any, Any, Any | None]] = {}


def _metrics_of(method: str, path: str, status: int) -> tuple[Any, Any, Any | None]:
    """The labelled children of one route and status, looked up once (`labels()` takes a
    lock and builds a key on every call)."""
    key = (method, path, status)
    found = _children.get(key)
    if found is None:
        values = (method, path, str(status), APP_NAME)
        found = _children[key] = (
            REQUESTS.labels(*values),
            REQUEST_SECONDS.labels(*values),
            REQUEST_ERRORS.labels(*values) if status >= 500 else None,
        )
    return found


def request_metrics(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: count each request and time it (to its last body byte) by method,
    route template and status; /metrics itself is not counted. One plain layer in place of
    Litestar's PrometheusMiddleware (a Request object, an exclusion regex, a label dict and
    four labelled lookups per request)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":  # type: ignore[comparison-overlap]
            await app(scope, receive, send)
            return
        method = scope["method"]  # type: ignore[typeddict-item]
        path = scope.get("path_template") or scope["path"]
        started = time.perf_counter()
        ended = 0.0
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status, ended
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                ended = time.perf_counter()
            await send(message)

        in_progress = IN_PROGRESS.labels(method, path, "200", APP_NAME)
        in_progress.inc()
        try:
            await app(scope, receive, timed_send)
        except Exception as e:
            status = status_of(e)  # raised by a middleware inside, answered outside it
            raise
        finally:
            in_progress.dec()
            count, seconds, errors = _metrics_of(method, path, status)
            count.inc()
            seconds.observe((ended or time.perf_counter()) - started)
            if errors is not None:
                errors.inc()

    return middleware


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def count_appended(n: int) -> None:
    EVENTS_APPENDED.inc(n)


class ProjectionLag(Collector):
    """`ledger_projection_lag_events{projection=…}`: events in the log a view has not applied
    yet, read at scrape time from the log's head and each view's tracked position; and
    `ledger_projection_failed{projection=…}`, 1 while a projection cannot apply an event."""

    def __init__(self) -> None:
        self.source: Callable[[], tuple[int, dict[str, int]]] | None = None
        self.failed: Callable[[], set[str]] | None = None  # projections that cannot apply an event

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "ledger_projection_lag_events",
            "Events in the log not yet applied by the projection",
            labels=["projection"],
        )
        position = GaugeMetricFamily(
            "ledger_projection_position",
            "The last log position (notification id) the projection applied",
            labels=["projection"],
        )
        failed = GaugeMetricFamily(
            "ledger_projection_failed",
            "1 while the projection cannot apply an event (it stopped there; /health/ready says "
            "which)",
            labels=["projection"],
        )
        if self.source is not None:
            try:
                head, positions = self.source()
                stopped = self.failed() if self.failed is not None else set()
            except Exception:
                return
            for name, at in sorted(positions.items()):
                lag.add_metric([name], max(head - at, 0))
                position.add_metric([name], at)
                failed.add_metric([name], 1 if name in stopped else 0)
        yield lag
        yield position
        yield failed


PROJECTION_LAG = ProjectionLag()
REGISTRY.register(PROJECTION_LAG)
