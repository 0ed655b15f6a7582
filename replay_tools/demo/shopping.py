"""What a member does at the counter: a basket bought, and what may go with it (a stored-value
payment, a redemption, perhaps voided, a conversion to stored value), and later a refund
(the stored value going back too) or a customer-service adjustment."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from functools import partial

from ledger.domain.commands import (
    AdjustPoints,
    CashOffset,
    ConvertPoints,
    Exchange,
    Gift,
    PayWithStoredValue,
    PostSale,
    Redeem,
    RefundLine,
    RefundSale,
    RefundStoredValue,
    SaleLine,
    Voucher,
)
from ledger.domain.model import now_utc
from ledger.domain.sale import SaleReceipt
from replay_tools.demo.agenda import Agenda, DemoMember
from replay_tools.demo.plan import (
    CATEGORY_WEIGHTS,
    EXCHANGES,
    FLU_MONTHS,
    GIFTS,
    INSURED_RATE,
    LINE_COUNT_WEIGHTS,
    LINE_COUNTS,
    OTHER_STORE_RATE,
    REFUND_RATE,
    REFUSALS,
    SERVICE,
    TICKET_RATE,
    VOID_AFTER,
    VOID_RATE,
    VOUCHER_STEPS,
)


class Sold:
    """A sale bound for a refund: what is left to refund per line, and its stored-value payment."""

    __slots__ = ("left_fen", "member", "payment", "receipt_no", "refunds", "store")

    def __init__(
        self, store: str, receipt_no: str, member: DemoMember, lines: list[SaleLine]
    ) -> None:
        self.store, self.receipt_no, self.member = store, receipt_no, member
        self.left_fen = [line.amount_fen for line in lines]
        self.refunds = 0
        self.payment: tuple[str, int] | None = None


class Shopping(Agenda):
    """The members' purchases and everything that follows from them."""

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
                SaleLine(
                    sku=f"DTP-{rng.randint(1, 12):03d}",
                    category="rx",
                    amount_fen=fen,
                    insured_fen=self.insured(fen),
                )
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
            fen = price * quantity
            lines.append(
                SaleLine(
                    sku=sku,
                    category=category,
                    amount_fen=fen,
                    quantity=quantity,
                    no_points=special,
                    insured_fen=self.insured(fen) if category == "rx" else 0,
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

    def insured(self, fen: int) -> int:
        """The part of a prescription line medical insurance pays (医保), if it pays."""
        if self.rng.random() >= INSURED_RATE:
            return 0
        self.out.insured_lines += 1
        return fen * self.rng.choice((50, 70, 80, 100)) // 100

    def visit(self, m: DemoMember, dtp: bool, at: datetime, *, away: bool = True) -> None:
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
        receipt, _ = self.ledger.sales.post(cmd, f"pos:{store}", now_utc())
        assert isinstance(receipt, SaleReceipt)  # noqa: S101 - a member's sale: narrows the type
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
            sold = Sold(store, receipt_no, m, lines)
            sold.payment = payment
            soon = rng.random() < 0.4
            when = (
                at + timedelta(minutes=rng.randint(10, 360)) if soon else self.some_day(at, 1, 14)
            )
            self.later(when, partial(self.refund, sold))
        if rng.random() < TICKET_RATE:
            self.later(self.some_day(at, 1, 3), partial(self.ticket, m, receipt_no))

    def pay(
        self, m: DemoMember, store: str, amount_fen: int, at: datetime
    ) -> tuple[str, int] | None:
        payment_no = self.number("P", store)
        cmd = PayWithStoredValue(
            store_id=store, payment_no=payment_no, occurred_at=at, amount_fen=amount_fen
        )
        try:
            receipt, _ = self.ledger.stored_value.pay(m.card, cmd, f"pos:{store}", now_utc())
        except REFUSALS:
            self.out.refused += 1
            return None
        self.out.payments += 1
        m.stored_fen = receipt.stored_value_fen
        return payment_no, amount_fen

    def redemption(self, m: DemoMember, store: str, total_fen: int, at: datetime) -> Redeem | None:
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
        if kind == "gift" and gifts:  # the catalogue fixes its points and cost (SPEC 2.3)
            sku = rng.choice(gifts)[0]
            return Gift(store_id=store, redemption_no=no, member_id=card, occurred_at=at, sku=sku)
        offers = [e for e in EXCHANGES if e[1] <= points]
        if kind == "exchange" and offers:
            sku = rng.choice(offers)[0]
            return Exchange(
                store_id=store, redemption_no=no, member_id=card, occurred_at=at, sku=sku
            )
        return None

    def redeem(self, m: DemoMember, store: str, total_fen: int, at: datetime) -> None:
        cmd = self.redemption(m, store, total_fen, at)
        if cmd is None:
            return
        try:
            receipt, _ = self.ledger.redemptions.redeem(cmd, f"pos:{store}", now_utc())
        except REFUSALS:
            self.out.refused += 1
            return
        self.out.redemptions += 1
        m.points = receipt.balance.points
        if self.rng.random() < VOID_RATE:  # the cashier takes it back a few minutes later
            # A void is stamped with the `now` it is given: the business time, so that it
            # falls in the demo's period (and its month's settlement), not on the day it ran.
            voided, _ = self.ledger.redemptions.void(
                store, cmd.redemption_no, f"pos:{store}", at + VOID_AFTER
            )
            self.out.voids += 1
            m.points = voided.balance.points

    def convert(self, m: DemoMember, store: str, at: datetime) -> None:
        points = m.points // 200 * 100  # about half, in hundreds
        cmd = ConvertPoints(
            store_id=store, conversion_no=self.number("C", store), occurred_at=at, points=points
        )
        try:
            receipt, _ = self.ledger.stored_value.convert(m.card, cmd, f"pos:{store}", now_utc())
        except REFUSALS:
            self.out.refused += 1
            return
        self.out.conversions += 1
        m.points, m.stored_fen = receipt.balance.points, receipt.stored_value_fen

    def refund(self, sold: Sold, at: datetime) -> None:
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
        receipt, _ = self.ledger.sales.refund(sold.store, sold.receipt_no, cmd, operator, now_utc())
        self.out.refunds += 1
        if receipt.balance is not None:  # always, for a member's sale
            sold.member.points = receipt.balance.points
        for line in lines:
            left[line.line_no - 1] -= line.amount_fen
        if kind == "full" and sold.payment is not None:  # the stored value goes back too
            self.refund_stored_value(sold, sold.payment, at + timedelta(seconds=30))
        elif kind == "part" and rng.random() < 0.25:  # the rest comes back a few days later
            self.later(self.some_day(at, 1, 7), partial(self.refund, sold))

    def refund_stored_value(self, sold: Sold, payment: tuple[str, int], at: datetime) -> None:
        payment_no, fen = payment
        cmd = RefundStoredValue(
            store_id=sold.store,
            refund_no=f"{payment_no}-F1",
            payment_no=payment_no,
            occurred_at=at,
            amount_fen=fen,
        )
        operator = f"pos:{sold.store}"
        receipt, _ = self.ledger.stored_value.refund_payment(
            sold.member.card, cmd, operator, now_utc()
        )
        self.out.stored_value_refunds += 1
        sold.member.stored_fen = receipt.stored_value_fen

    def ticket(self, m: DemoMember, receipt_no: str, at: datetime) -> None:
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

    def adjust(self, m: DemoMember, at: datetime, points: int, reason: str, ticket: str) -> None:
        cmd = AdjustPoints(
            adjustment_no=ticket, points=points, reason=reason, ticket=ticket, occurred_at=at
        )
        try:  # posted the day it happens (an adjustment may be backdated 31 days at most)
            receipt, _ = self.ledger.stored_value.adjust(m.card, cmd, SERVICE, at)
        except REFUSALS:
            self.out.refused += 1
            return
        self.out.adjustments += 1
        m.points = receipt.balance.points
