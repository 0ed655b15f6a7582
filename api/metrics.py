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
    yet, read at scrape time from the log's head and each view's tracked position."""

    def __init__(self) -> None:
        self.source: Callable[[], tuple[int, dict[str, int]]] | None = None

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
        if self.source is not None:
            try:
                head, positions = self.source()
            except Exception:
                return
            for name, at in sorted(positions.items()):
                lag.add_metric([name], max(head - at, 0))
                position.add_metric([name], at)
        yield lag
        yield position


PROJECTION_LAG = ProjectionLag()
REGISTRY.register(PROJECTION_LAG)
