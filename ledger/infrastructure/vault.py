"""Personal data encrypted with a per-member key, and those keys wrapped by the master key.

A member's name, phone, ID number and birthday are encrypted with AES-256-GCM under a key of
their own; the event log holds only the ciphertext. The member keys live outside the log (a
`KeyStore`, see `ledger.infrastructure.keystore`), each wrapped (encrypted) by the master key. Erasure destroys
the member's key: the ciphertext in the immutable log can then never be read again
(crypto-shredding), while every points event stays as it was.

Both ciphertexts are bound to the member by their associated data, so an encrypted record or a
wrapped key copied onto another member does not decrypt.
"""

from __future__ import annotations

import os
from typing import Literal, Protocol
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.domain.personal import Ciphertext, PersonalData

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; random, a key encrypts a handful of records at most

KeyState = bytes | Literal["erased"] | None  # a wrapped key, a destroyed one, or none at all


class KeyStore(Protocol):
    """Where wrapped member keys live: the one place of the ledger from which rows are deleted."""

    def create(self, member: UUID, wrapped: bytes) -> bytes:
        """Keep `wrapped` unless the member has a key already; the key kept either way."""

    def get(self, member: UUID) -> KeyState: ...

    def get_many(self, members: list[UUID]) -> dict[UUID, KeyState]:
        """The states of those of `members` that have a key (one query)."""

    def destroy(self, member: UUID) -> bool:
        """Forget the member's key for good; False if there was none to forget."""

    def rewrap(self, member: UUID, old: bytes, new: bytes) -> bool:
        """Replace the wrapped key `old` with `new` (a master key rotation)."""

    def members(self) -> list[UUID]:
        """Every member with a live key."""


class KeyUnreadable(Exception):
    """A wrapped key or a sealed record does not open: wrong master key, or tampered with."""


def _aad(purpose: str, member: UUID) -> bytes:
    return f"pharmacy-ledger:{purpose}:".encode() + member.bytes


def new_member_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def wrap(master: bytes, member: UUID, key: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, key, _aad("member-key", member))


def unwrap(master: bytes, member: UUID, wrapped: bytes) -> bytes:
    try:
        return AESGCM(master).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad("member-key", member)
        )
    except InvalidTag as e:
        raise KeyUnreadable(f"the key of member {member} does not open with this master key") from e


def encrypt(key: bytes, member: UUID, data: PersonalData) -> Ciphertext:
    nonce = os.urandom(NONCE_BYTES)
    plain = msgspec.json.encode(data)
    return Ciphertext(
        nonce=nonce, ciphertext=AESGCM(key).encrypt(nonce, plain, _aad("personal", member))
    )


def decrypt(key: bytes, member: UUID, sealed: Ciphertext) -> PersonalData:
    try:
        plain = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _aad("personal", member))
    except InvalidTag as e:
        raise KeyUnreadable(f"the personal data of member {member} does not open") from e
    return msgspec.json.decode(plain, type=PersonalData)


class MemberKeys:
    """The members' keys in custody: made on first use, wrapped by the master key in a
    `KeyStore`, destroyed on erasure, re-wrapped on a master key rotation."""

    def __init__(self, store: KeyStore, master: bytes) -> None:
        self.store = store
        self._master = master

    def encrypt(self, member: UUID, data: PersonalData) -> Ciphertext:
        """`data` encrypted under the member's key (made, wrapped and kept on first use)."""
        state = self.store.get(member)
        if state is None:
            state = self.store.create(member, wrap(self._master, member, new_member_key()))
        if not isinstance(state, bytes):
            raise KeyUnreadable(f"member {member} has no live key: erased")
        return encrypt(unwrap(self._master, member, state), member, data)

    def for_import(self, members: list[UUID]) -> dict[UUID, tuple[bytes, bytes | None]]:
        """Each member's key for an import, read in one query: a live key kept already (with
        None), else a new one with its wrapping, for the caller to store in the transaction of
        the member's events. A member whose key was destroyed (erased) is left out."""
        found = self.store.get_many(members)
        keys: dict[UUID, tuple[bytes, bytes | None]] = {}
        for member in members:
            state = found.get(member)
            if isinstance(state, bytes):
                keys[member] = (unwrap(self._master, member, state), None)
            elif state is None:
                key = new_member_key()
                keys[member] = (key, wrap(self._master, member, key))
        return keys

    def sealed(self, key: bytes, member: UUID, data: PersonalData) -> Ciphertext:
        """`data` encrypted under `key` (one `for_import` gave)."""
        return encrypt(key, member, data)

    def secret(self, owner: UUID) -> bytes:
        """A secret of `owner`'s (the identity index's), made and kept wrapped on first use;
        re-wrapped with the member keys on a master key rotation, so it survives one."""
        state = self.store.get(owner)
        if state is None:
            state = self.store.create(owner, wrap(self._master, owner, new_member_key()))
        if not isinstance(state, bytes):
            raise KeyUnreadable(f"the secret of {owner} was destroyed")
        return unwrap(self._master, owner, state)

    def decrypt(self, member: UUID, sealed: Ciphertext) -> PersonalData | None:
        """The member's personal data; None when their key was destroyed (erased)."""
        state = self.store.get(member)
        if not isinstance(state, bytes):
            return None
        return decrypt(unwrap(self._master, member, state), member, sealed)

    def destroy(self, member: UUID) -> bool:
        return self.store.destroy(member)

    def rewrap(self, previous_master: bytes) -> int:
        """Re-wrap every live key from `previous_master` to this master key (safe to run
        again: keys already re-wrapped are skipped); returns how many were re-wrapped."""
        count = 0
        for member in self.store.members():
            wrapped = self.store.get(member)
            if not isinstance(wrapped, bytes):
                continue
            try:
                key = unwrap(previous_master, member, wrapped)
            except KeyUnreadable:
                unwrap(self._master, member, wrapped)  # done by a run before
                continue
            count += self.store.rewrap(member, wrapped, wrap(self._master, member, key))
        return count
