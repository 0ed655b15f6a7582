"""The audit trail's entries: one member event in, one explained history entry out. Pure.

`points_delta` is the event's effect on the member's points (lots less debt, pending included;
holds are reservations, not movements, so they move nothing); `balance_after` is the running
sum the history projection keeps. Everything else a customer-service agent needs to answer
"why do I have this many points?" is in `explanation` and `detail`: the rule version and the
per-line breakdown of an accrual, the lots a redemption consumed, the reason, ticket and
operator of an adjustment. A refund's entry says which lines were refunded, at which
multipliers, and how the points reversed were computed; lots are named by what created them
("the lot of receipt R1"), which the history view tells `entry_for` (`named_lots` says which).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ledger.domain.identity import CardReplaced, MemberMerged
from ledger.domain.member import (
    BonusGranted,
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
from ledger.domain.opening import MemberImported, OpeningLotImported
from ledger.policies.lots import LotTake
from ledger.policies.valuation import RefundedLine
from projections.accountentries import card_replaced, merged
from projections.entrybase import Entry, Operator, entry_header, imported, opening_lot

__all__ = ["Entry", "Operator", "entry_for", "named_lots"]


def _lot_name(lot_id: int, names: Mapping[int, str]) -> str:
    return f"the lot of {names[lot_id]}" if lot_id in names else f"lot {lot_id}"


def _lots(takes: list[LotTake], names: Mapping[int, str]) -> str:
    return ", ".join(f"{t.points} from {_lot_name(t.lot_id, names)}" for t in takes) or "no lot"


def named_lots(event: MemberEvent) -> list[int]:
    """The lots an event's entry names (those it takes from, restores to or expires)."""
    takes = getattr(event, "takes", None) or getattr(event, "restores", None) or []
    ids = [t.lot_id for t in takes]
    if isinstance(event, PointsExpired):
        ids.append(event.lot_id)
    return ids


def _accrued(e: PointsAccrued) -> Entry:
    v = e.valuation
    explanation = f"receipt {e.reference}: {v.explanation}"
    if e.debt_paid:
        explanation += f"; {e.debt_paid} of them paid the debt left by a refund"
    return entry_header(
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


def _line(line: RefundedLine) -> str:
    insured = ""
    if line.insured_fen:
        insured = f", uninsured share {line.amount_fen - line.insured_fen}/{line.amount_fen}"
    return (
        f"line {line.line_no} {line.sku}: {line.refunded_fen} fen refunded{insured} "
        f"×{line.multiplier} ({line.reason})"
    )


def _reversed(e: PointsReversed, names: Mapping[int, str]) -> Entry:
    how = f"the sale's own valuation (rule set v{e.rule_version})"
    if e.lines and e.worth_points is not None:
        how = (
            f"{'; '.join(_line(line) for line in e.lines)}; receipt ×{e.receipt_multiplier}, "
            f"rule set v{e.rule_version}: all refunded so far is worth {e.worth_points} points, "
            f"{e.reversed_before} reversed before"
        )
    explanation = (
        f"refund {e.reference} of receipt {e.receipt_no}: {e.points} points reversed — {how}; "
        f"taken {_lots(e.takes, names)}"
    )
    if e.debt_added:
        explanation += f"; {e.debt_added} points already spent are owed (debt)"
    breakdown = [
        {
            "line_no": line.line_no,
            "sku": line.sku,
            "category": line.category,
            "amount_fen": line.refunded_fen,
            "multiplier": str(line.multiplier),
            "basis": line.basis,
            "reason": line.reason,
            "line_amount_fen": line.amount_fen,
            "insured_fen": line.insured_fen,
        }
        for line in e.lines
    ]
    return entry_header(
        e,
        points_delta=-e.points,
        rule_version=e.rule_version,
        explanation=explanation,
        breakdown=breakdown or None,
        detail={
            "receipt_no": e.receipt_no,
            "takes": msgspec.to_builtins(e.takes),
            "lots": [_lot_name(t.lot_id, names) for t in e.takes],
            "debt_added": e.debt_added,
            "spend_reversed_fen": e.spend_fen,
            "worth_points": e.worth_points,
            "reversed_before": e.reversed_before,
        },
    )


def _bonus(e: BonusGranted) -> Entry:
    payer = "headquarters" if e.cost_to == "hq" else f"store {e.store_id}"
    explanation = f"{e.code} bonus {e.reference}: {e.points} points (cost to {payer})"
    if e.referred_member_id:
        explanation += f" for referring member {e.referred_member_id}"
    if e.debt_paid:
        explanation += f"; {e.debt_paid} of them paid the debt left by a refund"
    if e.lot is not None and e.lot.expires_at is not None:
        explanation += f"; expires at {e.lot.expires_at.isoformat()}"
    return entry_header(
        e,
        points_delta=e.points,
        rule_version=e.rule_version,
        explanation=explanation + f" under rule set v{e.rule_version}",
        detail={
            "code": e.code,
            "cost_to": e.cost_to,
            "referred_member_id": e.referred_member_id,
            "debt_paid": e.debt_paid,
            "lot": msgspec.to_builtins(e.lot) if e.lot else None,
        },
    )


def _held(e: PointsHeld) -> Entry:
    return entry_header(
        e,
        points_delta=0,
        rule_version=e.rule_version,
        explanation=(
            f"{e.kind} redemption {e.reference}: {e.points} points reserved until "
            f"{e.expires_at.isoformat()} (spent only if captured)"
        ),
        detail={"kind": e.kind, "points": e.points, "expires_at": e.expires_at.isoformat()},
    )


def _redeemed(e: PointsRedeemed, names: Mapping[int, str]) -> Entry:
    how = "captured hold" if e.captured_hold else "redemption"
    return entry_header(
        e,
        points_delta=-e.points,
        rule_version=e.rule_version,
        explanation=(
            f"{e.kind} {how} {e.reference}: {e.points} points for {e.value_fen} fen "
            f"(cost to the chain {e.cost_fen} fen), taken {_lots(e.takes, names)} "
            "(earliest expiry first)"
        ),
        detail={
            "kind": e.kind,
            "value_fen": e.value_fen,
            "cost_fen": e.cost_fen,
            "takes": msgspec.to_builtins(e.takes),
            "debt_added": e.debt_added,
        },
    )


def _voided(e: RedemptionVoided, names: Mapping[int, str]) -> Entry:
    back = sum(t.points for t in e.restores) + e.debt_removed
    if e.released_hold:
        explanation = f"hold {e.reference} voided: {e.released_hold} reserved points released"
    else:
        explanation = (
            f"redemption {e.reference} voided: {back} points back, "
            f"{_lots(e.restores, names)} with their original expiry"
        )
    return entry_header(
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


def _converted(e: PointsConverted, names: Mapping[int, str]) -> Entry:
    return entry_header(
        e,
        points_delta=-e.points,
        rule_version=e.rule_version,
        explanation=(
            f"conversion {e.reference}: {e.points} points became {e.credited_fen} fen of "
            f"stored value, taken {_lots(e.takes, names)}"
        ),
        detail={"credited_fen": e.credited_fen, "takes": msgspec.to_builtins(e.takes)},
    )


def _stored_value(e: StoredValueCredited | StoredValueDebited) -> Entry:
    credit = isinstance(e, StoredValueCredited)
    what = f"{e.reason} credit" if isinstance(e, StoredValueCredited) else "payment"
    return entry_header(
        e,
        points_delta=0,
        explanation=f"stored value {what} {e.reference}: {'+' if credit else '-'}{e.amount_fen} fen",
        detail={"amount_fen": e.amount_fen if credit else -e.amount_fen},
    )


def _expired(e: PointsExpired, names: Mapping[int, str]) -> Entry:
    lot = _lot_name(e.lot_id, names) if e.lot_id in names else f"lot {e.lot_id} ({e.lot_reference})"
    return entry_header(
        e,
        reference=e.lot_reference,
        points_delta=-e.points,
        explanation=(
            f"{e.points} points of {lot} expired at "
            f"{e.occurred_at.isoformat()} (expiry run as of {e.run_as_of.isoformat()})"
        ),
        detail={"lot_id": e.lot_id, "run_as_of": e.run_as_of.isoformat()},
    )


def _adjusted(e: PointsAdjusted, names: Mapping[int, str]) -> Entry:
    direction = "credit" if e.points > 0 else "debit"
    taken = f"; taken {_lots(e.takes, names)}" if e.takes else ""
    return entry_header(
        e,
        points_delta=e.points,
        explanation=f"customer-service {direction} of {abs(e.points)} points: {e.reason} "
        f"(ticket {e.ticket}){taken}",
        detail={
            "reason": e.reason,
            "ticket": e.ticket,
            "debt_paid": e.debt_paid,
            "takes": msgspec.to_builtins(e.takes),
            "lot": msgspec.to_builtins(e.lot) if e.lot else None,
        },
    )


def _tier(e: TierChanged) -> Entry:
    return entry_header(
        e,
        points_delta=0,
        rule_version=e.rule_version,
        explanation=f"{e.direction} {e.from_tier} → {e.to_tier}: {e.reason}",
        detail={"from": e.from_tier, "to": e.to_tier, "tier_spend_fen": e.tier_spend_fen},
    )


def _enrolled(e: MemberEnrolled) -> Entry:
    return entry_header(
        e,
        reference=e.member_id,
        points_delta=0,
        explanation=f"card {e.member_id} enrolled at store {e.store_id} as {e.tier}",
    )


def _erased(e: MemberErased) -> Entry:
    return entry_header(
        e, points_delta=0, explanation=f"personal data erased (key destroyed): {e.reason}"
    )


def entry_for(event: MemberEvent, names: Mapping[int, str] | None = None) -> Entry:
    """The history entry of a member event (every member event has one); `names` tells what
    created the lots it names (`named_lots`)."""
    lots = names or {}
    named: dict[type[Any], Any] = {
        PointsReversed: _reversed,
        PointsRedeemed: _redeemed,
        RedemptionVoided: _voided,
        PointsConverted: _converted,
        PointsExpired: _expired,
        PointsAdjusted: _adjusted,
    }
    if type(event) in named:
        named_entry: Entry = named[type(event)](event, lots)
        return named_entry
    makers: dict[type[Any], Any] = {
        MemberEnrolled: _enrolled,
        MemberErased: _erased,
        MemberImported: imported,
        OpeningLotImported: opening_lot,
        PointsAccrued: _accrued,
        BonusGranted: _bonus,
        PointsHeld: _held,
        StoredValueCredited: _stored_value,
        StoredValueDebited: _stored_value,
        TierChanged: _tier,
        CardReplaced: card_replaced,
        MemberMerged: merged,
    }
    maker = makers.get(type(event))
    if maker is None:
        raise TypeError(f"no history entry for {type(event).__name__}")
    entry: Entry = maker(event)
    return entry
