"""The demo's plan and its result: what to generate (`DemoPlan`, checked by `check_plan`), what
was written (`DemoSummary`), and the constants that shape the chain (shares, rates, opening
hours, seasons, catalogue, gifts and exchanges)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from ledger.domain.errors import InsufficientPoints, InsufficientStoredValue

CARD_DIGITS = 12  # card numbers are zero-padded digits (CardNumber takes up to 32 characters)
MIGRATED_SHARE = 0.25  # members enrolled in the legacy system during the year before the period
DTP_SHARE = 0.015  # specialty-drug patients: a costly refill every four weeks or so
DIRECT_SHARE = 0.3
BIRTHDAY_SHARE = 0.2
OTHER_STORE_RATE = 0.15  # visits away from the home store
REFUND_RATE = 0.03
NON_MEMBER_VISITS = 0.8  # customers without a card, per member visit (members ≈ 55% of traffic)
NON_MEMBER_REFUND_RATE = 0.02
NON_MEMBER_LINE_WEIGHTS = (60, 30, 10)  # 1, 2 or 3 lines: smaller baskets than members'
VOID_RATE = 0.04  # of redemptions
VOID_AFTER = timedelta(minutes=3)  # a void's business time, after its redemption's
TICKET_RATE = 0.004  # visits that end in a customer-service ticket
REFUSALS = (InsufficientPoints, InsufficientStoredValue)  # business refusals: skipped, counted
OPENING_HOURS = range(8, 22)
HOUR_WEIGHTS = (3, 7, 9, 8, 6, 5, 5, 5, 6, 7, 9, 9, 6, 3)
LINE_COUNTS = range(1, 7)
LINE_COUNT_WEIGHTS = (40, 28, 16, 8, 5, 3)
MONTH_FACTOR = {1: 1.35, 2: 1.25, 3: 1.1, 6: 0.9, 7: 0.85, 8: 0.9, 11: 1.1, 12: 1.3}
WEEKDAY_FACTOR = {5: 1.05, 6: 1.35, 7: 1.15}  # Saturday is member day (×2 points)
FLU_MONTHS = (12, 1, 2)
VOUCHER_STEPS = (100, 500, 1_000, 2_000)
# category, SKU prefix, number of SKUs, price range in fen, share of basket lines
CATEGORIES = (
    ("otc", "OTC", 150, 500, 6_000, 32),
    ("rx", "RX", 120, 1_000, 18_000, 25),
    ("personal_care", "PC", 50, 800, 8_000, 15),
    ("supplement", "HF", 60, 4_000, 40_000, 12),
    ("tcm", "TCM", 80, 1_000, 15_000, 10),
    ("device", "DEV", 40, 2_000, 60_000, 6),
)
CATEGORY_WEIGHTS = [c[5] for c in CATEGORIES]
GIFTS = (  # sku, points, the chain's cost in fen
    ("GIFT-MASKS", 200, 600),
    ("GIFT-PILLBOX", 300, 800),
    ("GIFT-HANDCREAM", 500, 1_500),
    ("GIFT-THERMOS", 1_500, 4_500),
)
EXCHANGES = (  # sku, points, cash price in fen, the chain's cost in fen
    ("EX-THERMOMETER", 500, 990, 2_500),
    ("EX-BP-MONITOR", 3_000, 9_900, 15_000),
)
BONUSES = (  # code, points, who bears the cost
    ("registration", 100, "hq"),
    ("referral", 200, "store"),
)
REGISTRATION_BONUS_RATE = 0.6  # new members who get the registration bonus at enrolment
REFERRAL_RATE = 0.1  # new members referred by an earlier member (who gets the referral bonus)
INSURED_RATE = 0.35  # prescription lines partly paid by medical insurance (医保)
DISTRICTS = ("城东", "城西", "城南", "城北", "高新", "滨江", "开发区", "老城", "新区", "大学城")
ADMIN, SCHEDULER, SERVICE = "demo:admin", "demo:scheduler", "demo:service"


def store_ids(count: int) -> list[str]:
    """The demo's store numbers: S001, S002… (wider past 999 stores)."""
    width = max(3, len(str(count)))
    return [f"S{n:0{width}d}" for n in range(1, count + 1)]


class DemoPlan(msgspec.Struct, frozen=True, kw_only=True):
    """What to generate: the chain's size, the period (from `start`, chain time) and the seed."""

    stores: int = 20
    members: int = 2_000
    days: int = 365
    seed: int = 1
    start: date = date(2025, 1, 1)
    timezone: str = "Asia/Shanghai"


class DemoSummary(msgspec.Struct, kw_only=True):
    """What a demo wrote: successful calls by kind; `refused` are skipped business refusals."""

    stores: int = 0
    franchise_stores: int = 0
    members: int = 0
    migrated_members: int = 0
    rule_versions: int = 0
    sales: int = 0
    refunds: int = 0
    non_member_sales: int = 0
    non_member_refunds: int = 0
    redemptions: int = 0
    voids: int = 0
    conversions: int = 0
    payments: int = 0
    stored_value_refunds: int = 0
    adjustments: int = 0
    bonuses: int = 0
    insured_lines: int = 0
    expiry_runs: int = 0
    points_expired: int = 0
    upgrades: int = 0
    downgrades: int = 0
    refused: int = 0
    events: int = 0
    seconds: float = 0.0
    samples: dict[str, str] = {}  # what a card shows (heaviest buyer, DTP patient…) → card

    def line(self) -> str:
        return (
            f"demo: {self.stores} stores ({self.franchise_stores} franchise), {self.members} "
            f"members, {self.sales} sales, {self.refunds} refunds, {self.non_member_sales} "
            f"non-member sales ({self.non_member_refunds} refunded), {self.redemptions} "
            f"redemptions ({self.voids} voided), {self.conversions} conversions, "
            f"{self.payments} stored-value payments, {self.adjustments} adjustments, "
            f"{self.bonuses} bonuses, {self.insured_lines} insured lines, "
            f"{self.expiry_runs} expiry runs ({self.points_expired} points expired), "
            f"{self.upgrades} upgrades, {self.downgrades} downgrades, {self.refused} refused; "
            f"{self.events} events in {self.seconds:.1f} s"
        )


class PlanRefused(ValueError):
    """The demo cannot run as planned (nothing was written)."""


def check_plan(plan: DemoPlan, now: datetime) -> None:
    """Refuse a plan the ledger would refuse half-way: nothing to do, or a period ending in the
    future (business time may not be ahead of the ledger's now)."""
    if min(plan.stores, plan.members, plan.days) < 1:
        raise PlanRefused("--stores, --members and --days must be at least 1")
    zone = ZoneInfo(plan.timezone)
    end = datetime(plan.start.year, plan.start.month, plan.start.day, tzinfo=zone)
    end += timedelta(days=plan.days)
    if end > now:
        raise PlanRefused(f"the demo period ends {end.isoformat()}, after now: start it earlier")
