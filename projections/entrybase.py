"""The header every history entry shares (`Entry`, made by `entry_header`; `operator` is
`{key_id, holder, cashier}`), and the entries of a member brought from a legacy system
(SPEC 2.11); `projections.entries` makes the others. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec

from ledger.domain.opening import MemberImported, OpeningLotImported


class Operator(msgspec.Struct, frozen=True, kw_only=True):
    """Who did it (SPEC 3): the API key, the name of its holder (None for keys issued before
    keys named one, and for the ledger's own runs), and the cashier a POS write named."""

    key_id: str | None
    holder: str | None = None
    cashier: str | None = None


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
    operator: Operator | str | None = None  # a str: an entry the view wrote before holders


class _Event(Protocol):
    """What every member event has for an entry's header."""

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def operator(self) -> str | None: ...


def entry_header(
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
        operator=Operator(key_id=e.operator, cashier=getattr(e, "cashier", None)),
    )


def imported(e: MemberImported) -> Entry:
    expired = f"; {e.points_expired_on_import} points in {e.lots_expired_on_import} lots were due"
    return entry_header(
        e,
        reference=e.source_ref,
        points_delta=0,
        explanation=f"card {e.member_id} imported from legacy record {e.source_ref} (store "
        f"{e.store_id}) as {e.tier}, {e.stored_value_fen} fen stored value"
        + (expired + " and were not imported" if e.lots_expired_on_import else ""),
        detail={"tier_spend": msgspec.to_builtins(e.tier_spend), "imported_at": e.imported_at},
    )


def opening_lot(e: OpeningLotImported) -> Entry:
    expiry = e.lot.expires_at.isoformat() if e.lot.expires_at else "never"
    return entry_header(
        e,
        reference=e.source_ref,
        points_delta=e.lot.points,
        rule_version=e.rule_version,
        explanation=f"{e.lot.points} points imported from legacy record {e.source_ref}, earned "
        f"{e.occurred_at.isoformat()}, expire {expiry}",
        detail={"lot": msgspec.to_builtins(e.lot)},
    )
