"""Issue 5, figures 3-5, step 1: a realistic event log of a million-plus events, generated fast.

The chain (1,000 stores, 70 % franchise; members of every kind and one very heavy member, a
clinic's purchasing account with 2,000+ events) lives in memory: each member's state is the
ledger's own `Member`, changed only by `ledger.domain.member.evolve`, and every event comes from the
ledger's pure decision functions (`rulebook.publish`, `store.configure`, `enrolment.enrol`,
`sale.record_sale`, `refunds.refund_sale`, `redemption.redeem/capture/void`,
`storedvalue.convert/pay/refund_payment`, `adjustments.adjust`, `settlement.close`,
`tierreview.review`), exactly as `Ledger` calls them. The application's write path (reads,
optimistic appends, one transaction per command) is skipped: the events are encoded with the
application's own mapper and inserted by its own recorder, ~2,000 per transaction, from a
writer process while the next batch is generated. Snapshots are written where the application
would take them (every 100th version of a member).

Business time runs over `--months` (18) ending at `--end` (today 00:00 chain time), in order,
so the log interleaves members as a real one does: sales (seasons, weekdays, member days,
campaigns, 1-6 line baskets), late uploads from offline stores (some land in a closed month),
refunds (full, per line, partial), redemptions of every kind (some two-phase, some voided),
conversions to stored value and payments with it (refunded with their sale), customer-service
adjustments, legacy opening balances, a monthly settlement close and a yearly tier review.
The rule sets are `ledger demo`'s (a second version from mid-window), except for expiry: no
expiry run ever happened, and a rolling expiry of `--rolling-months` (1 by default) leaves most
lots due by the end, a million-plus for `bench/expiry.py` (with the demo's 12 months and
year-end clearance only the first third of the window would be due, and redemptions take the
oldest lots first: ~3 times the log for the same figure).

Deterministic: the same `--seed` and `--end` write the same events (timestamps included) in
the same order. Memory stays bounded: events are dropped once encoded; member states (lots
and spend) are what is kept, ~1 GB at the default size.

    .venv/bin/python -m bench.biglog --recreate     # into bench_biglog on the local PostgreSQL
    .venv/bin/python -m bench.biglog --database-url /tmp/biglog.db --recreate --small
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import heapq
import itertools
import math
import multiprocessing
import queue
import random
import resource
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.persistence import StoredEvent

from bench.bigstore import (
    HEAVY_CARD,
    TIMEZONE,
    add_store_arguments,
    analyze,
    command_of,
    database_url,
    emit,
    load_average,
    parser_for,
    recreate,
    store_kind,
)
from ledger.domain import enrolment, ids, redemption, rulebook, settlement, store, tierreview
from ledger.domain.adjustment import adjust
from ledger.domain.commands import (
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
from ledger.domain.errors import LedgerError
from ledger.domain.member import Member, MemberEvent, PointsAccrued, PointsAdjusted, available
from ledger.domain.member import evolve as evolve_member
from ledger.domain.model import DomainEvent, Snapshot
from ledger.domain.operation import FollowUpRecorded, Operation, OperationRecorded, encode
from ledger.domain.operation import evolve as evolve_operation
from ledger.domain.redemption import Redemption
from ledger.domain.redemption import evolve as evolve_redemption
from ledger.domain.refund import refund_sale
from ledger.domain.sale import Sale, SaleRecorded, record_sale
from ledger.domain.sale import evolve as evolve_sale
from ledger.domain.storedvalue import convert, pay, refund_payment
from ledger.infrastructure import hashchain
from ledger.infrastructure.persistence import MsgspecMapper, NullTranscoder
from ledger.policies.chaintime import add_months, month_of
from ledger.policies.lots import Lot
from ledger.policies.ruleset import RuleSet, RuleVersion
from ledger.settings import Settings
from replay_tools.demo import (
    CATEGORIES,
    EXCHANGES,
    HOUR_WEIGHTS,
    LINE_COUNT_WEIGHTS,
    LINE_COUNTS,
    MONTH_FACTOR,
    OPENING_HOURS,
    REFUND_RATE,
    TICKET_RATE,
    VOID_RATE,
    VOUCHER_STEPS,
    WEEKDAY_FACTOR,
    DemoPlan,
    rule_documents,
)
from replay_tools.demo import GIFTS as DEMO_GIFTS

SNAPSHOT_INTERVAL = 100  # as ledger.application: a snapshot at every 100th member version
FRANCHISE_SHARE = 0.7
EXISTING_SHARE = 0.7  # members enrolled during the two years before the window
LEGACY_SHARE = 0.3  # of those, members with an opening balance from the legacy POS
ID_NUMBER_SHARE = 0.4
BIRTHDAY_SHARE = 0.25
OTHER_STORE_RATE = 0.12
LATE_UPLOAD_RATE = 0.01  # offline stores: the sale is recorded 1-6 days after it happened
REDEEM_RATE = 0.02  # of visits with 500 points or more (a third of that from 100 points)
CONVERT_RATE = 0.01  # of visits with 2,000 points or more
HOLD_RATE = 0.1  # of redemptions: two-phase (held, then captured or released)
BUSY_MAX = 2.2
HOUR_CUM = tuple(itertools.accumulate(HOUR_WEIGHTS))  # random.choices' cum_weights: the same
LINE_COUNT_CUM = tuple(itertools.accumulate(LINE_COUNT_WEIGHTS))  # draws, without summing each time
CATEGORY_CUM = tuple(itertools.accumulate(c[5] for c in CATEGORIES))
# demo's gifts but the hand cream (kept out: the log stays the one of the recorded figures)
GIFTS = tuple(gift for gift in DEMO_GIFTS if gift[0] != "GIFT-HANDCREAM")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛")
ADMIN, FINANCE, SCHEDULER, SERVICE = "bench:admin", "bench:finance", "bench:scheduler", "cs:01"
_canonical = msgspec.json.Encoder(order="deterministic")


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What to generate."""

    stores: int = 1_000
    members: int = 120_000
    months: int = 18
    seed: int = 5
    end: datetime
    heavy_sales: int = 2_400
    rolling_months: int = 1
    batch: int = 2_000


class Counts(msgspec.Struct, kw_only=True):
    events: int = 0
    snapshots: int = 0
    members: int = 0
    sales: int = 0
    late_sales: int = 0
    lots: int = 0
    refunds: int = 0
    redemptions: int = 0
    holds: int = 0
    voids: int = 0
    conversions: int = 0
    payments: int = 0
    stored_value_refunds: int = 0
    adjustments: int = 0
    tier_changes: int = 0
    periods_closed: int = 0
    refused: int = 0


def fingerprint(*parts: object) -> str:
    """As `Ledger._fingerprint`: the request's identity, to tell a retry from another request."""
    return ids.fingerprint(b"|".join(_canonical.encode(p) for p in parts))


class _Copyable(Member, kw_only=True):
    """The member as a decision function gets it. `record_sale`, `redeem` & co. deep-copy the
    member to tell the POS its balance after the events; `Aggregate.__deepcopy__` walks every
    field of every lot in Python (O(lots) per sale, and lots are never dropped: most of a
    generator's time). This copy is as exact and O(1) per lot: the lists and the dict are
    copied (spend entries and holds are frozen), and a lot is copied when `evolve` asks for it
    to take points from it (`Member.lot`, the only way a lot changes; a new lot is a copy
    already). Only the copy is evolved; nothing of this class is stored."""

    def __deepcopy__(self, memo: dict[int, object]) -> _Copyable:
        return msgspec.structs.replace(
            self, lots=list(self.lots), spend=list(self.spend), holds=dict(self.holds)
        )

    def lot(self, lot_id: int) -> Lot:
        for n, lot in enumerate(self.lots):
            if lot.lot_id == lot_id:
                self.lots[n] = copied = msgspec.structs.replace(lot)
                return copied
        return super().lot(lot_id)  # raises, as Member.lot does


_MEMBER_FIELDS = Member.__struct_fields__


def decidable(state: Member | None) -> Member:
    """The member's state, for a decision function (the state itself is never changed)."""
    assert state is not None, "the member is enrolled"
    return _Copyable(**{name: getattr(state, name) for name in _MEMBER_FIELDS})


class _M:
    """A member being simulated: the ledger's state plus what drives their visits."""

    __slots__ = ("birthday", "card", "enrol_at", "heavy", "home", "legacy", "n", "rate", "state")

    def __init__(self, n: int, card: str, home: str, enrol_at: datetime, rate: float) -> None:
        self.n, self.card, self.home, self.enrol_at, self.rate = n, card, home, enrol_at, rate
        self.birthday: date | None = None
        self.legacy = False
        self.heavy = False
        self.state: Member | None = None


class Writer:
    """Inserts batches of stored events (and snapshots) with the application's recorder, in a
    process of its own: psycopg's adaptation of a batch (the composite array the recorder
    inserts) is Python work as heavy as generating it, so it runs on the other core while this
    process generates the next batch. One writer, batches in order: the log is deterministic."""

    def __init__(self, url: str, depth: int = 4) -> None:
        context = multiprocessing.get_context("spawn")
        self._batches: multiprocessing.Queue[Batch | None] = context.Queue(maxsize=depth)
        self._results: multiprocessing.Queue[tuple[float, str | None]] = context.Queue()
        self._process = context.Process(
            target=_write, args=(url, self._batches, self._results), name="biglog-writer"
        )
        self._process.start()
        self.busy_seconds = 0.0

    def put(self, events: list[StoredEvent], snapshots: list[StoredEvent]) -> None:
        while True:
            if not self._process.is_alive():
                self.close()
            with contextlib.suppress(queue.Full):
                self._batches.put((events, snapshots), timeout=0.5)
                return

    def close(self) -> None:
        if self._process.is_alive():
            self._batches.put(None)
        busy, error = self._results.get(timeout=3600)
        self._process.join()
        self.busy_seconds = busy
        if error is not None:
            raise RuntimeError(f"the writer failed: {error}")


Batch = tuple[list[StoredEvent], list[StoredEvent]]


def _write(
    url: str,
    batches: multiprocessing.Queue[Batch | None],
    results: multiprocessing.Queue[tuple[float, str | None]],
) -> None:
    """The writer process: insert each batch in one transaction, snapshots in another."""
    from ledger.application import Ledger  # noqa: PLC0415 - in the writer process

    busy, error = 0.0, None
    ledger = Ledger(Settings(database_url=url, master_key=bytes(32)))
    try:
        assert ledger.core.snapshots is not None
        while (item := batches.get()) is not None:
            if error is not None:
                continue  # drain after a failure, so the generator is not left blocked
            started = time.perf_counter()
            try:
                events, snapshots = item
                ledger.core.recorder.insert_events(events)
                if snapshots:
                    ledger.core.snapshots.recorder.insert_events(snapshots)
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
            busy += time.perf_counter() - started
    finally:
        ledger.close()
        results.put((busy, error))


def _poisson(rng: random.Random, mean: float) -> int:
    if mean < 30:
        limit, k, product = math.exp(-mean), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    return max(0, round(rng.gauss(mean, math.sqrt(mean))))


def _midnight(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def busy(day: date) -> float:
    """How busy a day is: flu season, weekday and member days, campaigns (≤ BUSY_MAX)."""
    f = MONTH_FACTOR.get(day.month, 1.0) * WEEKDAY_FACTOR.get(day.isoweekday(), 1.0)
    if day.day == 8:
        f *= 1.15
    if (day.month == 10 and day.day <= 7) or (day.month, day.day) == (11, 11):
        f *= 1.5
    return f


class Chain:
    """The generator: an agenda of timed actions carried out in business-time order."""

    def __init__(
        self, plan: Plan, sink: Callable[[list[DomainEvent], list[Snapshot]], None]
    ) -> None:
        self.plan, self.sink = plan, sink
        self.rng = random.Random(plan.seed)
        self.zone = ZoneInfo(TIMEZONE)
        self.end = plan.end.astimezone(self.zone)
        self.start = add_months(self.end, -plan.months, self.zone)
        self.counts = Counts()
        self.agenda: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self.order = itertools.count()
        self.serial = itertools.count(1)  # receipt, redemption, payment ... numbers
        self.book: rulebook.RuleBook | None = None
        self.stores = [f"S{n:04d}" for n in range(1, plan.stores + 1)]
        self.members: list[_M] = []
        self.id_secret = ids.keyed_hash(bytes(32), "key", "id-number").encode()
        self.catalogue = [self._products(*c[:5]) for c in CATEGORIES]
        self._pending: list[DomainEvent] = []
        self._snapshots: list[Snapshot] = []
        self._recorded = 0
        self.heads: dict[UUID, tuple[int, str]] = {}  # per aggregate: its last version, hash
        self.digests = settlement.MonthDigests()  # what closing a month records as its digest

    # -- plumbing ----------------------------------------------------------------------------

    def later(self, at: datetime, action: Callable[[datetime], None]) -> None:
        heapq.heappush(self.agenda, (at, next(self.order), action))

    def number(self, kind: str, store_id: str, at: datetime) -> str:
        day = f"{at.year % 100:02d}{at.month:02d}{at.day:02d}"
        return f"{store_id}-{kind}{day}-{next(self.serial):07d}"

    def emit(
        self, events: Iterable[DomainEvent], at: datetime, m: _M | None = None
    ) -> list[DomainEvent]:
        """Stamp the events as recorded just after `at`, evolve the member's state with theirs,
        queue them (and any snapshot) for the writer; returns them as stamped."""
        self._recorded += 1
        stamp = (at + timedelta(milliseconds=50 + self._recorded % 900)).astimezone(UTC)
        stamped_events = [msgspec.structs.replace(e, timestamp=stamp) for e in events]
        out = []
        # Sealed as the ledger seals what it saves, so `ledger verify` finds every chain whole.
        for stamped in hashchain.chained(stamped_events, self.heads):
            out.append(stamped)
            self.digests.add(stamped)
            self._pending.append(stamped)
            if isinstance(stamped, PointsAccrued | PointsAdjusted) and stamped.lot is not None:
                self.counts.lots += 1
            if isinstance(stamped, MemberEvent):
                assert m is not None, "member events are emitted with their member"
                state = evolve_member(m.state, stamped)
                state.version = stamped.originator_version
                state.modified_on = stamp
                state.chain = stamped.chain
                m.state = state
                if state.version % SNAPSHOT_INTERVAL == 0:
                    snapshot = Snapshot.take(state)
                    self._snapshots.append(msgspec.structs.replace(snapshot, timestamp=stamp))
        if len(self._pending) >= self.plan.batch:
            self.flush()
        return out

    def flush(self) -> None:
        if self._pending:
            self.counts.events += len(self._pending)
            self.counts.snapshots += len(self._snapshots)
            self.sink(self._pending, self._snapshots)
            self._pending, self._snapshots = [], []

    def version_at(self, at: datetime) -> RuleVersion:
        version = rulebook.in_force(self.book, at)
        assert version is not None, "a rule set is in force over the whole period"
        return version

    def clock(self, day: datetime) -> datetime:
        hour = self.rng.choices(OPENING_HOURS, cum_weights=HOUR_CUM)[0]
        return day + timedelta(hours=hour, seconds=self.rng.randrange(3600))

    def _products(
        self, category: str, prefix: str, count: int, low: int, high: int
    ) -> tuple[str, list[tuple[str, int]], list[float]]:
        rng = self.rng
        skus = [
            (f"{prefix}-{n:04d}", (low + int((high - low) * rng.random() ** 2)) // 10 * 10)
            for n in range(1, count + 1)
        ]
        return category, skus, list(itertools.accumulate(1 / r for r in range(1, count + 1)))

    # -- set-up ------------------------------------------------------------------------------

    def publish_rules(self) -> None:
        window_days = (self.end - self.start).days
        plan = DemoPlan(start=self.start.date(), days=window_days, timezone=TIMEZONE)
        documents = rule_documents(plan)
        for document in documents:
            document["expiry"] = {"rolling_months": self.plan.rolling_months}
        first, *rest = (msgspec.convert(d, RuleSet) for d in documents)
        self._publish(first, self.start - timedelta(days=800))
        for later in rest:  # announced two weeks before it takes effect
            self.later(later.effective_from - timedelta(days=14), partial(self._published, later))

    def _publish(self, rules: RuleSet, at: datetime) -> None:
        (event,) = self.emit([rulebook.publish(self.book, rules, ADMIN)], at)
        self.book = rulebook.evolve(self.book, event)

    def _published(self, rules: RuleSet, at: datetime) -> None:
        self._publish(rules, at)

    def open_stores(self) -> list[float]:
        rng, n = self.rng, len(self.stores)
        franchise = set(rng.sample(range(n), round(n * FRANCHISE_SHARE)))
        owners = max(1, round(len(franchise) / 1.5))
        at = self.start - timedelta(days=799)
        for i, store_id in enumerate(self.stores):
            name = f"康宁大药房{i + 1}号店"
            if i in franchise:
                owner = f"F{rng.randrange(owners) + 1:04d}"
                cmd = RegisterStore(name=f"{name}（加盟）", kind="franchise", franchisee=owner)
            else:
                cmd = RegisterStore(name=f"{name}（直营）", kind="direct")
            event = store.configure(None, store_id, cmd, ADMIN)
            assert event is not None
            self.emit([event], at + timedelta(seconds=i))
        return [rng.uniform(0.5, 2.0) for _ in self.stores]

    def recruit(self, sizes: list[float]) -> None:
        """Members in card order: existing ones enrolled over the two years before the window,
        new ones over the window (busy days drawing more); each enrolment goes on the agenda."""
        plan, rng = self.plan, self.rng
        window_days = (self.end - self.start).days
        existing = round(plan.members * EXISTING_SHARE)
        offsets = sorted(rng.randrange(-730, 0) for _ in range(existing))
        days = range(window_days)
        weights = [busy((self.start + timedelta(days=d)).date()) for d in days]
        offsets += sorted(rng.choices(days, weights, k=plan.members - existing))
        store_cum = list(itertools.accumulate(sizes))
        for n, offset in enumerate(offsets, start=1):
            at = self.clock(self.start + timedelta(days=offset))
            home = rng.choices(self.stores, cum_weights=store_cum)[0]
            rate = min(150.0, 3.0 * rng.paretovariate(1.6))  # visits a year
            m = _M(n, f"{n:012d}", home, at, rate)
            m.legacy = offset < 0 and rng.random() < LEGACY_SHARE
            if rng.random() < BIRTHDAY_SHARE:
                m.birthday = date(rng.randint(1945, 2005), rng.randint(1, 12), rng.randint(1, 28))
            self.members.append(m)
            self.later(at, partial(self.enrol, m))
        heavy_rate = plan.heavy_sales / window_days * 365
        heavy = _M(0, HEAVY_CARD, self.stores[0], self.start - timedelta(days=400), heavy_rate)
        heavy.heavy, heavy.birthday = True, date(1980, 5, 17)
        self.members.append(heavy)
        self.later(heavy.enrol_at, partial(self.enrol, heavy))

    def calendar(self) -> None:
        """Month closes (the 5th, for the month before) and tier reviews (1 January)."""
        month = add_months(self.start.replace(day=1, hour=0, minute=0, second=0), 1, self.zone)
        while month < self.end:
            close_at = month.replace(day=5, hour=10)
            if close_at < self.end:
                self.later(close_at, partial(self.close, add_months(month, -1, self.zone)))
            if month.month == 1:
                self.later(month + timedelta(minutes=5), partial(self.review, month))
            month = add_months(month, 1, self.zone)

    # -- what members do ---------------------------------------------------------------------

    def enrol(self, m: _M, at: datetime) -> None:
        rng = self.rng
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
        id_number = str(310_000_000_000_000_000 + m.n) if rng.random() < ID_NUMBER_SHARE else None
        cmd = EnrolMember(
            member_id=m.card,
            store_id=m.home,
            name=name,
            phone=f"13{m.n:09d}",
            id_number=id_number,
            birthday=m.birthday,
            occurred_at=at,
        )
        version = rulebook.in_force(self.book, at)
        tiers = version.rules.tiers if version else None
        events = enrolment.enrol(
            cmd,
            occurred_at=at,
            tier=tiers.levels[0].code if tiers else None,
            fingerprint=ids.keyed_hash(self.id_secret, "enrol", _canonical.encode(cmd).decode()),
            operator=f"pos:{m.home}",
        )
        self.emit(events, at, m)
        self.counts.members += 1
        if m.legacy:
            points = min(20_000, int(100 * rng.paretovariate(1.1)))
            reason = "opening balance from the legacy POS (旧系统积分迁移)"
            self.adjust(m, at + timedelta(minutes=1), points, reason, f"MIG-{m.card}")
        first = max(at, self.start) if at < self.start else at + timedelta(minutes=2)
        if at < self.start:
            self.next_visit(m, first)
        else:
            self.later(first, partial(self.visit, m))

    def next_visit(self, m: _M, after: datetime) -> None:
        """The member's next visit: a Poisson process at their rate, thinned by how busy the
        day is; a visit on the same day comes a few hours later, in opening hours."""
        rng = self.rng
        while True:
            gap = rng.expovariate(m.rate * BUSY_MAX / 365.0)
            day = _midnight(after) + timedelta(days=int(gap))
            at = self.clock(day)
            if at <= after:
                at = after + timedelta(minutes=rng.randint(30, 300))
            if at >= self.end:
                return
            if rng.random() * BUSY_MAX < busy(at.date()):
                self.later(at, partial(self.visit, m))
                return
            after = at

    def basket(self, at: datetime, heavy: bool) -> list[SaleLine]:
        rng = self.rng
        count = rng.choices(LINE_COUNTS, cum_weights=LINE_COUNT_CUM)[0] + (3 if heavy else 0)
        lines: list[SaleLine] = []
        flu = at.month in (12, 1, 2)
        while len(lines) < count:
            category, skus, popularity = rng.choices(self.catalogue, cum_weights=CATEGORY_CUM)[0]
            sku, price = skus[bisect.bisect_left(popularity, rng.random() * popularity[-1])]
            if category == "otc" and flu and rng.random() < 0.25:
                sku, price = "OTC-FLU", 3_280
            elif category == "supplement" and rng.random() < 0.1:
                sku, price = "BRAND-X", 29_800
            quantity = rng.choices((1, 2, 3), cum_weights=(80, 95, 100))[0] * (5 if heavy else 1)
            lines.append(
                SaleLine(
                    sku=sku,
                    category=category,
                    amount_fen=price * quantity,
                    quantity=quantity,
                    no_points=rng.random() < 0.04,
                )
            )
            if category == "tcm" and len(lines) < count and rng.random() < 0.3:
                fee = rng.randint(10, 40) * 100
                lines.append(
                    SaleLine(
                        sku="SVC-DECOCT",
                        category="service",
                        amount_fen=fee,
                        no_cumulative_spend=True,
                    )
                )
        return lines

    def visit(self, m: _M, at: datetime) -> None:
        rng = self.rng
        self.next_visit(m, at)
        store_id = m.home
        if rng.random() < OTHER_STORE_RATE:
            store_id = rng.choice(self.stores)
        lines = self.basket(at, m.heavy)
        if not m.heavy and rng.random() < LATE_UPLOAD_RATE:  # an offline till uploads later
            recorded = at + timedelta(days=rng.randint(1, 6), minutes=rng.randint(0, 600))
            if recorded < self.end:
                self.later(recorded, partial(self.late_sale, m, store_id, at, lines))
                return
        sale = self.sale(m, store_id, at, lines, at)
        total_fen = sum(line.amount_fen for line in lines)
        payment = None
        assert m.state is not None
        if m.state.stored_value_fen >= 100 and rng.random() < 0.6:
            amount = min(m.state.stored_value_fen, total_fen)
            payment = self.pay(m, store_id, amount, at + timedelta(seconds=10))
        draw = rng.random()  # the balance is asked only when a redemption may follow
        if draw < (0.25 if m.heavy else REDEEM_RATE) and (
            m.heavy or draw < REDEEM_RATE / 3 or available(m.state, at, at) >= 500
        ):
            self.redeem(m, store_id, total_fen, at + timedelta(seconds=20))
        if (
            rng.random() < (0.1 if m.heavy else CONVERT_RATE)
            and available(m.state, at, at) >= 2_000
        ):
            self.convert(m, store_id, at + timedelta(seconds=40))
        if rng.random() < REFUND_RATE:
            soon = rng.random() < 0.4
            when = (
                at + timedelta(minutes=rng.randint(10, 360))
                if soon
                else self.clock(_midnight(at) + timedelta(days=rng.randint(1, 14)))
            )
            if when < self.end:
                left = [line.amount_fen for line in lines]
                self.later(when, partial(self.refund, m, sale, left, payment))
        if rng.random() < TICKET_RATE:
            self.later(
                self.clock(_midnight(at) + timedelta(days=rng.randint(1, 3))),
                partial(self.ticket, m, sale.receipt_no),
            )

    def sale(
        self, m: _M, store_id: str, at: datetime, lines: list[SaleLine], now: datetime
    ) -> Sale:
        assert m.state is not None
        cmd = PostSale(
            store_id=store_id,
            receipt_no=self.number("", store_id, at),
            member_id=m.card,
            occurred_at=at,
            lines=lines,
        )
        events, _ = record_sale(
            cmd,
            decidable(m.state),
            self.version_at(at),
            fingerprint=fingerprint(cmd),
            operator=f"pos:{store_id}",
            now=now,
            birthday=m.birthday.strftime("%m-%d") if m.birthday else None,
        )
        stamped = self.emit(events, now, m)
        self.counts.sales += 1
        self.counts.tier_changes += len(events) - 2
        record = next(e for e in stamped if isinstance(e, SaleRecorded))
        return evolve_sale(None, record)

    def late_sale(
        self, m: _M, store_id: str, at: datetime, lines: list[SaleLine], now: datetime
    ) -> None:
        self.sale(m, store_id, at, lines, now)
        self.counts.late_sales += 1

    def pay(self, m: _M, store_id: str, amount_fen: int, at: datetime) -> Operation:
        assert m.state is not None
        payment_no = self.number("P", store_id, at)
        cmd = PayWithStoredValue(
            store_id=store_id, payment_no=payment_no, occurred_at=at, amount_fen=amount_fen
        )
        events, receipt = pay(cmd, decidable(m.state), operator=f"pos:{store_id}", now=at)
        record = self._record(
            ids.payment_id(store_id, payment_no), "payment", payment_no, m, cmd=cmd, receipt=receipt
        )
        record = msgspec.structs.replace(record, amount_fen=receipt.amount_fen)
        stamped = self.emit([*events, record], at, m)
        self.counts.payments += 1
        return evolve_operation(None, stamped[-1])

    @staticmethod
    def _record(
        record_id: Any, kind: str, number: str, m: _M, *, cmd: Any, receipt: msgspec.Struct
    ) -> OperationRecorded:
        return OperationRecorded(
            originator_id=record_id,
            originator_version=1,
            kind=kind,
            number=number,
            member_id=m.card,
            fingerprint=fingerprint(m.card, cmd),
            amount_fen=0,
            receipt=encode(receipt),
        )

    def redemption(self, m: _M, store_id: str, total_fen: int, at: datetime) -> Redeem | None:
        assert m.state is not None
        rng, card = self.rng, m.card
        points = available(m.state, at, at)
        kind = rng.choices(("cash_offset", "voucher", "gift", "exchange"), (45, 30, 15, 10))[0]
        no = self.number("D", store_id, at)
        hold = rng.random() < HOLD_RATE
        common: dict[str, Any] = {
            "store_id": store_id,
            "redemption_no": no,
            "member_id": card,
            "occurred_at": at,
            "hold": hold,
        }
        if kind == "cash_offset" and min(points, total_fen // 2) >= 100:
            offset = 100 * rng.randint(1, min(points, total_fen // 2) // 100)
            return CashOffset(points=offset, receipt_amount_fen=total_fen, **common)
        steps = [s for s in VOUCHER_STEPS if s <= points]
        if kind == "voucher" and steps:
            return Voucher(points=steps[-1] if rng.random() < 0.5 else rng.choice(steps), **common)
        gifts = [g for g in GIFTS if g[1] <= points]
        if kind == "gift" and gifts:
            return Gift(sku=rng.choice(gifts)[0], **common)  # the catalogue fixes its cost
        offers = [e for e in EXCHANGES if e[1] <= points]
        if kind == "exchange" and offers:
            return Exchange(sku=rng.choice(offers)[0], **common)
        return None

    def redeem(self, m: _M, store_id: str, total_fen: int, at: datetime) -> None:
        assert m.state is not None
        cmd = self.redemption(m, store_id, total_fen, at)
        if cmd is None:
            return
        operator = f"pos:{store_id}"
        try:
            events, _ = redemption.redeem(
                cmd,
                decidable(m.state),
                self.version_at(at),
                fingerprint=fingerprint(cmd),
                operator=operator,
                now=at,
            )
        except LedgerError:
            self.counts.refused += 1
            return
        record = evolve_redemption(None, self.emit(events, at, m)[-1])
        if cmd.hold:
            self.counts.holds += 1
            then = at + timedelta(minutes=self.rng.randint(1, 5))
            if self.rng.random() < 0.05:
                self.later(then, partial(self.void, m, record))
            else:
                self.later(then, partial(self.capture, m, record))
            return
        self.counts.redemptions += 1
        if self.rng.random() < VOID_RATE:
            self.void(m, record, at + timedelta(minutes=2))

    def capture(self, m: _M, record: Redemption, at: datetime) -> None:
        assert m.state is not None
        events, _ = redemption.capture(
            record, decidable(m.state), operator=f"pos:{record.store_id}", now=at
        )
        self.emit(events, at, m)
        self.counts.redemptions += 1

    def void(self, m: _M, record: Redemption, at: datetime) -> None:
        assert m.state is not None
        events, _ = redemption.void(
            record, decidable(m.state), operator=f"pos:{record.store_id}", now=at
        )
        self.emit(events, at, m)
        self.counts.voids += 1

    def convert(self, m: _M, store_id: str, at: datetime) -> None:
        assert m.state is not None
        points = available(m.state, at, at) // 200 * 100
        if points <= 0:
            return
        no = self.number("C", store_id, at)
        cmd = ConvertPoints(store_id=store_id, conversion_no=no, occurred_at=at, points=points)
        try:
            events, receipt = convert(
                cmd, decidable(m.state), self.version_at(at), operator=f"pos:{store_id}", now=at
            )
        except LedgerError:
            self.counts.refused += 1
            return
        record = self._record(
            ids.conversion_id(store_id, no), "conversion", no, m, cmd=cmd, receipt=receipt
        )
        self.emit([*events, record], at, m)
        self.counts.conversions += 1

    def refund(
        self, m: _M, sale: Sale, left: list[int], payment: Operation | None, at: datetime
    ) -> None:
        """All that is left, one whole line, or part of a line (whose rest may follow)."""
        assert m.state is not None
        rng = self.rng
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
        cmd = RefundSale(
            refund_no=f"{sale.receipt_no}-F{len(sale.refunds) + 1}", occurred_at=at, lines=lines
        )
        events, _ = refund_sale(
            sale,
            decidable(m.state),
            cmd,
            fingerprint=fingerprint(sale.store_id, sale.receipt_no, cmd),
            operator=f"pos:{sale.store_id}",
            now=at,
        )
        refunded = self.emit(events, at, m)[-1]
        self.counts.refunds += 1
        sale = evolve_sale(sale, refunded)
        sale.version = refunded.originator_version
        for line in lines:
            left[line.line_no - 1] -= line.amount_fen
        if kind == "full" and payment is not None:
            self.refund_stored_value(m, payment, at + timedelta(seconds=30))
        elif kind == "part" and rng.random() < 0.25:
            when = self.clock(_midnight(at) + timedelta(days=rng.randint(1, 7)))
            if when < self.end:
                self.later(when, partial(self.refund, m, sale, left, payment))

    def refund_stored_value(self, m: _M, payment: Operation, at: datetime) -> None:
        assert m.state is not None
        refund_no = f"{payment.number}-F1"
        cmd = RefundStoredValue(
            store_id=self._store_of(payment.number),
            refund_no=refund_no,
            payment_no=payment.number,
            occurred_at=at,
            amount_fen=payment.amount_fen,
        )
        events, receipt = refund_payment(
            payment, cmd, decidable(m.state), operator=f"pos:{cmd.store_id}", now=at
        )
        follow_up = FollowUpRecorded(
            originator_id=payment.id,
            originator_version=payment.version + 1,
            number=refund_no,
            fingerprint=fingerprint(m.card, cmd),
            amount_fen=cmd.amount_fen,
            receipt=encode(receipt),
        )
        self.emit([*events, follow_up], at, m)
        self.counts.stored_value_refunds += 1

    @staticmethod
    def _store_of(number: str) -> str:
        return number.split("-", 1)[0]

    def ticket(self, m: _M, receipt_no: str, at: datetime) -> None:
        assert m.state is not None
        rng = self.rng
        ticket = f"CS-{next(self.serial):07d}"
        points_now = available(m.state, at, at)
        if rng.random() < 0.3 and points_now >= 10:
            points = -min(points_now, rng.randint(10, 200))
            reason = f"duplicate points on receipt {receipt_no} corrected"
        elif rng.random() < 0.5:
            points, reason = rng.randint(20, 300), f"points missed on receipt {receipt_no}"
        else:
            points, reason = rng.randint(50, 200), "goodwill: prescription out of stock"
        self.adjust(m, at, points, reason, ticket)

    def adjust(self, m: _M, at: datetime, points: int, reason: str, ticket: str) -> None:
        assert m.state is not None
        cmd = AdjustPoints(
            adjustment_no=ticket, points=points, reason=reason, ticket=ticket, occurred_at=at
        )
        try:
            events, receipt = adjust(
                cmd,
                decidable(m.state),
                rulebook.in_force(self.book, at),
                occurred_at=at,
                operator=SERVICE,
                now=at,
            )
        except LedgerError:
            self.counts.refused += 1
            return
        record = self._record(
            ids.adjustment_id(ticket), "adjustment", ticket, m, cmd=cmd, receipt=receipt
        )
        self.emit([*events, record], at, m)
        self.counts.adjustments += 1

    # -- the calendar ------------------------------------------------------------------------

    def close(self, month: datetime, at: datetime) -> None:
        event, _ = settlement.close(None, month_of(month, self.zone), self.zone, FINANCE, at)
        if event is not None:
            [closed] = self.emit([event], at)
            state = settlement.evolve(None, closed)
            digested = settlement.record_digest(state, self.digests.closed[state.period])
            if digested is not None:
                self.emit([digested], at)
            self.counts.periods_closed += 1

    def review(self, as_of: datetime, at: datetime) -> None:
        version = self.version_at(as_of)
        for m in self.members:
            if m.state is not None:
                change, _ = tierreview.review(m.state, version, as_of, SCHEDULER)
                if change is not None:
                    self.emit([change], at, m)
                    self.counts.tier_changes += 1

    def run(self, progress: Callable[[datetime], None] | None = None) -> None:
        self.publish_rules()
        self.recruit(self.open_stores())
        self.calendar()
        last_day = None
        while self.agenda:
            at, _, action = heapq.heappop(self.agenda)
            action(at)
            if progress is not None and at.date() != last_day:
                last_day = at.date()
                progress(at)
        self.flush()

    # -- what the figures need --------------------------------------------------------------

    def lots_due(self, as_of: datetime) -> tuple[int, int]:
        """Lots with points left whose expiry is not after `as_of`, and their members."""
        lots = members = 0
        for m in self.members:
            if m.state is None:
                continue
            due = sum(
                1
                for lot in m.state.lots
                if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= as_of
            )
            lots += due
            members += due > 0
        return lots, members

    def heavy_events(self) -> int:
        heavy = next(m for m in self.members if m.heavy)
        return heavy.state.version if heavy.state else 0


# -- the store ----------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_end() -> datetime:
    """Today 00:00 chain time: runs on the same day write the same log."""
    now = datetime.now(ZoneInfo(TIMEZONE))
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def generate(url: str, plan: Plan, quiet: bool = False, dry_run: bool = False) -> dict[str, Any]:
    """Generate the log of `plan` into the empty store at `url` (`dry_run`: generate and
    encode, write nothing); returns the figure."""
    from ledger.application import Ledger  # noqa: PLC0415 - after argument parsing

    ledger = None if dry_run else Ledger(Settings(database_url=url, master_key=bytes(32)))
    writer = None
    try:
        if ledger is not None and ledger.core.recorder.max_notification_id():
            raise SystemExit(f"{url} is not empty: pass --recreate to start afresh")
        mapper = ledger.core.mapper if ledger else MsgspecMapper(transcoder=NullTranscoder())
        writer = None if dry_run else Writer(url)
        encode_seconds = 0.0

        def sink(events: list[DomainEvent], snapshots: list[Snapshot]) -> None:
            nonlocal encode_seconds
            started = time.perf_counter()
            stored = [mapper.to_stored_event(e) for e in events]
            stored_snapshots = [mapper.to_stored_event(s) for s in snapshots]
            encode_seconds += time.perf_counter() - started
            if writer is not None:
                writer.put(stored, stored_snapshots)

        chain = Chain(plan, sink)
        last = [time.perf_counter()]

        def progress(at: datetime) -> None:
            if not quiet and time.perf_counter() - last[0] > 15:
                last[0] = time.perf_counter()
                sys.stderr.write(
                    f"biglog: business day {at.date()}, {chain.counts.events:,} events, "
                    f"{peak_rss_mb():,.0f} MB\n"
                )

        started = time.perf_counter()
        chain.run(progress)
        generated = time.perf_counter() - started
        if writer is not None:
            writer.close()
        seconds = time.perf_counter() - started
        head = ledger.core.recorder.max_notification_id() or 0 if ledger else chain.counts.events
    finally:
        if ledger is not None:
            ledger.close()
    analyze_seconds = None if dry_run else analyze(url)
    counts = chain.counts
    due_end, members_due_end = chain.lots_due(chain.end)
    past = add_months(chain.end, -6, chain.zone)
    due_past, _ = chain.lots_due(past)
    last_month = month_of(add_months(chain.end, -1, chain.zone), chain.zone)
    assert head == counts.events, f"the log holds {head} events, {counts.events} were generated"
    return {
        "bench": "biglog",
        "figure": "biglog-generation",
        "value": round(counts.events / seconds),
        "unit": "events/s",
        "store": store_kind(url),
        "events": counts.events,
        "seconds": round(seconds, 1),
        "events_per_s": round(counts.events / seconds),
        "generation_seconds": round(generated, 1),
        "encode_seconds": round(encode_seconds, 1),
        "insert_seconds": round(writer.busy_seconds, 1) if writer else None,
        "dry_run": dry_run,
        "analyze_seconds": analyze_seconds,
        "peak_rss_mb": round(peak_rss_mb()),
        "stores": plan.stores,
        "members": counts.members,
        "lots": counts.lots,
        "lots_due_at_end": due_end,
        "members_with_due_lots_at_end": members_due_end,
        "lots_due_6_months_before_end": due_past,
        "heavy_member": HEAVY_CARD,
        "heavy_member_events": chain.heavy_events(),
        "settlement_period": last_month,
        "window": [chain.start.isoformat(), chain.end.isoformat()],
        "seed": plan.seed,
        "load_average": load_average(),
        "counts": msgspec.to_builtins(counts),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = parser_for("bench.biglog", __doc__)
    add_store_arguments(parser, "where to write the log")
    parser.add_argument("--recreate", action="store_true", help="drop the database (files) first")
    parser.add_argument(
        "--dry-run", action="store_true", help="generate and encode only, write nothing (sizing)"
    )
    parser.add_argument("--stores", type=int, default=None, help="default 1,000 (--small: 50)")
    parser.add_argument(
        "--members", type=int, default=None, help="default 120,000 (--small: 2,000)"
    )
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--end", type=datetime.fromisoformat, default=None, help="default today 00:00 +08:00"
    )
    parser.add_argument(
        "--heavy-sales",
        type=int,
        default=None,
        help="default 2,400 (--small: 900: a member of ~2,000 events, as issue 18's cold as-of target names)",
    )
    parser.add_argument(
        "--rolling-months", type=int, default=1, help="the rule set's rolling expiry"
    )
    parser.add_argument("--batch", type=int, default=2_000, help="events per transaction")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse(argv)
    end = args.end or default_end()
    if end.tzinfo is None:
        raise SystemExit("--end needs an offset, e.g. 2026-11-23T00:00:00+08:00")
    plan = Plan(
        stores=args.stores or (50 if args.small else 1_000),
        members=args.members or (2_000 if args.small else 120_000),
        months=args.months,
        seed=args.seed,
        end=end,
        heavy_sales=args.heavy_sales or (900 if args.small else 2_400),
        rolling_months=args.rolling_months,
        batch=args.batch,
    )
    url = database_url(args.database_url, args.small)
    if args.recreate and not args.dry_run:
        recreate(url)
    figure = generate(url, plan, quiet=args.quiet, dry_run=args.dry_run)
    emit([figure], command=command_of("bench.biglog"))
    print(
        f"biglog: {figure['events']:,} events in {figure['seconds']} s "
        f"({figure['events_per_s']:,} events/s) into {figure['store']}; {figure['lots']:,} lots, "
        f"{figure['lots_due_at_end']:,} due at the end; heavy member {HEAVY_CARD} has "
        f"{figure['heavy_member_events']:,} events; peak RSS {figure['peak_rss_mb']} MB"
    )
    return figure


if __name__ == "__main__":
    main()
