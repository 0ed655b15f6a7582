"""The simulation: the rule versions published, the stores opened, the members recruited and
enrolled (migrated ones with an opening balance, new ones often with a registration bonus, some
referred by an earlier member, who gets the referral bonus), each day's visits by members and
by customers without a card, the monthly expiry runs, and at the end a tier review."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from datetime import date, datetime, timedelta
from functools import partial

import msgspec

from ledger.application import Ledger
from ledger.domain.commands import (
    EnrolMember,
    GrantBonus,
    PostSale,
    RefundLine,
    RefundSale,
    RegisterStore,
    SaleLine,
)
from ledger.domain.model import now_utc
from ledger.policies.ruleset import RuleSet
from replay_tools.demo.agenda import DemoMember
from replay_tools.demo.plan import (
    ADMIN,
    BIRTHDAY_SHARE,
    CARD_DIGITS,
    CATEGORY_WEIGHTS,
    DIRECT_SHARE,
    DISTRICTS,
    DTP_SHARE,
    HOUR_WEIGHTS,
    MIGRATED_SHARE,
    NON_MEMBER_LINE_WEIGHTS,
    NON_MEMBER_REFUND_RATE,
    NON_MEMBER_VISITS,
    OPENING_HOURS,
    REFERRAL_RATE,
    REGISTRATION_BONUS_RATE,
    SCHEDULER,
    DemoPlan,
    DemoSummary,
    PlanRefused,
    check_plan,
)
from replay_tools.demo.rules import rule_documents
from replay_tools.demo.shopping import Shopping
from replay_tools.progress import Tracker


def _poisson(rng: random.Random, mean: float) -> int:
    if mean < 30:  # Knuth: multiply uniforms until the product falls below e^-mean
        limit, k, product = math.exp(-mean), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


class _Chain(Shopping):
    """The generator: set-up, the calendar of days and runs, and the customers without a card."""

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
            self.ledger.access.configure_store(store, cmd, ADMIN)
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
            member = DemoMember(f"{n:0{CARD_DIGITS}d}", home, at, rate)
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

    # -- enrolment and refills -------------------------------------------------------------

    def enrol(self, m: DemoMember, migrated: bool, at: datetime) -> None:
        cmd = EnrolMember(member_id=m.card, store_id=m.home, birthday=m.birthday, occurred_at=at)
        self.ledger.members.enrol(cmd, f"pos:{m.home}", now_utc())
        self.out.members += 1
        if migrated:  # the legacy balance comes over as a credit dated when it was earned
            points = min(20_000, int(100 * self.rng.paretovariate(1.1)))
            reason = "opening balance from the legacy POS (旧系统积分迁移)"
            self.adjust(m, at + timedelta(minutes=1), points, reason, f"MIG-{m.card}")
        else:
            self.welcome(m, at + timedelta(minutes=1))
            self.visit(m, m.dtp, at + timedelta(minutes=2), away=False)  # the first purchase
        if m.dtp:
            first = self.some_day(self.start, 0, 27) if migrated else self.some_day(at, 26, 34)
            self.later(first, partial(self.refill, m))

    def welcome(self, m: DemoMember, at: datetime) -> None:
        """A new member's registration bonus (at headquarters' cost), and the referral bonus of
        the earlier member who brought them (at the enrolling store's), as the dice say."""
        rng = self.rng
        if rng.random() < REGISTRATION_BONUS_RATE:
            self.bonus(
                m.card,
                GrantBonus(
                    bonus_no=self.number("B", m.home),
                    code="registration",
                    store_id=m.home,
                    occurred_at=at,
                ),
            )
        before = bisect.bisect_left(self.enrol_times, m.enrol_at)
        recent = [
            e for e in self.members[max(0, before - 50) : before + 50] if e.enrol_at < m.enrol_at
        ]
        if recent and rng.random() < REFERRAL_RATE:
            referrer = rng.choice(recent)  # a member enrolled a little earlier brings a friend
            cmd = GrantBonus(
                bonus_no=self.number("B", m.home),
                code="referral",
                store_id=m.home,
                occurred_at=at,
                referred_member_id=m.card,
            )
            self.bonus(referrer.card, cmd)

    def bonus(self, card: str, cmd: GrantBonus) -> None:
        self.ledger.bonuses.grant(card, cmd, f"pos:{cmd.store_id}", now_utc())
        self.out.bonuses += 1

    def refill(self, m: DemoMember, at: datetime) -> None:
        self.visit(m, True, at)
        self.later(self.some_day(at, 26, 34), partial(self.refill, m))

    # -- the calendar ----------------------------------------------------------------------

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
        self.ledger.sales.post(cmd, f"pos:{store}", now_utc())
        self.out.non_member_sales += 1
        if rng.random() < NON_MEMBER_REFUND_RATE:
            refund = RefundSale(
                refund_no=f"{receipt_no}-F1",
                occurred_at=at + timedelta(minutes=rng.randint(5, 240)),
                lines=[RefundLine(line_no=1, amount_fen=lines[0].amount_fen)],
            )
            self.later(refund.occurred_at, partial(self.walk_in_refund, store, receipt_no, refund))

    def walk_in_refund(self, store: str, receipt_no: str, cmd: RefundSale, _: datetime) -> None:
        self.ledger.sales.refund(store, receipt_no, cmd, f"pos:{store}", now_utc())
        self.out.non_member_refunds += 1

    # -- the runs and the whole period ------------------------------------------------------

    def expire(self, as_of: datetime) -> None:
        result = self.ledger.runs.expire(as_of, SCHEDULER, now_utc())
        self.out.expiry_runs += 1
        self.out.points_expired += result.points_expired

    def samples(self) -> dict[str, str]:
        """A few cards worth opening in the console, by what they show."""
        by_rate = sorted(self.members, key=lambda m: m.rate)
        picks = {"heaviest buyer": by_rate[-1], "typical member": by_rate[len(by_rate) // 2]}
        dtp = [m for m in self.members if m.dtp]
        if dtp:
            picks["specialty-drug (DTP) patient, monthly refills"] = dtp[0]
        if self.out.migrated_members:  # enrolled first, with an opening balance
            picks["migrated from the legacy POS"] = self.members[0]
        return {label: m.card for label, m in picks.items()}

    def run(self, tracker: Tracker | None) -> None:
        versions = [msgspec.convert(d, RuleSet) for d in rule_documents(self.plan)]
        self.ledger.rules.publish(versions.pop(0), ADMIN)
        self.out.rule_versions = 1
        self.sizes = self.open_stores()
        self.recruit(self.sizes)
        self.run_until(self.start)  # the migrated members
        for offset in range(self.plan.days):
            midnight = self.start + timedelta(days=offset)
            if versions and versions[0].effective_from <= midnight:
                self.ledger.rules.publish(versions.pop(0), ADMIN)
                self.out.rule_versions += 1
            if midnight.day == 1:
                self.expire(midnight + timedelta(minutes=5))
            self.day(midnight)
            if tracker is not None:
                tracker.advance(1)
        self.expire(self.end)
        review = self.ledger.runs.review_tiers(self.end, SCHEDULER, now_utc())
        self.out.downgrades, self.out.upgrades = (
            review.downgraded,
            self.out.upgrades + review.upgraded,
        )


def generate(ledger: Ledger, plan: DemoPlan, tracker: Tracker | None = None) -> DemoSummary:
    """Generate the chain of `plan` into `ledger`, whose store must be empty."""
    check_plan(plan, now_utc())
    if ledger.core.recorder.max_notification_id():
        raise PlanRefused("the demo needs an empty event store")
    started = time.perf_counter()
    chain = _Chain(ledger, plan)
    chain.run(tracker)
    chain.out.samples = chain.samples()
    chain.out.events = ledger.core.recorder.max_notification_id() or 0
    chain.out.seconds = round(time.perf_counter() - started, 1)
    return chain.out
