"""The header every history entry shares (type, times, store, reference, operator), and the
entry's type itself. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import msgspec


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
