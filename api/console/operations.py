"""The operations page: how far each projection lags the log, and (once the analytics query
ships) member analytics per store.

The analytics table plugs in here: `analytics_table(rows)` turns the rows of the analytics
Struct (one per store) into a table of labelled, formatted cells, and the template's
`analytics` block draws it. It computes nothing: every figure is the Struct's own."""

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


def analytics_table(rows: Sequence[msgspec.Struct]) -> Table:
    """The analytics Struct's rows (one per store) as a table, columns in field order."""
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
        # Analytics plug in here: analytics_table(queries.analytics(period, store_id).rows)
        # once `Queries.analytics` exists; until then the template says it is coming.
        analytics: Table | None = None
        return page(request, viewer, "operations.html", lag=queries.lag(), analytics=analytics)
