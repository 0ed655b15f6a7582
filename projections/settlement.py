"""Franchise settlement by the average-cost method (SPEC 2.7), per month and store.

A store owes headquarters a fee for the points it issues (net of refunds), at the
`cost_per_point_fen` of the rule version each sale was valued with; headquarters owes a store
the cost of the redemptions it honours (net of voids). The fee is kept exact (a decimal sum)
and rounded half-up once per store-month. Every figure comes from the log: rule versions and
their zone, stores and their kind, closed months; so a rebuild gives the same report.

An event belongs to the month of its `occurred_at` in chain time; if that month is closed it
goes to the first open month after it, in a row marked `late`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.persistence import Tracking

from ledger.domain.member import PointsAccrued, PointsConverted, PointsRedeemed, PointsReversed
from ledger.domain.member import RedemptionVoided as Voided
from ledger.domain.rulebook import RuleSetPublished
from ledger.domain.settlement import PeriodClosed, first_open
from ledger.domain.store import StoreConfigured
from ledger.policies.chaintime import month_of
from projections.sqlview import (
    Cursor,
    PostgresSqlView,
    Row,
    SQLiteSqlView,
    SqlView,
    Table,
    ViewProjection,
    handles,
    utc_text,
)

ZERO = Decimal(0)
ROWS_KEPT = 100_000  # store-month rows the writer keeps in memory


class SettlementRow(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    kind: str | None
    franchisee: str | None
    points_issued: int
    fee_due_fen: int
    redemption_cost_fen: int
    difference_fen: int  # fee_due − redemption_cost: positive, the store pays headquarters
    late: bool
    points_redeemed: int
    points_converted: int
    converted_fen: int


class SettlementTotals(msgspec.Struct, frozen=True, kw_only=True):
    points_issued: int
    fee_due_fen: int
    redemption_cost_fen: int
    difference_fen: int


class SettlementReport(msgspec.Struct, frozen=True, kw_only=True):
    period: str
    closed: bool
    closed_at: datetime | None
    rows: list[SettlementRow]
    totals: SettlementTotals


class MonthPoints(msgspec.Struct, frozen=True, kw_only=True):
    """A settlement month's points over all stores (late rows in the month they settle in)."""

    period: str
    points_issued: int  # net of refund reversals
    points_redeemed: int  # net of voids
    points_converted: int  # to stored value


def fen(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


class Movement(msgspec.Struct, frozen=True, kw_only=True):
    """What one event adds to its store-month row."""

    points_issued: int = 0
    fee: Decimal = ZERO
    redemption_cost_fen: int = 0
    points_redeemed: int = 0
    points_converted: int = 0
    converted_fen: int = 0


class SettlementView(SqlView):
    TABLES: ClassVar[dict[str, Table]] = {
        "rows": Table(
            "period TEXT, store_id TEXT, late INTEGER, points_issued BIGINT, fee TEXT, "
            "redemption_cost_fen BIGINT, points_redeemed BIGINT, points_converted BIGINT, "
            "converted_fen BIGINT",
            key="period, store_id, late",
        ),
        "stores": Table("store_id TEXT, kind TEXT, franchisee TEXT", key="store_id"),
        "rates": Table("version INTEGER, cost_per_point TEXT, zone TEXT", key="version"),
        "periods": Table("period TEXT, closed_at TEXT", key="period"),
    }

    # -- writing (the projection) ----------------------------------------------------------

    def rule_version(self, event: RuleSetPublished, tracking: Tracking) -> None:
        settlement = event.rules.settlement
        cost = settlement.cost_per_point_fen if settlement else ZERO
        with self.transaction() as cursor:
            rates = self._rates(cursor)
            cursor.write(
                "INSERT INTO {rates} (version, cost_per_point, zone) VALUES (?, ?, ?)",
                (event.version, str(cost), event.rules.zone.key),
            )
            cursor.track(tracking)
            rates[event.version] = (cost, event.rules.zone.key)

    def store(self, event: StoreConfigured, tracking: Tracking) -> None:
        with self.transaction() as cursor:
            cursor.write(
                "INSERT INTO {stores} (store_id, kind, franchisee) VALUES (?, ?, ?) "
                "ON CONFLICT (store_id) DO UPDATE SET kind = excluded.kind, "
                "franchisee = excluded.franchisee",
                (event.store_id, event.kind, event.franchisee),
            )
            cursor.track(tracking)

    def close(self, event: PeriodClosed, tracking: Tracking) -> None:
        with self.transaction() as cursor:
            closed = self._closed(cursor)
            cursor.write(
                "INSERT INTO {periods} (period, closed_at) VALUES (?, ?)",
                (event.period, utc_text(event.closed_at)),
            )
            cursor.track(tracking)
            closed.add(event.period)

    def move(
        self,
        store_id: str,
        occurred_at: datetime,
        movement: Movement,
        tracking: Tracking,
        points_at_cost_of: int | None = None,
    ) -> None:
        """Add `movement` to the store's row for the month of `occurred_at`; with
        `points_at_cost_of` (a rule version), the fee of `movement.points_issued` points at
        that version's cost per point."""
        rows: dict[tuple[str, str, int], Row] = self.memo().setdefault("rows", {})
        with self.transaction() as cursor:
            rates = self._rates(cursor)
            if points_at_cost_of is not None:
                cost = rates.get(points_at_cost_of, (ZERO, ""))[0]
                movement = msgspec.structs.replace(movement, fee=movement.points_issued * cost)
            zone = rates[max(rates)][1] if rates else "Asia/Shanghai"
            period, late = self._period(cursor, month_of(occurred_at, ZoneInfo(zone)))
            key = (period, store_id, int(late))
            row = rows.get(key)
            if row is None and self.memo_is_whole():
                row = (0, "0", 0, 0, 0, 0)  # a store-month the rebuilt view has not seen yet
            elif row is None:
                cursor.execute(
                    "SELECT points_issued, fee, redemption_cost_fen, points_redeemed, "
                    "points_converted, converted_fen FROM {rows} "
                    "WHERE period = ? AND store_id = ? AND late = ?",
                    key,
                )
                row = cursor.one() or (0, "0", 0, 0, 0, 0)
            row = (
                row[0] + movement.points_issued,
                str(Decimal(row[1]) + movement.fee),
                row[2] + movement.redemption_cost_fen,
                row[3] + movement.points_redeemed,
                row[4] + movement.points_converted,
                row[5] + movement.converted_fen,
            )
            cursor.write(
                "INSERT INTO {rows} (period, store_id, late, points_issued, fee, "
                "redemption_cost_fen, points_redeemed, points_converted, converted_fen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (period, store_id, late) "
                "DO UPDATE SET points_issued = excluded.points_issued, fee = excluded.fee, "
                "redemption_cost_fen = excluded.redemption_cost_fen, "
                "points_redeemed = excluded.points_redeemed, "
                "points_converted = excluded.points_converted, "
                "converted_fen = excluded.converted_fen",
                (*key, *row),
            )
            cursor.track(tracking)
            if len(rows) >= ROWS_KEPT:
                rows.clear()
                self.memo_is_partial()
            rows[key] = row

    def _rates(self, cursor: Cursor) -> dict[int, tuple[Decimal, str]]:
        """Each rule version's cost per point and zone (read once, then kept up to date)."""
        memo = self.memo()
        if "rates" not in memo:
            cursor.execute("SELECT version, cost_per_point, zone FROM {rates}")
            memo["rates"] = {int(r[0]): (Decimal(r[1]), str(r[2])) for r in cursor.all()}
        rates: dict[int, tuple[Decimal, str]] = memo["rates"]
        return rates

    def _closed(self, cursor: Cursor) -> set[str]:
        memo = self.memo()
        if "closed" not in memo:
            cursor.execute("SELECT period FROM {periods}")
            memo["closed"] = {str(r[0]) for r in cursor.all()}
        closed: set[str] = memo["closed"]
        return closed

    def _period(self, cursor: Cursor, period: str) -> tuple[str, bool]:
        """The first open month from `period` on, and whether that is a later one."""
        moved = first_open(period, self._closed(cursor))
        return moved, moved != period

    # -- reading ---------------------------------------------------------------------------

    def report(self, period: str) -> SettlementReport:
        """Every known store's row for `period` (zeros where nothing happened), late rows too."""
        with self.transaction(commit=False) as cursor:
            cursor.execute("SELECT closed_at FROM {periods} WHERE period = ?", (period,))
            closed = cursor.one()
            cursor.execute("SELECT store_id, kind, franchisee FROM {stores}")
            stores = {r[0]: (r[1], r[2]) for r in cursor.all()}
            cursor.execute(
                "SELECT store_id, late, points_issued, fee, redemption_cost_fen, "
                "points_redeemed, points_converted, converted_fen FROM {rows} WHERE period = ?",
                (period,),
            )
            found = {(r[0], bool(r[1])): r for r in cursor.all()}
        for store_id in stores:
            found.setdefault((store_id, False), (store_id, 0, 0, "0", 0, 0, 0, 0))
        rows = [self._report_row(r, stores.get(r[0])) for _, r in sorted(found.items())]
        return SettlementReport(
            period=period,
            closed=closed is not None,
            closed_at=datetime.fromisoformat(closed[0]) if closed else None,
            rows=rows,
            totals=SettlementTotals(
                points_issued=sum(r.points_issued for r in rows),
                fee_due_fen=sum(r.fee_due_fen for r in rows),
                redemption_cost_fen=sum(r.redemption_cost_fen for r in rows),
                difference_fen=sum(r.difference_fen for r in rows),
            ),
        )

    def months(self, first: str, last: str) -> list[MonthPoints]:
        """Points issued, redeemed and converted per settlement month in `first..last` (only
        months with rows). Columns are named: PostgreSQL's rows come as dicts."""
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT period, SUM(points_issued) AS issued, SUM(points_redeemed) AS redeemed, "
                "SUM(points_converted) AS converted FROM {rows} WHERE period >= ? AND period <= ? GROUP BY period ORDER BY period",
                (first, last),
            )
            return [
                MonthPoints(
                    period=str(r[0]),
                    points_issued=int(r[1]),
                    points_redeemed=int(r[2]),
                    points_converted=int(r[3]),
                )
                for r in cursor.all()
            ]

    @staticmethod
    def _report_row(r: tuple[Any, ...], store: tuple[str, str | None] | None) -> SettlementRow:
        fee_due = fen(Decimal(r[3]))
        return SettlementRow(
            store_id=r[0],
            kind=store[0] if store else None,
            franchisee=store[1] if store else None,
            points_issued=r[2],
            fee_due_fen=fee_due,
            redemption_cost_fen=r[4],
            difference_fen=fee_due - r[4],
            late=bool(r[1]),
            points_redeemed=r[5],
            points_converted=r[6],
            converted_fen=r[7],
        )


class PostgresSettlementView(PostgresSqlView, SettlementView):
    pass


class SQLiteSettlementView(SQLiteSqlView, SettlementView):
    pass


class SettlementProjection(ViewProjection[SettlementView]):
    name = "settlement"

    @handles(RuleSetPublished)
    def _on_rulesetpublished(self, e: RuleSetPublished, tracking: Tracking) -> None:
        self.view.rule_version(e, tracking)

    @handles(StoreConfigured)
    def _on_storeconfigured(self, e: StoreConfigured, tracking: Tracking) -> None:
        self.view.store(e, tracking)

    @handles(PeriodClosed)
    def _on_periodclosed(self, e: PeriodClosed, tracking: Tracking) -> None:
        self.view.close(e, tracking)

    @handles(PointsAccrued)
    def _on_pointsaccrued(self, e: PointsAccrued, tracking: Tracking) -> None:
        movement = Movement(points_issued=e.points)
        self.view.move(e.store_id, e.occurred_at, movement, tracking, e.valuation.rule_version)

    @handles(PointsReversed)
    def _on_pointsreversed(self, e: PointsReversed, tracking: Tracking) -> None:
        movement = Movement(points_issued=-e.points)
        self.view.move(e.store_id, e.occurred_at, movement, tracking, e.rule_version)

    @handles(PointsRedeemed)
    def _on_pointsredeemed(self, e: PointsRedeemed, tracking: Tracking) -> None:
        movement = Movement(redemption_cost_fen=e.cost_fen, points_redeemed=e.points)
        self.view.move(e.store_id, e.occurred_at, movement, tracking)

    @handles(Voided)
    def _on_voided(self, e: Voided, tracking: Tracking) -> None:
        redeemed = e.points_restored - e.released_hold
        movement = Movement(redemption_cost_fen=-e.cost_fen, points_redeemed=-redeemed)
        self.view.move(e.store_id, e.occurred_at, movement, tracking)

    @handles(PointsConverted)
    def _on_pointsconverted(self, e: PointsConverted, tracking: Tracking) -> None:
        movement = Movement(points_converted=e.points, converted_fen=e.credited_fen)
        self.view.move(e.store_id, e.occurred_at, movement, tracking)
