"""A store's day for reconciliation with its till (SPEC 3 `GET /v1/stores/{id}/daily/{date}`):
sales, refunds, redemptions, conversions and stored value, by the chain-time day of each event's
`occurred_at`, with the day's receipt numbers.

Amounts are full line amounts (an insured part included). A redemption's void counts against the
day it happens (count, points and cost back), as settlement nets it; a hold released unspent was
never a redemption. Every figure is an additive upsert per (store, day), so events apply in any
order, and a rebuild makes the same rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec
from eventsourcing.persistence import Tracking

from ledger.domain.member import (
    PointsConverted,
    PointsRedeemed,
    RedemptionVoided,
    StoredValueCredited,
    StoredValueDebited,
)
from ledger.domain.nonmember import NonMemberSaleRecorded, NonMemberSaleRefunded
from ledger.domain.rulebook import RuleSetPublished
from ledger.domain.sale import SaleRecorded, SaleRefunded
from projections.chainzone import CHAIN_TABLE, ChainZoneView
from projections.sqlview import (
    PostgresSqlView,
    SQLiteSqlView,
    Table,
    ViewProjection,
    handles,
)

FIGURES = (
    "sales_count",
    "sales_fen",
    "points_earned",
    "refunds_count",
    "refunds_fen",
    "points_reversed",
    "redemptions_count",
    "redeemed_points",
    "redemption_cost_fen",
    "conversions_count",
    "converted_points",
    "credited_fen",
    "paid_fen",
    "refunded_fen",
)
RECEIPTS_MAX = 100_000  # receipt numbers one store's day may list


class DaySales(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    amount_fen: int
    points_earned: int


class DayRefunds(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    amount_fen: int
    points_reversed: int


class DayRedemptions(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    points: int
    cost_fen: int


class DayConversions(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    points: int
    credited_fen: int


class DayStoredValue(msgspec.Struct, frozen=True, kw_only=True):
    paid_fen: int
    refunded_fen: int


class DailyReport(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    date: str
    sales: DaySales
    refunds: DayRefunds
    redemptions: DayRedemptions
    conversions: DayConversions
    stored_value: DayStoredValue
    receipts: list[str]


class DailyView(ChainZoneView):
    TABLES: ClassVar[dict[str, Table]] = {
        "days": Table(
            "store_id TEXT, day TEXT, " + ", ".join(f"{f} BIGINT" for f in FIGURES),
            key="store_id, day",
        ),
        "receipts": Table(
            "store_id TEXT, day TEXT, receipt_no TEXT", key="store_id, day, receipt_no"
        ),
        "chain": CHAIN_TABLE,
    }

    def add(
        self,
        tracking: Tracking,
        store_id: str,
        occurred_at: datetime,
        figures: dict[str, int],
        receipt_no: str | None = None,
    ) -> None:
        """Add `figures` to the store's day of `occurred_at` (chain time), and a receipt."""
        with self.transaction() as cursor:
            day = occurred_at.astimezone(self.chain_zone(cursor)).date().isoformat()
            names = list(figures)
            cursor.write(
                f"INSERT INTO {{days}} (store_id, day, {', '.join(FIGURES)}) VALUES (?, ?, "
                + ", ".join("?" for _ in FIGURES)
                + ") ON CONFLICT (store_id, day) DO UPDATE SET "
                + ", ".join(f"{n} = {{days}}.{n} + excluded.{n}" for n in names),
                (store_id, day, *(figures.get(f, 0) for f in FIGURES)),
            )
            if receipt_no is not None:
                cursor.write(
                    "INSERT INTO {receipts} (store_id, day, receipt_no) VALUES (?, ?, ?) "
                    "ON CONFLICT (store_id, day, receipt_no) DO NOTHING",
                    (store_id, day, receipt_no),
                )
            cursor.track(tracking)

    def report(self, store_id: str, day: str) -> DailyReport:
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT {', '.join(FIGURES)} FROM {{days}} WHERE store_id = ? AND day = ?",
                (store_id, day),
            )
            row = cursor.one()
            cursor.execute(
                "SELECT receipt_no FROM {receipts} WHERE store_id = ? AND day = ? "
                "ORDER BY receipt_no LIMIT ?",
                (store_id, day, RECEIPTS_MAX),
            )
            receipts = [str(r[0]) for r in cursor.all()]
        f = (
            dict(zip(FIGURES, (int(v) for v in row), strict=True))
            if row
            else dict.fromkeys(FIGURES, 0)
        )
        return DailyReport(
            store_id=store_id,
            date=day,
            sales=DaySales(
                count=f["sales_count"], amount_fen=f["sales_fen"], points_earned=f["points_earned"]
            ),
            refunds=DayRefunds(
                count=f["refunds_count"],
                amount_fen=f["refunds_fen"],
                points_reversed=f["points_reversed"],
            ),
            redemptions=DayRedemptions(
                count=f["redemptions_count"],
                points=f["redeemed_points"],
                cost_fen=f["redemption_cost_fen"],
            ),
            conversions=DayConversions(
                count=f["conversions_count"],
                points=f["converted_points"],
                credited_fen=f["credited_fen"],
            ),
            stored_value=DayStoredValue(paid_fen=f["paid_fen"], refunded_fen=f["refunded_fen"]),
            receipts=receipts,
        )


class PostgresDailyView(PostgresSqlView, DailyView):
    pass


class SQLiteDailyView(SQLiteSqlView, DailyView):
    pass


class DailyProjection(ViewProjection[DailyView]):
    """Each store's days, for reconciliation with the till."""

    name = "daily"

    @handles(RuleSetPublished)
    def _on_rules(self, e: RuleSetPublished, tracking: Tracking) -> None:
        self.view.zone(e, tracking)

    @handles(SaleRecorded)
    def _on_sale(self, e: SaleRecorded, tracking: Tracking) -> None:
        figures = {
            "sales_count": 1,
            "sales_fen": sum(line.amount_fen for line in e.lines),
            "points_earned": e.receipt.points_earned,
        }
        self.view.add(tracking, e.store_id, e.occurred_at, figures, e.receipt_no)

    @handles(NonMemberSaleRecorded)
    def _on_non_member_sale(self, e: NonMemberSaleRecorded, tracking: Tracking) -> None:
        figures = {"sales_count": 1, "sales_fen": e.amount_fen}
        self.view.add(tracking, e.store_id, e.occurred_at, figures, e.receipt_no)

    @handles(SaleRefunded)
    def _on_refund(self, e: SaleRefunded, tracking: Tracking) -> None:
        figures = {
            "refunds_count": 1,
            "refunds_fen": sum(e.refunded_fen.values()),
            "points_reversed": e.points_reversed,
        }
        self.view.add(tracking, e.receipt.store_id, e.occurred_at, figures)

    @handles(NonMemberSaleRefunded)
    def _on_non_member_refund(self, e: NonMemberSaleRefunded, tracking: Tracking) -> None:
        figures = {"refunds_count": 1, "refunds_fen": e.amount_fen}
        self.view.add(tracking, e.store_id, e.occurred_at, figures)

    @handles(PointsRedeemed)
    def _on_redeemed(self, e: PointsRedeemed, tracking: Tracking) -> None:
        figures = {
            "redemptions_count": 1,
            "redeemed_points": e.points,
            "redemption_cost_fen": e.cost_fen,
        }
        self.view.add(tracking, e.store_id, e.occurred_at, figures)

    @handles(RedemptionVoided)
    def _on_voided(self, e: RedemptionVoided, tracking: Tracking) -> None:
        if e.released_hold:  # a hold released unspent was never a redemption
            self.view.record_position(tracking)
            return
        figures = {
            "redemptions_count": -1,
            "redeemed_points": -e.points_restored,
            "redemption_cost_fen": -e.cost_fen,
        }
        self.view.add(tracking, e.store_id, e.occurred_at, figures)

    @handles(PointsConverted)
    def _on_converted(self, e: PointsConverted, tracking: Tracking) -> None:
        figures = {
            "conversions_count": 1,
            "converted_points": e.points,
            "credited_fen": e.credited_fen,
        }
        self.view.add(tracking, e.store_id, e.occurred_at, figures)

    @handles(StoredValueDebited)
    def _on_paid(self, e: StoredValueDebited, tracking: Tracking) -> None:
        self.view.add(tracking, e.store_id, e.occurred_at, {"paid_fen": e.amount_fen})

    @handles(StoredValueCredited)
    def _on_credited(self, e: StoredValueCredited, tracking: Tracking) -> None:
        if e.reason != "refund":  # a conversion's credit is counted with the conversion
            self.view.record_position(tracking)
            return
        self.view.add(tracking, e.store_id, e.occurred_at, {"refunded_fen": e.amount_fen})
