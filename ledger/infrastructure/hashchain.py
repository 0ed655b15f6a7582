"""Tamper evidence: every stored event carries a hash chained to its aggregate's previous event.

An event's `chain` is sha256 over the previous event's `chain` ("" before version 1), the
aggregate id, the version, the topic and the event's JSON as stored with `chain` left empty.
Each aggregate has a chain of its own, so writers of different members share nothing (the POS
path takes no global lock for it). A check needs only the stored bytes: it blanks the hash in
place and hashes again, never decoding the event, so a class that changes shape later, or an
event that no longer decodes, still checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TypeVar
from uuid import UUID

import msgspec

from ledger.domain.model import DomainEvent
from ledger.infrastructure.topics import topic_of

GENESIS = ""  # the "previous hash" of version 1
HASH_CHARS = 64
_MARK = b'"chain":"'
_encode = msgspec.json.Encoder().encode  # the mapper's encoding: same bytes

E = TypeVar("E", bound=DomainEvent)


class ChainBroken(ValueError):
    """A stored event whose hash is not what its bytes and its predecessor's hash give."""


def id_text(originator_id: UUID | str) -> str:
    """The aggregate id as hashed: 32 lowercase hex digits (SQLite stores it that way)."""
    if isinstance(originator_id, UUID):
        return originator_id.hex
    return originator_id.replace("-", "").lower()


def link(prev: str, originator_id: UUID | str, version: int, topic: str, body: bytes) -> str:
    """The hash of one event, `body` being its JSON with `chain` empty."""
    digest = hashlib.sha256(f"{prev}\n{id_text(originator_id)}\n{version}\n{topic}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def chained(events: Iterable[E], heads: dict[UUID, tuple[int, str]]) -> list[E]:
    """`events` with their hashes. `heads` holds, per aggregate, the version and hash of its
    latest event before these (not needed for version 1); events of one aggregate follow it
    in version order. `heads` is updated to the last of `events` (a writer that keeps it can
    chain its next batch with it)."""
    out: list[E] = []
    for event in events:
        version = event.originator_version
        if version == 1:
            prev = GENESIS
        else:
            known = heads.get(event.originator_id)
            if known is None or known[0] != version - 1:
                raise KeyError(f"no hash of {event.originator_id} v{version - 1} to chain to")
            prev = known[1]
        blank = event if event.chain == "" else msgspec.structs.replace(event, chain="")
        chain = link(prev, event.originator_id, version, topic_of(type(event)), _encode(blank))
        heads[event.originator_id] = (version, chain)
        out.append(msgspec.structs.replace(event, chain=chain))
    return out


def split(state: bytes) -> tuple[str, bytes]:
    """The hash a stored event's JSON carries, and the JSON with it blanked (what was hashed).
    `chain` is a field of every event's base class, so its key is the first one of that name;
    only the id, version and timestamp (no quotes inside) come before it."""
    start = state.find(_MARK)
    if start < 0:
        raise ChainBroken("the event carries no hash")
    start += len(_MARK)
    end = start + HASH_CHARS
    if state[end : end + 1] != b'"':
        raise ChainBroken("the event's hash is malformed")
    return state[start:end].decode("ascii"), state[:start] + state[end:]


def check(prev: str, originator_id: UUID | str, version: int, topic: str, state: bytes) -> str:
    """The stored event's hash if its bytes and `prev` give it; ChainBroken otherwise."""
    chain, body = split(state)
    if link(prev, originator_id, version, topic, body) != chain:
        raise ChainBroken("the event's hash does not match its contents and its predecessor")
    return chain
