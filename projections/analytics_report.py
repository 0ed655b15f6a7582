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

from datetime import date
from decimal import Decimal

import msgspec

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
