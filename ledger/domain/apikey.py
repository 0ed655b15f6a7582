"""API keys as configuration: only a hash of each key is stored; the key is shown once.

A key can be revoked, or rotated (a new key with the same role and store, the old one revoked in
the same transaction). Every event a key's call records names the key's id as its operator;
the key's `holder` (a till, a person) is what the history shows beside it.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import msgspec

from ledger.domain.commands import Role
from ledger.domain.ids import api_key_id, hash_api_key
from ledger.domain.model import Aggregate, DomainEvent, born


class ApiKeyIssued(DomainEvent, frozen=True, kw_only=True):
    role: Role
    store_id: str | None
    key_hash: str
    operator: str
    replaces: str | None = None  # the key id this one rotated
    holder: str | None = None  # who holds it (a till, a person); keys issued before: none


class ApiKeyRevoked(DomainEvent, frozen=True, kw_only=True):
    reason: str
    operator: str
    replaced_by: str | None = None  # the key id of its rotation


class ApiKey(Aggregate, kw_only=True):
    role: Role
    store_id: str | None
    operator: str
    revoked: bool = False
    revoked_on: datetime | None = None
    revoked_by: str | None = None
    reason: str | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    holder: str | None = None


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the key's id (recorded as operator on events), role and store."""

    key_id: str
    role: Role
    store_id: str | None
    holder: str | None = None


class IssuedKey(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    key_id: str
    role: Role
    store_id: str | None
    replaces: str | None = None
    holder: str | None = None


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What an admin sees of a key (never the key itself, which is not kept)."""

    key_id: str
    role: Role
    store_id: str | None
    issued_at: datetime
    issued_by: str
    revoked: bool
    revoked_at: datetime | None
    revoked_by: str | None
    reason: str | None
    replaces: str | None
    replaced_by: str | None
    holder: str | None = None


def evolve(state: ApiKey | None, event: DomainEvent) -> ApiKey:
    if isinstance(event, ApiKeyIssued):
        return ApiKey(
            **born(event),
            role=event.role,
            store_id=event.store_id,
            operator=event.operator,
            replaces=event.replaces,
            holder=event.holder,
        )
    if isinstance(event, ApiKeyRevoked) and state is not None:
        state.revoked = True
        state.revoked_on = event.timestamp
        state.revoked_by = event.operator
        state.reason = event.reason
        state.replaced_by = event.replaced_by
        return state
    raise TypeError(f"ApiKey cannot apply {type(event).__name__}")


def new_key() -> str:
    return "pl_" + secrets.token_urlsafe(32)


def issue(
    key: str,
    role: Role,
    store_id: str | None,
    operator: str,
    *,
    replaces: str | None = None,
    holder: str | None = None,
) -> ApiKeyIssued:
    key_hash = hash_api_key(key)
    return ApiKeyIssued(
        originator_id=api_key_id(key_hash),
        originator_version=1,
        role=role,
        store_id=store_id,
        key_hash=key_hash,
        operator=operator,
        replaces=replaces,
        holder=holder,
    )


def revoke(
    state: ApiKey, reason: str, operator: str, replaced_by: str | None = None
) -> ApiKeyRevoked | None:
    """The revocation of a key; None if it is revoked already (revoking is idempotent)."""
    if state.revoked:
        return None
    return ApiKeyRevoked(
        originator_id=state.id,
        originator_version=state.version + 1,
        reason=reason,
        operator=operator,
        replaced_by=replaced_by,
    )


def principal(state: ApiKey) -> Principal | None:
    if state.revoked:
        return None
    return Principal(
        key_id=str(state.id), role=state.role, store_id=state.store_id, holder=state.holder
    )


def info(state: ApiKey) -> KeyInfo:
    return KeyInfo(
        key_id=str(state.id),
        role=state.role,
        store_id=state.store_id,
        issued_at=state.created_on,
        issued_by=state.operator,
        revoked=state.revoked,
        revoked_at=state.revoked_on,
        revoked_by=state.revoked_by,
        reason=state.reason,
        replaces=state.replaces,
        replaced_by=state.replaced_by,
        holder=state.holder,
    )
