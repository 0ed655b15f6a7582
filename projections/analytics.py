"""The analytics view (会员分析, SPEC 2.9): counts kept per store-month and per member-day, from
which `report()` computes a period's figures at query time (`projections.analytics_report`).

Tables, every write an insert of a fresh key or an additive upsert (so batched writes commute):
- `store_months` (store, month): member and non-member receipts and their fen, refunds and their
  fen, each in the month of its `occurred_at`;
- `members` (card): the enrolling (home) store and the enrolment day;
- `purchases` (card, store, day): a member's receipts and their fen per store and day;
- `chain`: the chain's time zone (the newest rule version's), which days and months are in.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from eventsourcing.persistence import Tracking

from ledger.domain.member import MemberEnrolled
from ledger.domain.nonmember import NonMemberSaleRecorded, NonMemberSaleRefunded
from ledger.domain.rulebook import RuleSetPublished
from ledger.domain.sale import SaleRecorded, SaleRefunded
from projections.analytics_report import (
    FREQUENT_CARD_PURCHASES,
    AnalyticsReport,
    FrequentCard,
    MemberActivity,
    StoreMonth,
    Windows,
    build_report,
    windows,
)
from projections.chainzone import CHAIN_TABLE, ChainZoneView
from projections.sqlview import (
    Cursor,
    PostgresSqlView,
    SQLiteSqlView,
    Table,
    ViewProjection,
    handles,
)

COUNTS = ("member_sales", "member_sales_fen", "non_member_sales", "non_member_sales_fen")
STORE_MONTH_COLUMNS = (*COUNTS, "refunds", "refunded_fen")


class AnalyticsView(ChainZoneView):
    TABLES: ClassVar[dict[str, Table]] = {
        "store_months": Table(
            "store_id TEXT, period TEXT, " + ", ".join(f"{c} BIGINT" for c in STORE_MONTH_COLUMNS),
            key="store_id, period",
        ),
        "members": Table(
            "member_id TEXT, store_id TEXT, enrolled_day TEXT",
            key="member_id",
            indexes=["store_id, enrolled_day"],
        ),
        "purchases": Table(
            "member_id TEXT, store_id TEXT, day TEXT, purchases BIGINT, amount_fen BIGINT",
            key="member_id, store_id, day",
            indexes=["day"],
        ),
        "chain": CHAIN_TABLE,
    }

    # -- writing (the projection) ----------------------------------------------------------

    def enrolled(self, event: MemberEnrolled, tracking: Tracking) -> None:
        with self.transaction() as cursor:
            day = self._day(cursor, event.occurred_at)
            cursor.write(
                "INSERT INTO {members} (member_id, store_id, enrolled_day) VALUES (?, ?, ?)",
                (event.member_id, event.store_id, day.isoformat()),
            )
            cursor.track(tracking)

    def sold(
        self, store_id: str, occurred_at: datetime, fen: int, member_id: str | None, t: Tracking
    ) -> None:
        """A receipt: counted in its store-month, and in the member's day if it has one."""
        with self.transaction() as cursor:
            day = self._day(cursor, occurred_at)
            if member_id is None:
                self._add(cursor, store_id, day, non_member_sales=1, non_member_sales_fen=fen)
            else:
                self._add(cursor, store_id, day, member_sales=1, member_sales_fen=fen)
                cursor.write(
                    "INSERT INTO {purchases} (member_id, store_id, day, purchases, amount_fen) "
                    "VALUES (?, ?, ?, 1, ?) ON CONFLICT (member_id, store_id, day) DO UPDATE SET "
                    "purchases = {purchases}.purchases + 1, "
                    "amount_fen = {purchases}.amount_fen + excluded.amount_fen",
                    (member_id, store_id, day.isoformat(), fen),
                )
            cursor.track(t)

    def refunded(self, store_id: str, occurred_at: datetime, fen: int, t: Tracking) -> None:
        with self.transaction() as cursor:
            self._add(cursor, store_id, self._day(cursor, occurred_at), refunds=1, refunded_fen=fen)
            cursor.track(t)

    def _add(self, cursor: Cursor, store_id: str, day: date, **amounts: int) -> None:
        values = [amounts.get(c, 0) for c in STORE_MONTH_COLUMNS]
        cursor.write(
            "INSERT INTO {store_months} (store_id, period, "
            + ", ".join(STORE_MONTH_COLUMNS)
            + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (store_id, period) DO UPDATE SET "
            + ", ".join(f"{c} = {{store_months}}.{c} + excluded.{c}" for c in STORE_MONTH_COLUMNS),
            (store_id, f"{day.year:04d}-{day.month:02d}", *values),
        )

    def _day(self, cursor: Cursor, instant: datetime) -> date:
        """The calendar day of an instant in the chain's time zone."""
        return instant.astimezone(self.chain_zone(cursor)).date()

    # -- reading ---------------------------------------------------------------------------

    def report(self, period: str, store_id: str | None) -> AnalyticsReport:
        """The period's figures for one store (its members; its sales) or the whole chain,
        read in one transaction (view position and lag are the caller's to fill in)."""
        w = windows(period)
        with self.transaction(commit=False) as cursor:
            total, new = self._member_counts(cursor, w, store_id)
            activity = self._activity(cursor, w, store_id)
            cursor.execute(
                "SELECT store_id, " + ", ".join(STORE_MONTH_COLUMNS) + " FROM {store_months} "
                "WHERE period = ? ORDER BY store_id",
                (period,),
            )
            months = [StoreMonth(str(r[0]), *(int(v) for v in r[1:])) for r in cursor.all()]
            cards = self._frequent_cards(cursor, w, store_id)
        return build_report(
            period,
            store_id,
            w,
            total_members=total,
            new_members=new,
            activity=activity,
            months=months,
            frequent_cards=cards,
        )

    @staticmethod
    def _scope(store_id: str | None, column: str) -> tuple[str, tuple[str, ...]]:
        return (f" AND {column} = ?", (store_id,)) if store_id is not None else ("", ())

    def _member_counts(self, cursor: Cursor, w: Windows, store_id: str | None) -> tuple[int, int]:
        where, params = self._scope(store_id, "store_id")
        cursor.execute(
            "SELECT COUNT(*) AS members, "
            "SUM(CASE WHEN enrolled_day >= ? THEN 1 ELSE 0 END) AS new_members "
            "FROM {members} WHERE enrolled_day < ?" + where,
            (w.period_from.isoformat(), w.end.isoformat(), *params),
        )
        row = cursor.one()
        return (int(row[0]), int(row[1] or 0)) if row else (0, 0)

    def _activity(self, cursor: Cursor, w: Windows, store_id: str | None) -> list[MemberActivity]:
        """Per member (of the store, or all) with a purchase in the RFM window: purchases in
        each window, the RFM window's amount, and the last purchase day. (Every column has its
        own name: PostgreSQL rows come as dicts.)"""
        where, params = self._scope(store_id, "m.store_id")
        cursor.execute(
            "SELECT p.member_id, "
            "SUM(CASE WHEN p.day >= ? THEN p.purchases ELSE 0 END) AS active_n, "
            "SUM(CASE WHEN p.day >= ? THEN p.purchases ELSE 0 END) AS recent_n, "
            "SUM(CASE WHEN p.day >= ? AND p.day < ? THEN p.purchases ELSE 0 END) AS base_n, "
            "SUM(p.purchases) AS rfm_n, SUM(p.amount_fen) AS rfm_fen, MAX(p.day) AS last_day "
            "FROM {purchases} p JOIN {members} m ON m.member_id = p.member_id "
            "WHERE p.day >= ? AND p.day < ? AND m.enrolled_day < ?" + where + " "
            "GROUP BY p.member_id ORDER BY p.member_id",
            (
                w.active_from.isoformat(),
                w.recent_from.isoformat(),
                w.churn_base_from.isoformat(),
                w.recent_from.isoformat(),
                w.rfm_from.isoformat(),
                w.end.isoformat(),
                w.end.isoformat(),
                *params,
            ),
        )
        return [
            MemberActivity(
                member_id=str(r[0]),
                active_purchases=int(r[1]),
                recent_purchases=int(r[2]),
                base_purchases=int(r[3]),
                purchases=int(r[4]),
                amount_fen=int(r[5]),
                last_day=date.fromisoformat(str(r[6])),
            )
            for r in cursor.all()
        ]

    def _frequent_cards(
        self, cursor: Cursor, w: Windows, store_id: str | None
    ) -> list[FrequentCard]:
        where, params = self._scope(store_id, "store_id")
        cursor.execute(
            "SELECT member_id, store_id, SUM(purchases) AS n, SUM(amount_fen) AS fen "
            "FROM {purchases} "
            "WHERE day >= ? AND day < ?" + where + " GROUP BY member_id, store_id "
            "HAVING SUM(purchases) >= ?",
            (w.period_from.isoformat(), w.end.isoformat(), *params, FREQUENT_CARD_PURCHASES),
        )
        cards = [
            FrequentCard(
                member_id=str(r[0]), store_id=str(r[1]), purchases=int(r[2]), amount_fen=int(r[3])
            )
            for r in cursor.all()
        ]
        return sorted(cards, key=lambda c: (-c.purchases, c.member_id, c.store_id))


class PostgresAnalyticsView(PostgresSqlView, AnalyticsView):
    pass


class SQLiteAnalyticsView(SQLiteSqlView, AnalyticsView):
    pass


class AnalyticsProjection(ViewProjection[AnalyticsView]):
    name = "analytics"

    @handles(RuleSetPublished)
    def _on_rulesetpublished(self, e: RuleSetPublished, tracking: Tracking) -> None:
        self.view.zone(e, tracking)

    @handles(MemberEnrolled)
    def _on_memberenrolled(self, e: MemberEnrolled, tracking: Tracking) -> None:
        self.view.enrolled(e, tracking)

    @handles(SaleRecorded)
    def _on_salerecorded(self, e: SaleRecorded, tracking: Tracking) -> None:
        fen = sum(line.amount_fen for line in e.lines)
        self.view.sold(e.store_id, e.occurred_at, fen, e.member_id, tracking)

    @handles(NonMemberSaleRecorded)
    def _on_nonmembersalerecorded(self, e: NonMemberSaleRecorded, tracking: Tracking) -> None:
        self.view.sold(e.store_id, e.occurred_at, e.amount_fen, None, tracking)

    @handles(SaleRefunded)
    def _on_salerefunded(self, e: SaleRefunded, tracking: Tracking) -> None:
        fen = sum(e.refunded_fen.values())
        self.view.refunded(e.receipt.store_id, e.occurred_at, fen, tracking)

    @handles(NonMemberSaleRefunded)
    def _on_nonmembersalerefunded(self, e: NonMemberSaleRefunded, tracking: Tracking) -> None:
        self.view.refunded(e.store_id, e.occurred_at, e.amount_fen, tracking)
