"""API keys as configuration: only a hash of each key is stored; the key is shown once."""

from __future__ import annotations

import secrets

import msgspec

from ledger.commands import Role
from ledger.ids import api_key_id, hash_api_key
from ledger.model import Aggregate, DomainEvent


class ApiKeyIssued(DomainEvent, frozen=True, kw_only=True):
    role: Role
    store_id: str | None
    key_hash: str
    operator: str


class ApiKey(Aggregate, kw_only=True):
    role: Role
    store_id: str | None
    revoked: bool = False


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the key's id (recorded as operator on events), role and store."""

    key_id: str
    role: Role
    store_id: str | None


class IssuedKey(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    key_id: str
    role: Role
    store_id: str | None


def evolve(state: ApiKey | None, event: DomainEvent) -> ApiKey:
    if not isinstance(event, ApiKeyIssued):
        raise TypeError(f"ApiKey cannot apply {type(event).__name__}")
    return ApiKey(
        id=event.originator_id,
        version=event.originator_version,
        created_on=event.timestamp,
        modified_on=event.timestamp,
        role=event.role,
        store_id=event.store_id,
    )


def new_key() -> str:
    return "pl_" + secrets.token_urlsafe(32)


def issue(key: str, role: Role, store_id: str | None, operator: str) -> ApiKeyIssued:
    key_hash = hash_api_key(key)
    return ApiKeyIssued(
        originator_id=api_key_id(key_hash),
        originator_version=1,
        role=role,
        store_id=store_id,
        key_hash=key_hash,
        operator=operator,
    )


def principal(state: ApiKey) -> Principal | None:
    if state.revoked:
        return None
    return Principal(key_id=str(state.id), role=state.role, store_id=state.store_id)
