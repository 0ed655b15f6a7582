"""`ledger demo`: a realistic, deterministic pharmacy chain, posted through the ledger application.

One `random.Random(seed)` draws everything, and every number (store, card, receipt, redemption,
payment, conversion, adjustment) comes from a counter, so two runs of one plan into empty stores
write the same events; only the recorded timestamps differ, and the business time of voids,
which the application sets to its own `now`. Business times lie in the past; the `now` handed to
the ledger is always the real now.

The chain: two rule-set versions (the second from mid-period, with changed multipliers and
settlement cost); ~70% franchise stores; a quarter of the members migrated from a legacy POS
(enrolled the year before, with an opening balance that expires during the period), the rest
enrolled over the period at their home store. Visits follow the season (flu winter, summer
lull), the weekday (Saturday is member day) and campaigns; a Pareto mix of light and heavy
members and a few specialty-drug (DTP) patients reach every tier. Around the sales: refunds,
redemptions of every kind (some voided, some at another store), conversions to stored value and
payments with it, customer-service adjustments, an expiry run at 00:05 on the 1st of every
month, and at the end a last expiry run and a tier review. Customers without a card buy too
(`member_id: null`, smaller baskets, a few refunded), drawn from a random stream of their own so
that the members' events are the same with or without them.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import math
import random
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from ledger.application import Ledger, open_ledger
from ledger.commands import (
    AdjustPoints,
    CashOffset,
    ConvertPoints,
    EnrolMember,
    Exchange,
    Gift,
    PayWithStoredValue,
    PostSale,
    Redeem,
    RefundLine,
    RefundSale,
    RefundStoredValue,
    RegisterStore,
    SaleLine,
    Voucher,
)
from ledger.errors import InsufficientPoints, InsufficientStoredValue
from ledger.model import now_utc
from ledger.rules import RuleSet
from ledger.settings import Settings
from replay_tools.progress import Tracker, progress, summary

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
DISTRICTS = ("城东", "城西", "城南", "城北", "高新", "滨江", "开发区", "老城", "新区", "大学城")
ADMIN, SCHEDULER, SERVICE = "demo:admin", "demo:scheduler", "demo:service"


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
    expiry_runs: int = 0
    points_expired: int = 0
    upgrades: int = 0
    downgrades: int = 0
    refused: int = 0
    events: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"demo: {self.stores} stores ({self.franchise_stores} franchise), {self.members} "
            f"members, {self.sales} sales, {self.refunds} refunds, {self.non_member_sales} "
            f"non-member sales ({self.non_member_refunds} refunded), {self.redemptions} "
            f"redemptions ({self.voids} voided), {self.conversions} conversions, "
            f"{self.payments} stored-value payments, {self.adjustments} adjustments, "
            f"{self.expiry_runs} expiry runs ({self.points_expired} points expired), "
            f"{self.upgrades} upgrades, {self.downgrades} downgrades, {self.refused} refused; "
            f"{self.events} events in {self.seconds:.1f} s"
        )


class _Member:
    __slots__ = ("birthday", "card", "dtp", "enrol_at", "home", "points", "rate", "stored_fen")

    def __init__(self, card: str, home: str, enrol_at: datetime, rate: float) -> None:
        self.card, self.home, self.enrol_at, self.rate = card, home, enrol_at, rate
        self.birthday: date | None = None
        self.dtp = False
        self.points = 0  # spendable, as the last receipt said (expiry runs make it stale)
        self.stored_fen = 0


class _Sold:
    """A sale bound for a refund: what is left to refund per line, and its stored-value payment."""

    __slots__ = ("left_fen", "member", "payment", "receipt_no", "refunds", "store")

    def __init__(self, store: str, receipt_no: str, member: _Member, lines: list[SaleLine]) -> None:
        self.store, self.receipt_no, self.member = store, receipt_no, member
        self.left_fen = [line.amount_fen for line in lines]
        self.refunds = 0
        self.payment: tuple[str, int] | None = None


# -- the rule set (SPEC 2.10) -------------------------------------------------------------------


def _iso(day: date, zone: ZoneInfo) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=zone).isoformat()


def _yearly(
    years: range, zone: ZoneInfo, starts: tuple[int, int], ends: tuple[int, int], **fields: str
) -> list[dict[str, str]]:
    """One window a year (an end before the start falls in the next year); a `name` gets the
    year appended."""
    return [
        fields
        | ({"name": f"{fields['name']} {y}"} if "name" in fields else {})
        | {
            "starts_at": _iso(date(y, *starts), zone),
            "ends_at": _iso(date(y + (ends < starts), *ends), zone),
        }
        for y in years
    ]


def rule_documents(plan: DemoPlan) -> list[dict[str, Any]]:
    """Version 1, in force since two years before the start; version 2 from mid-period."""
    zone = ZoneInfo(plan.timezone)
    years = range(plan.start.year, (plan.start + timedelta(days=plan.days - 1)).year + 1)
    winters = range(years.start - 1, years.stop)  # last year's flu season runs into this one
    first: dict[str, Any] = {
        "effective_from": _iso(date(plan.start.year - 2, 1, 1), zone),
        "timezone": plan.timezone,
        "accrual": {
            "fen_per_point": 100,
            "points_per_unit": 1,
            "category_multipliers": {"tcm": "2", "supplement": "3"},
            "sku_promotions": _yearly(years, zone, (6, 1), (7, 1), sku="BRAND-X", multiplier="20")
            + _yearly(winters, zone, (12, 1), (3, 1), sku="OTC-FLU", multiplier="5"),
            "member_days": [
                {"weekday": 6, "mode": "multiplier", "multiplier": "2"},
                {"day_of_month": 8, "mode": "no_points"},
            ],
            "birthday": {"multiplier": "2", "tiers": ["gold", "vip"]},
            "campaigns": [
                *_yearly(years, zone, (10, 1), (10, 8), name="店庆", multiplier="3"),
                *_yearly(years, zone, (11, 11), (11, 12), name="双十一", multiplier="2"),
            ],
            "stacking": "max",
        },
        "tiers": {
            "window_months": 24,
            "review": {"month": 12, "day": 31},
            "levels": [
                {"code": "normal", "min_spend_fen": 0, "discount": "0.97"},
                {"code": "silver", "min_spend_fen": 200_000, "discount": "0.95"},
                {"code": "gold", "min_spend_fen": 1_000_000, "discount": "0.92"},
                {"code": "vip", "min_spend_fen": 3_000_000, "discount": "0.90"},
            ],
        },
        "redemption": {
            "cash_offset_points_per_yuan": 100,
            "max_offset_ratio": "0.5",
            "voucher_ladder": [
                {"points": 100, "value_fen": 200},
                {"points": 500, "value_fen": 1_500},
                {"points": 1_000, "value_fen": 4_000},
                {"points": 2_000, "value_fen": 10_000},
            ],
            "stored_value_points_per_yuan": 100,
        },
        "expiry": {"rolling_months": 12, "clearance_month": 3, "clearance_day": 31},
        "settlement": {"cost_per_point_fen": "3"},
    }
    first["tiers"]["levels"][3]["points_multiplier"] = "1.5"
    if plan.days < 2:
        return [first]
    second = msgspec.json.decode(msgspec.json.encode(first))  # a deep copy
    second["effective_from"] = _iso(plan.start + timedelta(days=plan.days // 2), zone)
    second["accrual"]["category_multipliers"] = {"tcm": "2", "supplement": "2.5", "device": "1.5"}
    second["tiers"]["levels"][3]["points_multiplier"] = "2"
    second["redemption"]["voucher_ladder"].append({"points": 5_000, "value_fen": 30_000})
    second["settlement"]["cost_per_point_fen"] = "2.8"
    return [first, second]


# -- the generator ------------------------------------------------------------------------------


def _poisson(rng: random.Random, mean: float) -> int:
    if mean < 30:  # Knuth: multiply uniforms until the product falls below e^-mean
        limit, k, product = math.exp(-mean), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def _midnight(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


Action = Callable[[datetime], None]


class _Chain:
    """The generator: catalogue, stores, members, counters, and an agenda of timed actions
    that runs in business-time order."""

    def __init__(self, ledger: Ledger, plan: DemoPlan) -> None:
        self.ledger, self.plan = ledger, plan
        self.rng = random.Random(plan.seed)  # noqa: S311 - reproducible demo data, not secrets
        self.walk_in_rng = random.Random(plan.seed + 7_919)  # noqa: S311 - as above
        self.sizes: list[float] = []
        self.zone = ZoneInfo(plan.timezone)
        self.start = datetime(plan.start.year, plan.start.month, plan.start.day, tzinfo=self.zone)
        self.end = self.start + timedelta(days=plan.days)
        self.out = DemoSummary()
        self.agenda: list[tuple[datetime, int, Action]] = []
        self.order = itertools.count()
        self.numbers: dict[tuple[str, str], int] = {}  # (kind, store) -> today's last number
        self.today = ""
        self.tickets = itertools.count(1)
        width = max(3, len(str(plan.stores)))
        self.stores = [f"S{n:0{width}d}" for n in range(1, plan.stores + 1)]
        self.catalogue = [self._products(*c[:5]) for c in CATEGORIES]
        self.members: list[_Member] = []
        self.enrol_times: list[datetime] = []
        self.cumulative_rates: list[float] = []

    def _products(
        self, category: str, prefix: str, count: int, low: int, high: int
    ) -> tuple[str, list[tuple[str, int]], list[float]]:
        """A category's SKUs with prices (cheap ones commoner) and Zipf popularity, cumulated."""
        rng = self.rng
        skus = [
            (f"{prefix}-{n:04d}", (low + int((high - low) * rng.random() ** 2)) // 10 * 10)
            for n in range(1, count + 1)
        ]
        return category, skus, list(itertools.accumulate(1 / r for r in range(1, count + 1)))

    def later(self, at: datetime, action: Action) -> None:
        heapq.heappush(self.agenda, (at, next(self.order), action))

    def number(self, kind: str, store: str) -> str:
        """`S001-20250101-0001` for receipts, with a letter before the date for other kinds."""
        key = (kind, store)
        n = self.numbers[key] = self.numbers.get(key, 0) + 1
        return f"{store}-{kind}{self.today}-{n:04d}"

    def clock(self, day: datetime) -> datetime:
        """A moment in the opening hours of `day` (a midnight), busier mornings and evenings."""
        hour = self.rng.choices(OPENING_HOURS, HOUR_WEIGHTS)[0]
        return day + timedelta(hours=hour, seconds=self.rng.randrange(3600))

    def some_day(self, after: datetime, low: int, high: int) -> datetime:
        return self.clock(_midnight(after) + timedelta(days=self.rng.randint(low, high)))

    @staticmethod
    def busy(day: date) -> float:
        """How busy a day is: flu season, weekday and member days, campaigns."""
        f = MONTH_FACTOR.get(day.month, 1.0) * WEEKDAY_FACTOR.get(day.isoweekday(), 1.0)
        if day.day == 8:  # 打折不积分: the discount draws people anyway
            f *= 1.15
        if (day.month == 10 and day.day <= 7) or (day.month, day.day) == (11, 11):
            f *= 1.5
        return f

    # -- set-up ----------------------------------------------------------------------------

    def open_stores(self) -> list[float]:
        """Register the stores; returns their sizes (how likely each is a member's home)."""
        rng, n = self.rng, len(self.stores)
        direct = set(rng.sample(range(n), round(n * DIRECT_SHARE))) if n > 1 else set()
        franchise = [i for i in range(n) if i not in direct]
        owners = max(1, round(len(franchise) / 1.5))  # some franchisees run two or three stores
        width = max(2, len(str(owners)))
        for i, store in enumerate(self.stores):
            name = f"康宁大药房{DISTRICTS[i % len(DISTRICTS)]}{i + 1}号店"
            if i in direct:
                cmd = RegisterStore(name=f"{name}（直营）", kind="direct")
            else:
                owner = f"F{franchise.index(i) % owners + 1:0{width}d}"
                cmd = RegisterStore(name=f"{name}（加盟）", kind="franchise", franchisee=owner)
                self.out.franchise_stores += 1
            self.ledger.configure_store(store, cmd, ADMIN)
        self.out.stores = n
        return [rng.uniform(0.5, 2.0) for _ in self.stores]

    def recruit(self, sizes: list[float]) -> None:
        """Members in enrolment order (card 1 first): the migrated ones during the year before,
        the rest over the period, busy days drawing more; each enrolment goes on the agenda."""
        plan, rng = self.plan, self.rng
        migrated = round(plan.members * MIGRATED_SHARE)
        days = range(plan.days)
        weights = [self.busy(plan.start + timedelta(days=d)) for d in days]
        offsets = sorted(rng.randrange(-365, 0) for _ in range(migrated))
        offsets += sorted(rng.choices(days, weights, k=plan.members - migrated))
        for n, offset in enumerate(offsets, start=1):
            at = self.clock(self.start + timedelta(days=offset))
            home = rng.choices(self.stores, sizes)[0]
            rate = min(200.0, 6 * rng.paretovariate(1.5))  # visits a year: many light, few heavy
            member = _Member(f"{n:0{CARD_DIGITS}d}", home, at, rate)
            if rng.random() < BIRTHDAY_SHARE:
                member.birthday = date(
                    rng.randint(1945, 2005), rng.randint(1, 12), rng.randint(1, 28)
                )
            self.members.append(member)
            self.later(at, partial(self.enrol, member, offset < 0))
        for member in rng.sample(self.members, max(1, round(plan.members * DTP_SHARE))):
            member.dtp = True
        self.enrol_times = sorted(m.enrol_at for m in self.members)
        self.cumulative_rates = list(itertools.accumulate(m.rate for m in self.members))
        self.out.migrated_members = migrated

    # -- what members do -------------------------------------------------------------------

    def enrol(self, m: _Member, migrated: bool, at: datetime) -> None:
        cmd = EnrolMember(member_id=m.card, store_id=m.home, birthday=m.birthday, occurred_at=at)
        self.ledger.enrol(cmd, f"pos:{m.home}", now_utc())
        self.out.members += 1
        if migrated:  # the legacy balance comes over as a credit dated when it was earned
            points = min(20_000, int(100 * self.rng.paretovariate(1.1)))
            reason = "opening balance from the legacy POS (旧系统积分迁移)"
            self.adjust(m, at + timedelta(minutes=1), points, reason, f"MIG-{m.card}")
        else:
            self.visit(m, m.dtp, at + timedelta(minutes=2), away=False)  # the first purchase
        if m.dtp:
            first = self.some_day(self.start, 0, 27) if migrated else self.some_day(at, 26, 34)
            self.later(first, partial(self.refill, m))

    def refill(self, m: _Member, at: datetime) -> None:
        self.visit(m, True, at)
        self.later(self.some_day(at, 26, 34), partial(self.refill, m))

    def basket(self, at: datetime, dtp: bool) -> list[SaleLine]:
        """1 to 6 lines: a DTP drug first for a refill, then goods of mixed categories (the
        flu remedy in winter, the promoted brand), some at special prices, and the decoction
        fee after a TCM line."""
        rng = self.rng
        count = rng.choices(LINE_COUNTS, LINE_COUNT_WEIGHTS)[0]
        lines: list[SaleLine] = []
        if dtp:
            fen = rng.randint(1_800, 9_800) * 100
            lines.append(
                SaleLine(sku=f"DTP-{rng.randint(1, 12):03d}", category="rx", amount_fen=fen)
            )
        flu = at.month in FLU_MONTHS
        while len(lines) < count:
            category, skus, popularity = rng.choices(self.catalogue, CATEGORY_WEIGHTS)[0]
            sku, price = skus[bisect.bisect_left(popularity, rng.random() * popularity[-1])]
            if category == "otc" and flu and rng.random() < 0.25:
                sku, price = "OTC-FLU", 3_280
            elif category == "supplement" and rng.random() < 0.1:
                sku, price = "BRAND-X", 29_800
            quantity = rng.choices((1, 2, 3), (80, 15, 5))[0]
            special = rng.random() < 0.04  # 特价 goods earn no points
            lines.append(
                SaleLine(
                    sku=sku,
                    category=category,
                    amount_fen=price * quantity,
                    quantity=quantity,
                    no_points=special,
                )
            )
            if (
                category == "tcm" and len(lines) < count and rng.random() < 0.3
            ):  # 代煎 decoction fee: no tier spend
                fen = rng.randint(10, 40) * 100
                lines.append(
                    SaleLine(
                        sku="SVC-DECOCT",
                        category="service",
                        amount_fen=fen,
                        no_cumulative_spend=True,
                    )
                )
        return lines

    def visit(self, m: _Member, dtp: bool, at: datetime, *, away: bool = True) -> None:
        """A purchase (mostly at the home store, if `away` sometimes elsewhere), and what may
        go with it: a stored-value payment, a redemption, a conversion; later perhaps a refund
        or a customer-service ticket."""
        rng = self.rng
        store = m.home
        if away and len(self.stores) > 1 and rng.random() < OTHER_STORE_RATE:
            store = rng.choice(self.stores)
        receipt_no = self.number("", store)
        lines = self.basket(at, dtp)
        cmd = PostSale(
            store_id=store, receipt_no=receipt_no, member_id=m.card, occurred_at=at, lines=lines
        )
        receipt, _ = self.ledger.post_sale(cmd, f"pos:{store}", now_utc())
        self.out.sales += 1
        self.out.upgrades += receipt.tier_changed
        m.points = receipt.balance.points
        total_fen = sum(line.amount_fen for line in lines)
        payment = None
        if m.stored_fen >= 100 and rng.random() < 0.6:
            payment = self.pay(m, store, min(m.stored_fen, total_fen), at + timedelta(seconds=10))
        chance = 0.12 if m.points >= 500 else 0.05 if m.points >= 100 else 0.0
        if rng.random() < chance:
            self.redeem(m, store, total_fen, at + timedelta(seconds=20))
        if m.points >= 2_000 and rng.random() < 0.04:
            self.convert(m, store, at + timedelta(seconds=40))
        if rng.random() < REFUND_RATE:
            sold = _Sold(store, receipt_no, m, lines)
            sold.payment = payment
            soon = rng.random() < 0.4
            when = (
                at + timedelta(minutes=rng.randint(10, 360)) if soon else self.some_day(at, 1, 14)
            )
            self.later(when, partial(self.refund, sold))
        if rng.random() < TICKET_RATE:
            self.later(self.some_day(at, 1, 3), partial(self.ticket, m, receipt_no))

    def pay(self, m: _Member, store: str, amount_fen: int, at: datetime) -> tuple[str, int] | None:
        payment_no = self.number("P", store)
        cmd = PayWithStoredValue(
            store_id=store, payment_no=payment_no, occurred_at=at, amount_fen=amount_fen
        )
        try:
            receipt, _ = self.ledger.pay_with_stored_value(m.card, cmd, f"pos:{store}", now_utc())
        except REFUSALS:
            self.out.refused += 1
            return None
        self.out.payments += 1
        m.stored_fen = receipt.stored_value_fen
        return payment_no, amount_fen

    def redemption(self, m: _Member, store: str, total_fen: int, at: datetime) -> Redeem | None:
        """A redemption the member can afford, by the last receipt: cash offset (at most half
        the receipt), a voucher step, a gift or an exchange."""
        rng, points, card = self.rng, m.points, m.card
        kind = rng.choices(("cash_offset", "voucher", "gift", "exchange"), (45, 30, 15, 10))[0]
        no = self.number("D", store)
        if kind == "cash_offset" and min(points, total_fen // 2) >= 100:
            offset = 100 * rng.randint(1, min(points, total_fen // 2) // 100)
            return CashOffset(
                store_id=store,
                redemption_no=no,
                member_id=card,
                occurred_at=at,
                points=offset,
                receipt_amount_fen=total_fen,
            )
        steps = [s for s in VOUCHER_STEPS if s <= points]
        if kind == "voucher" and steps:
            step = steps[-1] if rng.random() < 0.5 else rng.choice(steps)
            return Voucher(
                store_id=store, redemption_no=no, member_id=card, occurred_at=at, points=step
            )
        gifts = [g for g in GIFTS if g[1] <= points]
        if kind == "gift" and gifts:
            sku, cost, fen = rng.choice(gifts)
            return Gift(
                store_id=store,
                redemption_no=no,
                member_id=card,
                occurred_at=at,
                points=cost,
                gift_sku=sku,
                cost_fen=fen,
            )
        offers = [e for e in EXCHANGES if e[1] <= points]
        if kind == "exchange" and offers:
            sku, cost, cash, fen = rng.choice(offers)
            return Exchange(
                store_id=store,
                redemption_no=no,
                member_id=card,
                occurred_at=at,
                points=cost,
                sku=sku,
                cash_price_fen=cash,
                cost_fen=fen,
            )
        return None

    def redeem(self, m: _Member, store: str, total_fen: int, at: datetime) -> None:
        cmd = self.redemption(m, store, total_fen, at)
        if cmd is None:
            return
        try:
            receipt, _ = self.ledger.redeem(cmd, f"pos:{store}", now_utc())
        except REFUSALS:
            self.out.refused += 1
            return
        self.out.redemptions += 1
        m.points = receipt.balance.points
        if self.rng.random() < VOID_RATE:  # the cashier takes it back (at the ledger's now)
            voided, _ = self.ledger.void(store, cmd.redemption_no, f"pos:{store}", now_utc())
            self.out.voids += 1
            m.points = voided.balance.points

    def convert(self, m: _Member, store: str, at: datetime) -> None:
        points = m.points // 200 * 100  # about half, in hundreds
        cmd = ConvertPoints(
            store_id=store, conversion_no=self.number("C", store), occurred_at=at, points=points
        )
        try:
            receipt, _ = self.ledger.convert_points(m.card, cmd, f"pos:{store}", now_utc())
        except REFUSALS:
            self.out.refused += 1
            return
        self.out.conversions += 1
        m.points, m.stored_fen = receipt.balance.points, receipt.stored_value_fen

    def refund(self, sold: _Sold, at: datetime) -> None:
        """All that is left, one whole line, or part of a line (whose rest may follow)."""
        rng, left = self.rng, sold.left_fen
        open_lines = [n for n, fen in enumerate(left, start=1) if fen > 0]
        if not open_lines:
            return
        kind = rng.choices(("full", "line", "part"), (45, 25, 30))[0]
        if kind == "full":
            lines = [RefundLine(line_no=n, amount_fen=left[n - 1]) for n in open_lines]
        else:
            n = rng.choice(open_lines)
            whole = kind == "line" or left[n - 1] < 2
            fen = left[n - 1] if whole else rng.randint(max(1, left[n - 1] // 4), left[n - 1] - 1)
            lines = [RefundLine(line_no=n, amount_fen=fen)]
        sold.refunds += 1
        cmd = RefundSale(
            refund_no=f"{sold.receipt_no}-F{sold.refunds}", occurred_at=at, lines=lines
        )
        operator = f"pos:{sold.store}"
        receipt, _ = self.ledger.refund_sale(sold.store, sold.receipt_no, cmd, operator, now_utc())
        self.out.refunds += 1
        if receipt.balance is not None:  # always, for a member's sale
            sold.member.points = receipt.balance.points
        for line in lines:
            left[line.line_no - 1] -= line.amount_fen
        if kind == "full" and sold.payment is not None:  # the stored value goes back too
            self.refund_stored_value(sold, sold.payment, at + timedelta(seconds=30))
        elif kind == "part" and rng.random() < 0.25:  # the rest comes back a few days later
            self.later(self.some_day(at, 1, 7), partial(self.refund, sold))

    def refund_stored_value(self, sold: _Sold, payment: tuple[str, int], at: datetime) -> None:
        payment_no, fen = payment
        cmd = RefundStoredValue(
            store_id=sold.store,
            refund_no=f"{payment_no}-F1",
            payment_no=payment_no,
            occurred_at=at,
            amount_fen=fen,
        )
        operator = f"pos:{sold.store}"
        receipt, _ = self.ledger.refund_stored_value(sold.member.card, cmd, operator, now_utc())
        self.out.stored_value_refunds += 1
        sold.member.stored_fen = receipt.stored_value_fen

    def ticket(self, m: _Member, receipt_no: str, at: datetime) -> None:
        """Customer service: a correcting debit, a missed-points credit, or goodwill."""
        rng = self.rng
        ticket = f"CS-{next(self.tickets):06d}"
        if rng.random() < 0.3 and m.points >= 10:
            points = -min(m.points, rng.randint(10, 200))
            reason = f"duplicate points on receipt {receipt_no} corrected"
        elif rng.random() < 0.5:
            points, reason = rng.randint(20, 300), f"points missed on receipt {receipt_no}"
        else:
            points, reason = rng.randint(50, 200), "goodwill: prescription out of stock"
        self.adjust(m, at, points, reason, ticket)

    def adjust(self, m: _Member, at: datetime, points: int, reason: str, ticket: str) -> None:
        cmd = AdjustPoints(
            adjustment_no=ticket, points=points, reason=reason, ticket=ticket, occurred_at=at
        )
        try:
            receipt, _ = self.ledger.adjust_points(m.card, cmd, SERVICE, now_utc())
        except REFUSALS:
            self.out.refused += 1
            return
        self.out.adjustments += 1
        m.points = receipt.balance.points

    # -- the calendar ----------------------------------------------------------------------

    def run_until(self, until: datetime) -> None:
        """Carry out the agenda, in business-time order, up to `until` (exclusive)."""
        while self.agenda and self.agenda[0][0] < until:
            at, _, action = heapq.heappop(self.agenda)
            today = at.astimezone(self.zone).strftime("%Y%m%d")
            if today != self.today:
                self.today = today
                self.numbers.clear()
            action(at)

    def day(self, midnight: datetime) -> None:
        """The day's walk-in visits by members enrolled before it, then the whole agenda."""
        rng, rates = self.rng, self.cumulative_rates
        enrolled = bisect.bisect_left(self.enrol_times, midnight)
        if enrolled:
            total = rates[enrolled - 1]
            for _ in range(_poisson(rng, total * self.busy(midnight.date()) / 365)):
                n = bisect.bisect_right(rates, rng.random() * total, 0, enrolled)
                self.later(
                    self.clock(midnight),
                    partial(self.visit, self.members[min(n, enrolled - 1)], False),
                )
        self.walk_ins(midnight)
        self.run_until(midnight + timedelta(days=1))

    # -- customers without a card (their own random stream) ---------------------------------

    def walk_ins(self, midnight: datetime) -> None:
        """The day's sales without a member, in proportion to the members' visits."""
        rng = self.walk_in_rng
        mean = self.cumulative_rates[-1] * self.busy(midnight.date()) / 365 * NON_MEMBER_VISITS
        for _ in range(_poisson(rng, mean)):
            store = rng.choices(self.stores, self.sizes)[0]
            hour = rng.choices(OPENING_HOURS, HOUR_WEIGHTS)[0]
            at = midnight + timedelta(hours=hour, seconds=rng.randrange(3600))
            self.later(at, partial(self.walk_in, store))

    def walk_in(self, store: str, at: datetime) -> None:
        rng = self.walk_in_rng
        lines = []
        for _ in range(rng.choices((1, 2, 3), NON_MEMBER_LINE_WEIGHTS)[0]):
            category, skus, popularity = rng.choices(self.catalogue, CATEGORY_WEIGHTS)[0]
            sku, price = skus[bisect.bisect_left(popularity, rng.random() * popularity[-1])]
            lines.append(SaleLine(sku=sku, category=category, amount_fen=price))
        receipt_no = self.number("N", store)
        cmd = PostSale(
            store_id=store, receipt_no=receipt_no, member_id=None, occurred_at=at, lines=lines
        )
        self.ledger.post_non_member_sale(cmd, f"pos:{store}", now_utc())
        self.out.non_member_sales += 1
        if rng.random() < NON_MEMBER_REFUND_RATE:
            refund = RefundSale(
                refund_no=f"{receipt_no}-F1",
                occurred_at=at + timedelta(minutes=rng.randint(5, 240)),
                lines=[RefundLine(line_no=1, amount_fen=lines[0].amount_fen)],
            )
            self.later(refund.occurred_at, partial(self.walk_in_refund, store, receipt_no, refund))

    def walk_in_refund(self, store: str, receipt_no: str, cmd: RefundSale, _: datetime) -> None:
        self.ledger.refund_sale(store, receipt_no, cmd, f"pos:{store}", now_utc())
        self.out.non_member_refunds += 1

    def expire(self, as_of: datetime) -> None:
        result = self.ledger.expire_points(as_of, SCHEDULER, now_utc())
        self.out.expiry_runs += 1
        self.out.points_expired += result.points_expired

    def run(self, tracker: Tracker | None) -> None:
        versions = [msgspec.convert(d, RuleSet) for d in rule_documents(self.plan)]
        self.ledger.publish_rules(versions.pop(0), ADMIN)
        self.out.rule_versions = 1
        self.sizes = self.open_stores()
        self.recruit(self.sizes)
        self.run_until(self.start)  # the migrated members
        for offset in range(self.plan.days):
            midnight = self.start + timedelta(days=offset)
            if versions and versions[0].effective_from <= midnight:
                self.ledger.publish_rules(versions.pop(0), ADMIN)
                self.out.rule_versions += 1
            if midnight.day == 1:
                self.expire(midnight + timedelta(minutes=5))
            self.day(midnight)
            if tracker is not None:
                tracker.advance(1)
        self.expire(self.end)
        review = self.ledger.review_tiers(self.end, SCHEDULER, now_utc())
        self.out.downgrades, self.out.upgrades = (
            review.downgraded,
            self.out.upgrades + review.upgraded,
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


def generate(ledger: Ledger, plan: DemoPlan, tracker: Tracker | None = None) -> DemoSummary:
    """Generate the chain of `plan` into `ledger`, whose store must be empty."""
    check_plan(plan, now_utc())
    if ledger.recorder.max_notification_id():
        raise PlanRefused("the demo needs an empty event store")
    started = time.perf_counter()
    chain = _Chain(ledger, plan)
    chain.run(tracker)
    chain.out.events = ledger.recorder.max_notification_id() or 0
    chain.out.seconds = round(time.perf_counter() - started, 1)
    return chain.out


# -- the command ----------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    plan = DemoPlan(
        stores=args.stores,
        members=args.members,
        days=args.days,
        seed=args.seed,
        start=args.start,
        timezone=settings.timezone,
    )
    ledger = open_ledger(settings)
    try:
        with progress("demo", total=plan.days) as tracker:
            result = generate(ledger, plan, tracker)
    except PlanRefused as e:
        sys.stderr.write(f"ledger demo: {e}\n")
        return 2
    finally:
        ledger.close()
    summary(result.line())
    return 0


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    demo = commands.add_parser(
        "demo",
        help="generate a realistic, deterministic demo chain into an empty store",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    demo.add_argument("--stores", type=int, default=20)
    demo.add_argument("--members", type=int, default=2_000)
    demo.add_argument("--days", type=int, default=365)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2025, 1, 1),
        help="first day, ISO date in chain time (default 2025-01-01)",
    )
    demo.set_defaults(run=_run)
