"""Prometheus metrics: per-route request counts and latency histograms (Litestar's middleware),
plus the ledger's own counters. Set PROMETHEUS_MULTIPROC_DIR when running several workers."""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter

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
