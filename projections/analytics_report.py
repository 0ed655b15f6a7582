"""Member analytics (会员分析, SPEC 2.9): the report's shapes, its windows, and the pure figures.

`Queries.analytics(period, store_id)` returns an `AnalyticsReport` (`GET /v1/analytics/{period}`).
Every window is a range of chain-time calendar days `[from, to)` (end exclusive), computed from
the period alone, so a report is the same whenever it is asked:

- `end`: the first day after the period (the report is "as of" 00:00 chain time that day);
- active (活动会员): a purchase in the 3 calendar months ending with the period
  (`active_from` = the first day of the month two months before the period);
- churn (会员流失率, the seed's definition): the base is the members with ≥ 2 purchases in the
  half year (180 days) before the last 90 days, `[end − 270 d, end − 90 d)`; the churned are
  those of them with no purchase in the last 90 days, `[end − 90 d, end)`; rate = churned ÷ base;
- RFM: purchases in the 12 calendar months ending with the period.

Ratios are `Decimal`s rounded half-up to 4 places (JSON: strings such as `"0.3820"`), `None`
when the denominator is 0; tickets are whole fen, rounded down. Member figures (new, total,
active, frequency, churn, RFM) take the members enrolled at the store (their home store) and
count their purchases anywhere in the chain; sales figures count what happened at the store.
Sales amounts are the receipts' totals as posted (refunds are reported beside them, never
netted).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import NamedTuple

import msgspec

from ledger.domain.settlement import check_period

FREQUENT_CARD_PURCHASES = 20  # a card with this many purchases at one store in a month is odd
REFUND_OUTLIER_FACTOR = 3  # a store's refund rate above 3 × the chain's median …
REFUND_OUTLIER_MARGIN = Decimal("0.01")  # … and at least 1 percentage point above it


class Windows(msgspec.Struct, frozen=True, kw_only=True):
    """The day ranges behind the figures, each `[from, to)` in chain time."""

    period_from: date  # the period's first day
    end: date  # the day after the period: every window ends here (exclusive)
    active_from: date  # 3 calendar months: active members, frequency
    churn_base_from: date  # end − 270 days
    recent_from: date  # end − 90 days: the churn base ends here, the "last 90 days" start
    rfm_from: date  # 12 calendar months


class MemberFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The store's members (enrolled there), chain-wide without a store."""

    total_members: int  # enrolled before `end`
    new_members: int  # enrolled in the period (新会员)
    active_members: int  # of `total_members`, a purchase in the active window (活动会员)
    active_ratio: Decimal | None  # active ÷ total (活动会员比率; the seed: watch below 0.7)
    active_purchases: int  # purchases of the active members in the active window
    average_purchase_frequency: Decimal | None  # active_purchases ÷ active (会员平均消费频次)
    churn_base_members: int  # ≥ 2 purchases in [churn_base_from, recent_from)
    churned_members: int  # of the base, none in [recent_from, end)
    churn_rate: Decimal | None  # churned ÷ base (会员流失率; the seed: watch above 0.2)


class SalesFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Sales (receipts) and refunds in the period at the store, or the whole chain."""

    member_sales: int
    member_sales_fen: int
    non_member_sales: int  # `member_id: null` receipts (they earn no points)
    non_member_sales_fen: int
    sales: int  # member + non-member
    sales_fen: int
    member_sales_share: Decimal | None  # member_sales_fen ÷ sales_fen (会员销售占比)
    member_traffic_share: Decimal | None  # member_sales ÷ sales (会员占总客流比)
    member_average_ticket_fen: int | None  # member_sales_fen ÷ member_sales (会员客单价)
    average_ticket_fen: int | None  # sales_fen ÷ sales (平均客单价), members and not
    refunds: int  # refunds posted in the period (of member and non-member sales)
    refunded_fen: int
    refund_rate: Decimal | None  # refunded_fen ÷ sales_fen


class StoreSales(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    sales: SalesFigures


class RfmSegment(msgspec.Struct, frozen=True, kw_only=True):
    """One of the eight classic RFM classes: each of R, F, M is high or low."""

    segment: str  # e.g. "important_value"
    label: str  # e.g. "重要价值客户"
    recency_high: bool
    frequency_high: bool
    monetary_high: bool
    members: int


class RfmFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Members with a purchase in the RFM window, in eight classes. R is high when the last
    purchase is in the last 90 days (`recent_from` on); F (purchases in the window) and M
    (their amount) are high when at least the mean over the members scored."""

    scored_members: int
    mean_purchases: Decimal | None
    mean_amount_fen: Decimal | None
    segments: list[RfmSegment]  # all eight, in a fixed order, zeros included


class FrequentCard(msgspec.Struct, frozen=True, kw_only=True):
    """A card used ≥ 20 times in the period at one store (a cashier's own card?)."""

    member_id: str
    store_id: str
    purchases: int
    amount_fen: int


class RefundOutlier(msgspec.Struct, frozen=True, kw_only=True):
    """A store whose refund rate is far above the chain's norm in the period: above 3 × the
    median refund rate of the stores with sales then, and at least 0.01 above that median."""

    store_id: str
    refund_rate: Decimal
    chain_median_refund_rate: Decimal
    refunded_fen: int
    sales_fen: int


class Anomalies(msgspec.Struct, frozen=True, kw_only=True):
    frequent_cards: list[FrequentCard]  # most purchases first
    refund_outliers: list[RefundOutlier]  # highest rate first


class AnalyticsReport(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /v1/analytics/{period}?store_id=`: a projection, so it may lag the log by
    `lag_events` (the view's position is `view_position`)."""

    period: str  # 'YYYY-MM'
    store_id: str | None  # None: the whole chain
    windows: Windows
    members: MemberFigures
    sales: SalesFigures
    stores: list[StoreSales]  # per store where something was sold or refunded in the period
    rfm: RfmFigures
    anomalies: Anomalies
    view_position: int
    lag_events: int


# -- computing the figures (pure) -----------------------------------------------------------------

RECENT_DAYS = 90  # churn's "last 90 days" and RFM's high recency
CHURN_BASE_DAYS = 180  # the half year before them
ACTIVE_MONTHS = 3
RFM_MONTHS = 12
PLACES = Decimal("0.0001")
SEGMENTS = (  # (R, F, M) high? → name, label: the classic eight RFM classes
    ((True, True, True), "important_value", "重要价值客户"),
    ((True, False, True), "important_development", "重要发展客户"),
    ((False, True, True), "important_retention", "重要保持客户"),
    ((False, False, True), "important_winback", "重要挽留客户"),
    ((True, True, False), "general_value", "一般价值客户"),
    ((True, False, False), "general_development", "一般发展客户"),
    ((False, True, False), "general_retention", "一般保持客户"),
    ((False, False, False), "general_winback", "一般挽留客户"),
)


class MemberActivity(NamedTuple):
    """One member's purchases (anywhere in the chain) in the report's windows."""

    member_id: str
    active_purchases: int  # [active_from, end)
    recent_purchases: int  # [recent_from, end)
    base_purchases: int  # [churn_base_from, recent_from)
    purchases: int  # [rfm_from, end)
    amount_fen: int  # [rfm_from, end)
    last_day: date


class StoreMonth(NamedTuple):
    store_id: str
    member_sales: int
    member_sales_fen: int
    non_member_sales: int
    non_member_sales_fen: int
    refunds: int
    refunded_fen: int


def _months_before(first_day: date, months: int) -> date:
    index = first_day.year * 12 + first_day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def windows(period: str) -> Windows:
    """The report's day ranges for the month `period` ('YYYY-MM'; InvalidInput otherwise)."""
    year, month = (int(part) for part in check_period(period).split("-"))
    period_from = date(year, month, 1)
    end = _months_before(period_from, -1)
    return Windows(
        period_from=period_from,
        end=end,
        active_from=_months_before(period_from, ACTIVE_MONTHS - 1),
        churn_base_from=end - timedelta(days=RECENT_DAYS + CHURN_BASE_DAYS),
        recent_from=end - timedelta(days=RECENT_DAYS),
        rfm_from=_months_before(period_from, RFM_MONTHS - 1),
    )


def ratio(numerator: int | Fraction, denominator: int) -> Decimal | None:
    """numerator ÷ denominator, half-up to 4 places; None when the denominator is 0."""
    if denominator == 0:
        return None
    exact = Fraction(numerator) / denominator
    return (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        PLACES, rounding=ROUND_HALF_UP
    )


def member_figures(total: int, new: int, activity: Sequence[MemberActivity]) -> MemberFigures:
    active = [a for a in activity if a.active_purchases > 0]
    purchases = sum(a.active_purchases for a in active)
    base = [a for a in activity if a.base_purchases >= 2]
    churned = sum(1 for a in base if a.recent_purchases == 0)
    return MemberFigures(
        total_members=total,
        new_members=new,
        active_members=len(active),
        active_ratio=ratio(len(active), total),
        active_purchases=purchases,
        average_purchase_frequency=ratio(purchases, len(active)),
        churn_base_members=len(base),
        churned_members=churned,
        churn_rate=ratio(churned, len(base)),
    )


def sales_figures(rows: Sequence[StoreMonth]) -> SalesFigures:
    member = sum(r.member_sales for r in rows)
    member_fen = sum(r.member_sales_fen for r in rows)
    sales = member + sum(r.non_member_sales for r in rows)
    sales_fen = member_fen + sum(r.non_member_sales_fen for r in rows)
    refunded_fen = sum(r.refunded_fen for r in rows)
    return SalesFigures(
        member_sales=member,
        member_sales_fen=member_fen,
        non_member_sales=sales - member,
        non_member_sales_fen=sales_fen - member_fen,
        sales=sales,
        sales_fen=sales_fen,
        member_sales_share=ratio(member_fen, sales_fen),
        member_traffic_share=ratio(member, sales),
        member_average_ticket_fen=member_fen // member if member else None,
        average_ticket_fen=sales_fen // sales if sales else None,
        refunds=sum(r.refunds for r in rows),
        refunded_fen=refunded_fen,
        refund_rate=ratio(refunded_fen, sales_fen),
    )


def rfm_figures(activity: Sequence[MemberActivity], recent_from: date) -> RfmFigures:
    """High R: a purchase on or after `recent_from`; high F and M: at least the mean (compared
    exactly: value × members ≥ total)."""
    n = len(activity)
    purchases = sum(a.purchases for a in activity)
    amount = sum(a.amount_fen for a in activity)
    counts = dict.fromkeys((key for key, _, _ in SEGMENTS), 0)
    for a in activity:
        key = (a.last_day >= recent_from, a.purchases * n >= purchases, a.amount_fen * n >= amount)
        counts[key] += 1
    return RfmFigures(
        scored_members=n,
        mean_purchases=ratio(purchases, n),
        mean_amount_fen=ratio(amount, n),
        segments=[
            RfmSegment(
                segment=name,
                label=label,
                recency_high=key[0],
                frequency_high=key[1],
                monetary_high=key[2],
                members=counts[key],
            )
            for key, name, label in SEGMENTS
        ],
    )


def _median(values: list[Fraction]) -> Fraction:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def refund_outliers(rows: Sequence[StoreMonth]) -> list[RefundOutlier]:
    """Stores (with sales in the period) whose refund rate is above REFUND_OUTLIER_FACTOR × the
    median rate of all such stores and at least REFUND_OUTLIER_MARGIN above it."""
    rates = {
        r.store_id: (Fraction(r.refunded_fen, fen), r.refunded_fen, fen)
        for r in rows
        if (fen := r.member_sales_fen + r.non_member_sales_fen) > 0
    }
    if not rates:
        return []
    median = _median([rate for rate, _, _ in rates.values()])
    margin = Fraction(REFUND_OUTLIER_MARGIN)
    found = [
        RefundOutlier(
            store_id=store_id,
            refund_rate=ratio(rate, 1) or Decimal(0),
            chain_median_refund_rate=ratio(median, 1) or Decimal(0),
            refunded_fen=refunded,
            sales_fen=fen,
        )
        for store_id, (rate, refunded, fen) in rates.items()
        if rate > REFUND_OUTLIER_FACTOR * median and rate - median >= margin
    ]
    return sorted(found, key=lambda o: (-o.refund_rate, o.store_id))


def build_report(
    period: str,
    store_id: str | None,
    w: Windows,
    *,
    total_members: int,
    new_members: int,
    activity: Sequence[MemberActivity],
    months: Sequence[StoreMonth],
    frequent_cards: list[FrequentCard],
) -> AnalyticsReport:
    """The report from what the view read: `activity` and `frequent_cards` already for the
    store; `months` for every store (the chain's refund norm needs them all)."""
    mine = [r for r in months if store_id is None or r.store_id == store_id]
    outliers = [o for o in refund_outliers(months) if store_id is None or o.store_id == store_id]
    return AnalyticsReport(
        period=period,
        store_id=store_id,
        windows=w,
        members=member_figures(total_members, new_members, activity),
        sales=sales_figures(mine),
        stores=[StoreSales(store_id=r.store_id, sales=sales_figures([r])) for r in mine],
        rfm=rfm_figures(activity, w.recent_from),
        anomalies=Anomalies(frequent_cards=frequent_cards, refund_outliers=outliers),
        view_position=0,
        lag_events=0,
    )
