"""The operations page: how far each projection lags the log, and (once the analytics query
ships) member analytics per store.

The analytics table plugs in here: `analytics_table(report)` turns the analytics Struct (its
rows, one per store, are its first field holding a list of Structs) into a table of formatted
cells, and the template's `analytics` block draws it. It computes nothing: every figure is the
Struct's own."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from api.console import text
from api.console.render import page
from api.console.session import Viewer
from projections.queries import Queries


class Table(msgspec.Struct, frozen=True, kw_only=True):
    columns: list[str]
    rows: list[list[str]]


def cell(field: str, value: Any) -> str:
    """A figure as the console shows it: fen as yuan, ratios and rates as percentages."""
    if value is None:
        return "—"
    if field.endswith("_fen") and isinstance(value, int):
        return text.yuan(value)
    if field.endswith(("_ratio", "_rate", "_share")) and isinstance(value, Decimal | float | str):
        return f"{Decimal(str(value)) * 100:.1f}%"
    if isinstance(value, int) and not isinstance(value, bool):
        return text.points(value)
    return str(value)


def _rows(report: msgspec.Struct) -> list[msgspec.Struct]:
    for value in msgspec.structs.asdict(report).values():
        if isinstance(value, list) and all(isinstance(v, msgspec.Struct) for v in value):
            return value
    return [report]  # a Struct of one store's figures


def analytics_table(report: msgspec.Struct | Sequence[msgspec.Struct]) -> Table:
    """The analytics report (or its rows) as a table, one row per store, columns in field
    order."""
    rows = _rows(report) if isinstance(report, msgspec.Struct) else list(report)
    if not rows:
        return Table(columns=[], rows=[])
    columns = list(msgspec.structs.asdict(rows[0]))
    body = [[cell(c, v) for c, v in msgspec.structs.asdict(row).items()] for row in rows]
    return Table(columns=columns, rows=body)


class OperationsPage(Controller):
    path = "/console/operations"
    include_in_schema = False

    @get("/", operation_id="consoleOperations", sync_to_thread=True)
    def read(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Viewer],
        queries: NamedDependency[Queries],
    ) -> Template:
        viewer.require("operations")
        # Analytics plug in here: analytics_table(queries.analytics(period, store_id)) once
        # `Queries.analytics` exists (with a period picker); until then the page says so.
        analytics: Table | None = None
        return page(request, viewer, "operations.html", lag=queries.lag(), analytics=analytics)
