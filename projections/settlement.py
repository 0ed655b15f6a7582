"""Franchise settlement by the average-cost method (SPEC 2.7), per month and store.

A store owes headquarters a fee for the points it issues (net of refunds; its own bonuses
included), at the `cost_per_point_fen` of the rule version each sale was valued with;
headquarters owes a store the cost of the redemptions it honours (net of voids) and the stored
value spent there (payments net of their refunds: goods handed over for converted points; a
conversion itself costs no store anything). Bonuses at headquarters' cost are in no store's
row: the totals show them (`hq_bonus_points`). The fee is kept exact (a decimal sum) and
rounded half-up once per store-month. Every figure comes from the log: rule versions and
their zone, stores and their kind, closed months; so a rebuild gives the same report.

An event belongs to the month of its `occurred_at` in chain time; if that month is closed it
goes to the first open month after it, in a row marked `late`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.persistence import Tracking

from ledger.domain.member import (
    BonusGranted,
    PointsAccrued,
    PointsConverted,
    PointsRedeemed,
    PointsReversed,
    StoredValueCredited,
    StoredValueDebited,
)
from ledger.domain.member import RedemptionVoided as Voided
from ledger.domain.rulebook import RuleSetPublished
from ledger.domain.settlement import PeriodClosed, first_open
from ledger.domain.store import StoreConfigured
from ledger.policies.chaintime import month_of
from projections.settlement_report import (
    HQ,
    MonthPoints,
    SettlementReport,
    SettlementRow,
    SettlementTotals,
    assemble,
    fen,
)
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

__all__ = [  # the report's types live in projections.settlement_report; asked for here too
    "MonthPoints",
    "SettlementReport",
    "SettlementRow",
    "SettlementTotals",
    "fen",
]
ZERO = Decimal(0)
ROWS_KEPT = 100_000  # store-month rows the writer keeps in memory


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
        # Contract version 2's figures (a table of their own: an older view gains it as is).
        "extras": Table(
            "period TEXT, store_id TEXT, late INTEGER, stored_value_cost_fen BIGINT, "
            "hq_bonus_points BIGINT",
            key="period, store_id, late",
        ),
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

    def move_extra(
        self,
        store_id: str,
        occurred_at: datetime,
        tracking: Tracking,
        *,
        stored_value_cost_fen: int = 0,
        hq_bonus_points: int = 0,
    ) -> None:
        """Add to the store-month's stored-value cost, or (store HQ) to headquarters' bonuses."""
        with self.transaction() as cursor:
            rates = self._rates(cursor)
            zone = rates[max(rates)][1] if rates else "Asia/Shanghai"
            period, late = self._period(cursor, month_of(occurred_at, ZoneInfo(zone)))
            cursor.write(
                "INSERT INTO {extras} (period, store_id, late, stored_value_cost_fen, "
                "hq_bonus_points) VALUES (?, ?, ?, ?, ?) ON CONFLICT (period, store_id, late) "
                "DO UPDATE SET stored_value_cost_fen = "
                "{extras}.stored_value_cost_fen + excluded.stored_value_cost_fen, "
                "hq_bonus_points = {extras}.hq_bonus_points + excluded.hq_bonus_points",
                (period, store_id, int(late), stored_value_cost_fen, hq_bonus_points),
            )
            cursor.track(tracking)

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
            cursor.execute(
                "SELECT store_id, late, stored_value_cost_fen, hq_bonus_points FROM {extras} "
                "WHERE period = ?",
                (period,),
            )
            extras = {(r[0], bool(r[1])): (int(r[2]), int(r[3])) for r in cursor.all()}
        return assemble(
            period,
            datetime.fromisoformat(closed[0]) if closed else None,
            stores,
            found,
            extras,
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

    @handles(StoredValueDebited)
    def _on_storedvaluedebited(self, e: StoredValueDebited, tracking: Tracking) -> None:
        self.view.move_extra(
            e.store_id, e.occurred_at, tracking, stored_value_cost_fen=e.amount_fen
        )

    @handles(StoredValueCredited)
    def _on_storedvaluecredited(self, e: StoredValueCredited, tracking: Tracking) -> None:
        if e.reason == "refund":  # a conversion's credit costs no store anything
            self.view.move_extra(
                e.store_id, e.occurred_at, tracking, stored_value_cost_fen=-e.amount_fen
            )
        else:
            self.view.record_position(tracking)

    @handles(BonusGranted)
    def _on_bonusgranted(self, e: BonusGranted, tracking: Tracking) -> None:
        if e.cost_to == "store":
            movement = Movement(points_issued=e.points)
            self.view.move(e.store_id, e.occurred_at, movement, tracking, e.rule_version)
        else:
            self.view.move_extra(HQ, e.occurred_at, tracking, hq_bonus_points=e.points)
