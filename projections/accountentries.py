"""History entries of the events that move an account between cards (SPEC 2.8): a card
replaced, a duplicate merged (both shown in the history of both cards). Pure."""

from __future__ import annotations

import msgspec

from ledger.domain.identity import CardReplaced, MemberMerged
from projections.entrybase import Entry, entry_header


def card_replaced(e: CardReplaced) -> Entry:
    return entry_header(
        e,
        reference=e.new_member_id,
        points_delta=0,
        explanation=(
            f"card {e.old_member_id} replaced by card {e.new_member_id} at store {e.store_id}: "
            f"{e.reason}; the new card reads the same account"
        ),
        detail={"old_member_id": e.old_member_id, "new_member_id": e.new_member_id},
    )


def merged(e: MemberMerged) -> Entry:
    points = sum(m.lot.remaining for m in e.lots)
    moved = (
        f"{points} points in {len(e.lots)} lots (each with its own expiry), "
        f"{e.debt_points} points of debt, {e.stored_value_fen} fen of stored value and the tier spend"
    )
    if e.direction == "out":
        explanation = (
            f"duplicate merged into card {e.into_member_id}: {moved} moved out ({e.reason})"
        )
    else:
        explanation = f"card {e.from_member_id} merged into this one: {moved} moved in ({e.reason})"
    sign = -1 if e.direction == "out" else 1
    return entry_header(
        e,
        reference=e.from_member_id if e.direction == "in" else e.into_member_id,
        points_delta=sign * (points - e.debt_points),
        explanation=explanation,
        detail={
            "direction": e.direction,
            "from_member_id": e.from_member_id,
            "into_member_id": e.into_member_id,
            "lots": [{"from_lot_id": m.from_lot_id, **msgspec.to_builtins(m.lot)} for m in e.lots],
            "debt_points": e.debt_points,
            "stored_value_fen": e.stored_value_fen,
            "tier": e.tier,
        },
    )
