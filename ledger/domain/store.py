"""Stores (direct 直营 or franchise 加盟) as configuration: the store aggregate and its events."""

from __future__ import annotations

from typing import Literal

import msgspec

from ledger.domain.commands import RegisterStore
from ledger.domain.ids import store_id as store_uuid
from ledger.domain.model import Aggregate, DomainEvent, born


class StoreConfigured(DomainEvent, frozen=True, kw_only=True):
    """A store registered, or its name, kind or franchisee changed."""

    store_id: str
    name: str
    kind: Literal["direct", "franchise"]
    franchisee: str | None
    operator: str


class Store(Aggregate, kw_only=True):
    store_id: str
    name: str
    kind: Literal["direct", "franchise"]
    franchisee: str | None


class StoreView(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    name: str
    kind: Literal["direct", "franchise"]
    franchisee: str | None


def evolve(state: Store | None, event: DomainEvent) -> Store:
    if not isinstance(event, StoreConfigured):
        raise TypeError(f"Store cannot apply {type(event).__name__}")
    if state is None:
        return Store(
            **born(event),
            store_id=event.store_id,
            name=event.name,
            kind=event.kind,
            franchisee=event.franchisee,
        )
    state.name, state.kind, state.franchisee = event.name, event.kind, event.franchisee
    return state


def configure(
    state: Store | None, store_id: str, cmd: RegisterStore, operator: str
) -> StoreConfigured | None:
    """The event that registers or changes a store; None when nothing would change."""
    if state is not None and (state.name, state.kind, state.franchisee) == (
        cmd.name,
        cmd.kind,
        cmd.franchisee,
    ):
        return None
    return StoreConfigured(
        originator_id=state.id if state else store_uuid(store_id),
        originator_version=state.version + 1 if state else 1,
        store_id=store_id,
        name=cmd.name,
        kind=cmd.kind,
        franchisee=cmd.franchisee,
        operator=operator,
    )


def view(state: Store) -> StoreView:
    return StoreView(
        store_id=state.store_id, name=state.name, kind=state.kind, franchisee=state.franchisee
    )
