"""The audit trail's entries: one member event in, one explained history entry out. Pure.

`points_delta` is the event's effect on the member's points (lots less debt, pending included;
holds are reservations, not movements, so they move nothing); `balance_after` is the running
sum the history projection keeps. Everything else a customer-service agent needs to answer
"why do I have this many points?" is in `explanation` and `detail`: the rule version and the
per-line breakdown of an accrual, the lots a redemption consumed, the reason, ticket and
operator of an adjustment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec

from ledger.domain.member import (
    MemberEnrolled,
    MemberErased,
    MemberEvent,
    PointsAccrued,
    PointsAdjusted,
    PointsConverted,
    PointsExpired,
    PointsHeld,
    PointsRedeemed,
    PointsReversed,
    RedemptionVoided,
    StoredValueCredited,
    StoredValueDebited,
    TierChanged,
)
from ledger.policies.lots import LotTake


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """A history entry before the projection numbers it and adds the running balance."""

    type: str
    occurred_at: datetime
    recorded_at: datetime
    store_id: str | None
    reference: str | None
    points_delta: int
    rule_version: int | None
    explanation: str
    breakdown: list[Any] | None = None
    detail: dict[str, Any] = {}
    operator: str | None = None


class _Event(Protocol):
    """What every member event has for an entry's header."""

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def operator(self) -> str | None: ...


def _entry(
    e: _Event,
    *,
    points_delta: int,
    explanation: str,
    rule_version: int | None = None,
    breakdown: list[Any] | None = None,
    detail: dict[str, Any] | None = None,
    reference: str | None = None,
) -> Entry:
    """The entry of `e`: the header every entry shares (its type, times, operator, and its store
    and reference when it has them; a `reference` given replaces the event's own) around
    what the builder says about the event."""
    return Entry(
        type=type(e).__name__,
        occurred_at=e.occurred_at,
        recorded_at=e.timestamp,
        store_id=getattr(e, "store_id", None),
        reference=getattr(e, "reference", None) if reference is None else reference,
        points_delta=points_delta,
        rule_version=rule_version,
        explanation=explanation,
        breakdown=breakdown,
        detail={} if detail is None else detail,
        operator=e.operator,
    )


def _lots(takes: list[LotTake]) -> str:
    return ", ".join(f"{t.points} from lot {t.lot_id}" for t in takes) or "no lot"


def _accrued(e: PointsAccrued) -> Entry:
    v = e.valuation
    explanation = f"receipt {e.reference}: {v.explanation}"
    if e.debt_paid:
        explanation += f"; {e.debt_paid} of them paid the debt left by a refund"
    return _entry(
        e,
        points_delta=e.points,
        rule_version=v.rule_version,
        explanation=explanation,
        breakdown=msgspec.to_builtins(v.lines),
        detail={
            "factors": msgspec.to_builtins(v.factors),
            "debt_paid": e.debt_paid,
            "lot": msgspec.to_builtins(e.lot) if e.lot else None,
        },
    )


def _reversed(e: PointsReversed) -> Entry:
    explanation = (
        f"refund {e.reference} of receipt {e.receipt_no}: {e.points} points reversed with the "
        f"sale's own valuation (rule set v{e.rule_version}); taken {_lots(e.takes)}"
    )
    if e.debt_added:
        explanation += f"; {e.debt_added} points already spent are owed (debt)"
    return _entry(
        e,
        points_delta=-e.points,
        rule_version=e.rule_version,
        explanation=explanation,
        detail={
            "receipt_no": e.receipt_no,
            "takes": msgspec.to_builtins(e.takes),
            "debt_added": e.debt_added,
            "spend_reversed_fen": e.spend_fen,
        },
    )


def _held(e: PointsHeld) -> Entry:
    return _entry(
        e,
        points_delta=0,
        rule_version=e.rule_version,
        explanation=(
            f"{e.kind} redemption {e.reference}: {e.points} points reserved until "
            f"{e.expires_at.isoformat()} (spent only if captured)"
        ),
        detail={"kind": e.kind, "points": e.points, "expires_at": e.expires_at.isoformat()},
    )


def _redeemed(e: PointsRedeemed) -> Entry:
    how = "captured hold" if e.captured_hold else "redemption"
    return _entry(
        e,
        points_delta=-e.points,
        rule_version=e.rule_version,
        explanation=(
            f"{e.kind} {how} {e.reference}: {e.points} points for {e.value_fen} fen "
            f"(cost to the chain {e.cost_fen} fen), taken {_lots(e.takes)} (earliest expiry first)"
        ),
        detail={
            "kind": e.kind,
            "value_fen": e.value_fen,
            "cost_fen": e.cost_fen,
            "takes": msgspec.to_builtins(e.takes),
            "debt_added": e.debt_added,
        },
    )


def _voided(e: RedemptionVoided) -> Entry:
    back = sum(t.points for t in e.restores) + e.debt_removed
    if e.released_hold:
        explanation = f"hold {e.reference} voided: {e.released_hold} reserved points released"
    else:
        explanation = (
            f"redemption {e.reference} voided: {back} points back, "
            f"{_lots(e.restores)} with their original expiry"
        )
    return _entry(
        e,
        points_delta=back,
        explanation=explanation,
        detail={
            "restores": msgspec.to_builtins(e.restores),
            "debt_removed": e.debt_removed,
            "released_hold": e.released_hold,
            "cost_fen": e.cost_fen,
        },
    )


def _converted(e: PointsConverted) -> Entry:
    return _entry(
        e,
        points_delta=-e.points,
        rule_version=e.rule_version,
        explanation=(
            f"conversion {e.reference}: {e.points} points became {e.credited_fen} fen of "
            f"stored value, taken {_lots(e.takes)}"
        ),
        detail={"credited_fen": e.credited_fen, "takes": msgspec.to_builtins(e.takes)},
    )


def _stored_value(e: StoredValueCredited | StoredValueDebited) -> Entry:
    credit = isinstance(e, StoredValueCredited)
    what = f"{e.reason} credit" if isinstance(e, StoredValueCredited) else "payment"
    return _entry(
        e,
        points_delta=0,
        explanation=f"stored value {what} {e.reference}: {'+' if credit else '-'}{e.amount_fen} fen",
        detail={"amount_fen": e.amount_fen if credit else -e.amount_fen},
    )


def _expired(e: PointsExpired) -> Entry:
    return _entry(
        e,
        reference=e.lot_reference,
        points_delta=-e.points,
        explanation=(
            f"{e.points} points of lot {e.lot_id} ({e.lot_reference}) expired at "
            f"{e.occurred_at.isoformat()} (expiry run as of {e.run_as_of.isoformat()})"
        ),
        detail={"lot_id": e.lot_id, "run_as_of": e.run_as_of.isoformat()},
    )


def _adjusted(e: PointsAdjusted) -> Entry:
    direction = "credit" if e.points > 0 else "debit"
    return _entry(
        e,
        points_delta=e.points,
        explanation=f"customer-service {direction} of {abs(e.points)} points: {e.reason} "
        f"(ticket {e.ticket})",
        detail={
            "reason": e.reason,
            "ticket": e.ticket,
            "debt_paid": e.debt_paid,
            "takes": msgspec.to_builtins(e.takes),
            "lot": msgspec.to_builtins(e.lot) if e.lot else None,
        },
    )


def _tier(e: TierChanged) -> Entry:
    return _entry(
        e,
        points_delta=0,
        rule_version=e.rule_version,
        explanation=f"{e.direction} {e.from_tier} → {e.to_tier}: {e.reason}",
        detail={"from": e.from_tier, "to": e.to_tier, "tier_spend_fen": e.tier_spend_fen},
    )


def _enrolled(e: MemberEnrolled) -> Entry:
    return _entry(
        e,
        reference=e.member_id,
        points_delta=0,
        explanation=f"card {e.member_id} enrolled at store {e.store_id} as {e.tier}",
    )


def _erased(e: MemberErased) -> Entry:
    return _entry(
        e, points_delta=0, explanation=f"personal data erased (key destroyed): {e.reason}"
    )


def entry_for(event: MemberEvent) -> Entry:
    """The history entry of a member event (every member event has one)."""
    makers: dict[type[Any], Any] = {
        MemberEnrolled: _enrolled,
        MemberErased: _erased,
        PointsAccrued: _accrued,
        PointsReversed: _reversed,
        PointsHeld: _held,
        PointsRedeemed: _redeemed,
        RedemptionVoided: _voided,
        PointsConverted: _converted,
        StoredValueCredited: _stored_value,
        StoredValueDebited: _stored_value,
        PointsExpired: _expired,
        PointsAdjusted: _adjusted,
        TierChanged: _tier,
    }
    maker = makers.get(type(event))
    if maker is None:
        raise TypeError(f"no history entry for {type(event).__name__}")
    entry: Entry = maker(event)
    return entry
