"""The read side the back office asks: audit trail, settlement, liability, reminders, card stock,
and the figures the console charts (a member's balance over time, points per month, lag).

Each answer comes from a projection's view (so it may lag the log by the projection delay,
shown on `/metrics`), joined with what only the ledger knows (a card's member id, the rule
version in force). The HTTP layer only translates parameters and formats.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import msgspec
import structlog

from ledger.application import Ledger
from ledger.domain.commands import Identifier, checked
from ledger.domain.errors import InvalidInput
from ledger.domain.settlement import check_period, next_period
from projections import liability
from projections.analytics_report import AnalyticsReport
from projections.daily import DailyProjection, DailyReport, DailyView
from projections.history import BalanceStep, HistoryEntry, HistoryQuery
from projections.liability import NewLot, VersionValue
from projections.members import CardStock, ExpiringMember, MembersView
from projections.runtime import Projections
from projections.settlement import MonthPoints, SettlementReport
from projections.sqlview import TRACKED_APPLICATION

HISTORY_LIMIT_MAX = 200
REMINDER_DAYS_MAX = 366
PAGE_MAX = 1_000
STEPS_MAX = 5_000  # a member's balance chart: their last entries by business time
MONTHS_MAX = 60
CATCH_UP_SECONDS = 30.0
STALL_SECONDS = 1.0  # a view that has not moved for this long is not being followed
log = structlog.get_logger("ledger.queries")


class HistoryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[HistoryEntry]
    next_cursor: int | None  # pass as `cursor` for the next (older) page


class HistoryFilter(msgspec.Struct, frozen=True, kw_only=True):
    cursor: int | None = None
    limit: int = 50
    type: str | None = None
    store_id: str | None = None
    reference: str | None = None
    as_of: datetime | None = None


class LiabilityReport(msgspec.Struct, frozen=True, kw_only=True):
    as_of: datetime
    points: int  # outstanding: Σ of each member's positive balance then (pending included)
    members: int
    rule_version: int | None  # in force at as_of
    cost_per_point_fen: str | None  # its cost per point, a decimal as text
    value_fen: int  # Σ lot × its own rule version's cost per point, rounded half-up once
    stored_value_fen: int  # outstanding stored value
    by_version: list[VersionValue]  # the outstanding points and their value per rule version


class ExpiringPage(msgspec.Struct, frozen=True, kw_only=True):
    within_days: int
    until: datetime
    items: list[ExpiringMember]
    next_cursor: int | None


class ViewLag(msgspec.Struct, frozen=True, kw_only=True):
    projection: str
    position: int  # the last log position the view applied
    lag_events: int  # events in the log it has not applied yet


class LagReport(msgspec.Struct, frozen=True, kw_only=True):
    head: int  # the log's last position
    views: list[ViewLag]


BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@")
SETTLEMENT_COLUMNS = (
    "period",
    "store_id",
    "kind",
    "franchisee",
    "points_issued",
    "fee_due_fen",
    "redemption_cost_fen",
    "stored_value_cost_fen",
    "difference_fen",
    "late",
    "points_redeemed",
    "points_converted",
    "converted_fen",
)


def _aware(value: datetime | None, field: str) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(
            f"{field} needs a UTC offset, e.g. 2026-04-01T00:00:00+08:00", field=field
        )


class Queries:
    def __init__(self, ledger: Ledger, projections: Projections) -> None:
        self.ledger = ledger
        self.projections = projections

    def history(self, card: str, f: HistoryFilter) -> HistoryPage:
        if not 1 <= f.limit <= HISTORY_LIMIT_MAX:
            raise InvalidInput(f"limit must be 1..{HISTORY_LIMIT_MAX}", field="limit")
        _aware(f.as_of, "as_of")
        member_uuid = self.ledger.members.key(card)
        items = self.projections.history.entries(
            HistoryQuery(
                member=str(member_uuid),
                before_seq=f.cursor,
                limit=f.limit,
                type=f.type,
                store_id=f.store_id,
                reference=f.reference,
                as_of=f.as_of,
            )
        )
        next_cursor = items[-1].seq if len(items) == f.limit else None
        return HistoryPage(items=items, next_cursor=next_cursor)

    def daily(self, store_id: str, day: str) -> DailyReport:
        """A registered store's day (chain time) for reconciliation with its till."""
        try:
            date.fromisoformat(day)
        except ValueError as e:
            raise InvalidInput(f"{day!r} is not a day", field="date") from e
        self.ledger.access.require_store(store_id)
        view = self.projections.views[DailyProjection.name]
        assert isinstance(view, DailyView)  # noqa: S101 - narrowing for the type checker
        return view.report(store_id, day)

    def settlement(self, period: str) -> SettlementReport:
        return self.projections.settlement.report(check_period(period))

    def liability(self, as_of: datetime) -> LiabilityReport:
        """The points liability at business time `as_of` (SPEC 2.7): each outstanding lot at
        the cost per point of the rule version it was earned under, and the stored value."""
        _aware(as_of, "as_of")
        outstanding = self.projections.history.outstanding(as_of)
        rules = self.ledger.rules

        def cost_of(lot: NewLot) -> tuple[int | None, Decimal | None]:
            version = rules.numbered(lot.rule_version) if lot.rule_version else None
            version = version or rules.at_or_first(lot.earned_at)
            if version is None:
                return None, None
            settlement = version.rules.settlement
            return version.version, settlement.cost_per_point_fen if settlement else None

        figures = liability.value(outstanding.balances, outstanding.lots, cost_of)
        version = rules.at(as_of)
        settlement = version.rules.settlement if version else None
        return LiabilityReport(
            as_of=as_of,
            points=figures.points,
            members=figures.members,
            rule_version=version.version if version else None,
            cost_per_point_fen=str(settlement.cost_per_point_fen) if settlement else None,
            value_fen=figures.value_fen,
            stored_value_fen=figures.stored_value_fen,
            by_version=figures.by_version,
        )

    def expiring(
        self,
        now: datetime,
        within_days: int,
        store_id: str | None = None,
        cursor: int = 0,
        limit: int = 100,
    ) -> ExpiringPage:
        if not 1 <= within_days <= REMINDER_DAYS_MAX:
            raise InvalidInput(f"within_days must be 1..{REMINDER_DAYS_MAX}", field="within_days")
        if not 1 <= limit <= PAGE_MAX:
            raise InvalidInput(f"limit must be 1..{PAGE_MAX}", field="limit")
        if cursor < 0:
            raise InvalidInput("cursor must not be negative", field="cursor")
        until = now + timedelta(days=within_days)
        items = self.projections.members.expiring(now, until, store_id, cursor, limit)
        next_cursor = cursor + limit if len(items) == limit else None
        return ExpiringPage(
            within_days=within_days, until=until, items=items, next_cursor=next_cursor
        )

    def due_members(self, as_of: datetime) -> list[UUID] | None:
        """The members with lots due at `as_of`, from the members view once it has caught up
        with the log; None when it cannot catch up (the expiry run then looks at every member
        that ever held a lot)."""
        if not self._caught_up("members", self.ledger.core.log_position()):
            log.warning("expiry_run_scans_the_log", reason="the members view is not following")
            return None
        return self.projections.members.due(as_of)

    def members_seen(self, due: list[UUID] | None) -> MembersView | None:
        """Where the expiry run may decide from without reading members (D66): the members
        view, when `due_members` listed the members from it (it had caught up); else None."""
        return self.projections.members if due is not None else None

    def _caught_up(self, name: str, head: int) -> bool:
        """Wait for a view to reach `head` while it makes progress (no runner: give up soon)."""
        view = self.projections.views[name]
        deadline = time.monotonic() + CATCH_UP_SECONDS
        last = -1
        while time.monotonic() < deadline:
            at = view.max_tracking_id(TRACKED_APPLICATION) or 0
            if at >= head:
                return True
            if at == last:
                return False
            last = at
            time.sleep(STALL_SECONDS)
        return False

    def analytics(self, period: str, store_id: str | None = None) -> AnalyticsReport:
        """Member analytics for the month `period` ('YYYY-MM'), for one store's members and
        sales or (`store_id` None) the whole chain; definitions in `projections.analytics_report`.
        InvalidInput (422) for a malformed period, StoreNotFound for an unknown store.

        The analytics view is a projection: `view_position` is the last event it applied and
        `lag_events` how far the log was ahead when asked (0: current)."""
        check_period(period)
        if store_id is not None:
            checked(store_id, Identifier, "store_id")
            self.ledger.access.require_store(store_id)
        view = self.projections.analytics
        position = view.max_tracking_id(TRACKED_APPLICATION) or 0
        head = self.ledger.core.log_position()
        report = view.report(period, store_id)
        return msgspec.structs.replace(
            report, view_position=position, lag_events=max(0, head - position)
        )

    def balance_steps(self, card: str, limit: int = STEPS_MAX) -> list[BalanceStep]:
        """The member's balance after each entry in business-time order (from the history view,
        so it may lag the log), oldest first."""
        if not 1 <= limit <= STEPS_MAX:
            raise InvalidInput(f"limit must be 1..{STEPS_MAX}", field="limit")
        return self.projections.history.balance_steps(str(self.ledger.members.key(card)), limit)

    def points_by_month(self, first: str, last: str) -> list[MonthPoints]:
        """Points issued, redeemed and converted in each settlement month `first..last` (every
        month, zeros where nothing happened)."""
        if check_period(first) > check_period(last):
            raise InvalidInput("first must not be after last", field="first")
        periods = [first]
        while periods[-1] < last:
            periods.append(next_period(periods[-1]))
            if len(periods) > MONTHS_MAX:
                raise InvalidInput(f"at most {MONTHS_MAX} months", field="first")
        found = {m.period: m for m in self.projections.settlement.months(first, last)}
        empty = {"points_issued": 0, "points_redeemed": 0, "points_converted": 0}
        return [found.get(p) or MonthPoints(period=p, **empty) for p in periods]

    def lag(self) -> LagReport:
        """How far each view is behind the log (what `/metrics` shows as
        `ledger_projection_lag_events`)."""
        head = self.ledger.core.log_position()
        views = [
            ViewLag(projection=name, position=at, lag_events=max(head - at, 0))
            for name, at in sorted(self.projections.positions().items())
        ]
        return LagReport(head=head, views=views)

    def card_stock(self, store_id: str, period: str | None) -> CardStock:
        self.ledger.access.require_store(store_id)
        return self.projections.members.card_stock(
            store_id, check_period(period) if period else None
        )


DAILY_COLUMNS = (
    "store_id",
    "date",
    "sales_count",
    "sales_amount_fen",
    "points_earned",
    "refunds_count",
    "refunds_amount_fen",
    "points_reversed",
    "redemptions_count",
    "redeemed_points",
    "redemption_cost_fen",
    "conversions_count",
    "converted_points",
    "credited_fen",
    "stored_value_paid_fen",
    "stored_value_refunded_fen",
    "receipts",
)


def daily_csv(report: DailyReport) -> str:
    """The store's day as CSV: a header and one line of figures, the receipts `;`-separated
    in the last cell (a byte order mark first, as every CSV of the ledger)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(DAILY_COLUMNS)
    r = report
    cells: list[object] = [
        r.store_id,
        r.date,
        *msgspec.structs.astuple(r.sales),
        *msgspec.structs.astuple(r.refunds),
        *msgspec.structs.astuple(r.redemptions),
        *msgspec.structs.astuple(r.conversions),
        *msgspec.structs.astuple(r.stored_value),
        ";".join(r.receipts),
    ]
    writer.writerow([csv_cell(cell) for cell in cells])
    return out.getvalue()


def csv_cell(value: object) -> str | int:
    """A CSV cell as SPEC 2.7 writes it: booleans `true`/`false`; a text cell that a spreadsheet
    would run as a formula (beginning with = + - @) prefixed with `'`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in FORMULA_STARTS else text


def settlement_csv(report: SettlementReport) -> str:
    """The report as CSV for finance: one line per row, amounts in fen; a UTF-8 byte order mark
    first, so spreadsheet programs read Chinese franchisee names (SPEC 2.7)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(SETTLEMENT_COLUMNS)
    for row in report.rows:
        values = msgspec.structs.asdict(row)
        cells = [report.period, *(values[c] for c in SETTLEMENT_COLUMNS[1:])]
        writer.writerow([csv_cell(cell) for cell in cells])
    return out.getvalue()
