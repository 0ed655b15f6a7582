"""Redemptions (SPEC 2.3): cash offset, voucher, gift, exchange; holds, captures and voids.

A redemption spends points FIFO by expiry (never from a lot due at its business time) and
records which lots gave how much and what it cost the chain (`ledger.domain.pricing`). With `hold` it only reserves the points (`PointsHeld`): no other redemption can
spend them until it is captured or voided, or until `hold_minutes` pass and the reservation
lapses by itself (a lapsed hold no longer counts; nothing needs to run). A void puts the points
back into the very lots they came from, with their own expiry.

The redemption aggregate is the idempotency record, keyed by (store_id, redemption_no); the
member's events are the points themselves. Both are saved in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import msgspec

from ledger.domain import ids
from ledger.domain.commands import Redeem
from ledger.domain.errors import (
    HoldLapsed,
    InsufficientPoints,
    RedemptionVoidedAlready,
    invariant,
)
from ledger.domain.member import (
    Balance,
    Member,
    PointsHeld,
    PointsRedeemed,
    RedemptionVoided,
    after,
    available,
    balance,
)
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.domain.pricing import Priced, StoredRedeem, price, stored_form
from ledger.policies.lots import LotTake, spendable, take_fifo
from ledger.policies.ruleset import DEFAULT_HOLD_MINUTES, RuleVersion

Status = Literal["held", "redeemed", "voided"]


class RedemptionReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the POS is told about a redemption (and its capture); a retry gets this back."""

    redemption_id: UUID
    store_id: str
    redemption_no: str
    member_id: str
    kind: str
    status: Status
    points_redeemed: int  # 0 while only held
    points_held: int
    hold_expires_at: datetime | None
    value_fen: int
    cost_fen: int
    takes: list[LotTake]
    balance: Balance
    rule_version: int
    sku: str | None = None  # a catalogue item's
    cash_price_fen: int | None = None  # an exchange's cash part, which the POS collects


class VoidReceipt(msgspec.Struct, frozen=True, kw_only=True):
    redemption_id: UUID
    store_id: str
    redemption_no: str
    member_id: str
    points_restored: int
    released_hold: int
    balance: Balance


class RedemptionRecorded(DomainEvent, frozen=True, kw_only=True):
    store_id: str
    redemption_no: str
    member_id: str
    occurred_at: datetime
    fingerprint: str
    request: StoredRedeem  # as posted (contract version 1 requests decode too)
    value_fen: int
    cost_fen: int
    rule_version: int
    hold_expires_at: datetime | None
    receipt: RedemptionReceipt


class RedemptionCaptured(DomainEvent, frozen=True, kw_only=True):
    occurred_at: datetime
    takes: list[LotTake]
    debt_added: int
    receipt: RedemptionReceipt


class RedemptionVoidRecorded(DomainEvent, frozen=True, kw_only=True):
    occurred_at: datetime
    receipt: VoidReceipt


class Redemption(Aggregate, kw_only=True):
    store_id: str
    redemption_no: str
    member_id: str
    kind: str
    points: int
    value_fen: int
    cost_fen: int
    rule_version: int
    fingerprint: str
    status: Status
    hold_expires_at: datetime | None
    takes: list[LotTake]
    debt_added: int
    receipt: RedemptionReceipt  # the latest: after a capture, the capture's
    first_receipt: RedemptionReceipt  # what the original POST answered, for its retries
    void_receipt: VoidReceipt | None = None


def evolve(state: Redemption | None, event: DomainEvent) -> Redemption:
    if isinstance(event, RedemptionRecorded):
        return Redemption(
            **born(event),
            store_id=event.store_id,
            redemption_no=event.redemption_no,
            member_id=event.member_id,
            kind=kind_of(event.request),
            points=event.receipt.points_redeemed + event.receipt.points_held,
            value_fen=event.value_fen,
            cost_fen=event.cost_fen,
            rule_version=event.rule_version,
            fingerprint=event.fingerprint,
            status=event.receipt.status,
            hold_expires_at=event.hold_expires_at,
            takes=event.receipt.takes,
            debt_added=0,
            receipt=event.receipt,
            first_receipt=event.receipt,
        )
    if state is None:
        raise TypeError(f"{type(event).__name__} before RedemptionRecorded")
    if isinstance(event, RedemptionCaptured):
        state.status = "redeemed"
        state.takes = event.takes
        state.debt_added = event.debt_added
        state.receipt = event.receipt
    elif isinstance(event, RedemptionVoidRecorded):
        state.status = "voided"
        state.void_receipt = event.receipt
    else:
        raise TypeError(f"Redemption cannot apply {type(event).__name__}")
    return state


def kind_of(cmd: Redeem | StoredRedeem) -> str:
    return str(type(cmd).__struct_config__.tag)


def hold_minutes(version: RuleVersion) -> int:
    offer = version.rules.redemption
    return offer.hold_minutes if offer else DEFAULT_HOLD_MINUTES


def _points_event(
    cmd: Redeem,
    member: Member,
    version: RuleVersion,
    *,
    priced: Priced,
    operator: str,
    now: datetime,
) -> PointsHeld | PointsRedeemed:
    """The member's event: points held until the hold lapses, or taken FIFO by expiry."""
    common = {
        "originator_id": member.id,
        "originator_version": member.version + 1,
        "store_id": cmd.store_id,
        "reference": cmd.redemption_no,
        "redemption_id": ids.redemption_id(cmd.store_id, cmd.redemption_no),
        "occurred_at": cmd.occurred_at,
        "kind": kind_of(cmd),
        "points": priced.points,
        "rule_version": version.version,
        "operator": operator,
        "cashier": cmd.cashier,
    }
    if cmd.hold:
        expires = now + timedelta(minutes=hold_minutes(version))
        return PointsHeld(held_at=now, expires_at=expires, **common)  # type: ignore[arg-type]
    takes, shortfall = take_fifo(spendable(member.lots, cmd.occurred_at), priced.points)
    invariant(shortfall == 0, "available() covered the points")
    return PointsRedeemed(
        value_fen=priced.value_fen,
        cost_fen=priced.cost_fen,
        takes=takes,
        debt_added=0,
        captured_hold=False,
        **common,  # type: ignore[arg-type]
    )


def redeem(
    cmd: Redeem,
    member: Member,
    version: RuleVersion,
    *,
    fingerprint: str,
    operator: str,
    now: datetime,
) -> tuple[list[DomainEvent], RedemptionReceipt]:
    """Spend (or hold) points for a redemption. Pure; 409 beyond what the member may spend."""
    priced = price(cmd, version)
    points = priced.points
    spendable_points = available(member, cmd.occurred_at, now)
    if points > spendable_points:
        raise InsufficientPoints(
            f"{points} points asked, {max(spendable_points, 0)} spendable", field="points"
        )
    event = _points_event(cmd, member, version, priced=priced, operator=operator, now=now)
    held = isinstance(event, PointsHeld)
    expires = event.expires_at if isinstance(event, PointsHeld) else None
    redemption_id = ids.redemption_id(cmd.store_id, cmd.redemption_no)
    receipt = RedemptionReceipt(
        redemption_id=redemption_id,
        store_id=cmd.store_id,
        redemption_no=cmd.redemption_no,
        member_id=cmd.member_id,
        kind=kind_of(cmd),
        status="held" if held else "redeemed",
        points_redeemed=0 if held else points,
        points_held=points if held else 0,
        hold_expires_at=expires,
        value_fen=priced.value_fen,
        cost_fen=priced.cost_fen,
        takes=[] if isinstance(event, PointsHeld) else event.takes,
        balance=balance(after(member, [event]), now),
        rule_version=version.version,
        sku=priced.sku,
        cash_price_fen=priced.cash_price_fen,
    )
    record = RedemptionRecorded(
        originator_id=redemption_id,
        originator_version=1,
        store_id=cmd.store_id,
        redemption_no=cmd.redemption_no,
        member_id=cmd.member_id,
        occurred_at=cmd.occurred_at,
        fingerprint=fingerprint,
        request=stored_form(cmd),
        value_fen=priced.value_fen,
        cost_fen=priced.cost_fen,
        rule_version=version.version,
        hold_expires_at=expires,
        receipt=receipt,
    )
    return [event, record], receipt


def capture(
    redemption: Redemption, member: Member, *, operator: str, now: datetime
) -> tuple[list[DomainEvent], RedemptionReceipt]:
    """Turn a live hold into a redemption: its points are taken FIFO now. Pure."""
    if redemption.status == "voided":
        raise RedemptionVoidedAlready("the redemption was voided", field="redemption_no")
    invariant(redemption.status == "held", "only a hold is captured (a capture replays first)")
    if redemption.hold_expires_at is None or redemption.hold_expires_at <= now:
        raise HoldLapsed(f"the hold lapsed at {redemption.hold_expires_at}", field="redemption_no")
    # The hold is released by this very event, so its points count as spendable here.
    takes, shortfall = take_fifo(spendable(member.lots, now), redemption.points)
    debt = shortfall  # a refund took the reserved points meanwhile: spent, so owed
    event = PointsRedeemed(
        originator_id=member.id,
        originator_version=member.version + 1,
        store_id=redemption.store_id,
        reference=redemption.redemption_no,
        redemption_id=redemption.id,
        occurred_at=now,
        kind=redemption.kind,
        points=redemption.points,
        value_fen=redemption.value_fen,
        cost_fen=redemption.cost_fen,
        takes=takes,
        debt_added=debt,
        captured_hold=True,
        rule_version=redemption.rule_version,
        operator=operator,
    )
    receipt = msgspec.structs.replace(
        redemption.receipt,
        status="redeemed",
        points_redeemed=redemption.points,
        points_held=0,
        takes=takes,
        balance=balance(after(member, [event]), now),
    )
    record = RedemptionCaptured(
        originator_id=redemption.id,
        originator_version=redemption.version + 1,
        occurred_at=now,
        takes=takes,
        debt_added=debt,
        receipt=receipt,
    )
    return [event, record], receipt


def void(
    redemption: Redemption, member: Member, *, operator: str, now: datetime
) -> tuple[list[DomainEvent], VoidReceipt]:
    """Give a redemption's points back to their lots (or release its live hold). Pure."""
    invariant(redemption.status != "voided", "a redemption is voided once (a void replays first)")
    restores: list[LotTake] = []
    debt_removed = released = 0
    if redemption.status == "redeemed":
        restores = redemption.takes
        debt_removed = min(redemption.debt_added, member.debt_points)
    elif redemption.hold_expires_at is not None and redemption.hold_expires_at > now:
        released = redemption.points
    restored = sum(t.points for t in restores) + debt_removed + released
    events: list[DomainEvent] = []
    if restored:
        events.append(
            RedemptionVoided(
                originator_id=member.id,
                originator_version=member.version + 1,
                store_id=redemption.store_id,
                reference=redemption.redemption_no,
                redemption_id=redemption.id,
                occurred_at=now,
                kind=redemption.kind,
                points_restored=restored,
                restores=restores,
                debt_removed=debt_removed,
                released_hold=released,
                value_fen=redemption.value_fen if redemption.status == "redeemed" else 0,
                cost_fen=redemption.cost_fen if redemption.status == "redeemed" else 0,
                operator=operator,
            )
        )
    receipt = VoidReceipt(
        redemption_id=redemption.id,
        store_id=redemption.store_id,
        redemption_no=redemption.redemption_no,
        member_id=redemption.member_id,
        points_restored=restored,
        released_hold=released,
        balance=balance(after(member, events), now),
    )
    events.append(
        RedemptionVoidRecorded(
            originator_id=redemption.id,
            originator_version=redemption.version + 1,
            occurred_at=now,
            receipt=receipt,
        )
    )
    return events, receipt
