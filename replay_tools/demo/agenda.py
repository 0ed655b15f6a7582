"""The generator's state and clock: the simulated member, the catalogue, the stores, the number
counters, and an agenda of timed actions carried out in business-time order."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ledger.application import Ledger
from replay_tools.demo.plan import (
    CATEGORIES,
    HOUR_WEIGHTS,
    MONTH_FACTOR,
    OPENING_HOURS,
    WEEKDAY_FACTOR,
    DemoPlan,
    DemoSummary,
    store_ids,
)

Action = Callable[[datetime], None]


class DemoMember:
    """A member as the generator tracks it: card, home store, visit rate, balances."""

    __slots__ = ("birthday", "card", "dtp", "enrol_at", "home", "points", "rate", "stored_fen")

    def __init__(self, card: str, home: str, enrol_at: datetime, rate: float) -> None:
        self.card, self.home, self.enrol_at, self.rate = card, home, enrol_at, rate
        self.birthday: date | None = None
        self.dtp = False
        self.points = 0  # spendable, as the last receipt said (expiry runs make it stale)
        self.stored_fen = 0


def _midnight(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


class Agenda:
    """The generator's base: catalogue, stores, members, counters, and an agenda of timed
    actions that runs in business-time order."""

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
        self.stores = store_ids(plan.stores)
        self.catalogue = [self._products(*c[:5]) for c in CATEGORIES]
        self.members: list[DemoMember] = []
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

    def run_until(self, until: datetime) -> None:
        """Carry out the agenda, in business-time order, up to `until` (exclusive)."""
        while self.agenda and self.agenda[0][0] < until:
            at, _, action = heapq.heappop(self.agenda)
            today = at.astimezone(self.zone).strftime("%Y%m%d")
            if today != self.today:
                self.today = today
                self.numbers.clear()
            action(at)
