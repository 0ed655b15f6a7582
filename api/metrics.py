"""Prometheus metrics: per-route request counts and latency histograms (Litestar's middleware),
plus the ledger's own counters. Set PROMETHEUS_MULTIPROC_DIR when running several workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

EVENTS_APPENDED = Counter("ledger_events_appended_total", "Events appended to the ledger's log")

PROMETHEUS = PrometheusConfig(
    app_name="ledger",
    prefix="ledger",
    group_path=True,
    exclude=["^/metrics$"],
    buckets=[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
)


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
