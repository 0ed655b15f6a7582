"""Base types for event-sourced state: frozen msgspec events, mutable aggregate state, snapshots.

Events are immutable msgspec Structs (fast to encode, strict to decode). Each aggregate is a
plain msgspec Struct of state plus one `evolve(state, event)` function; commands are pure
functions that read state and return new events (decide/evolve). The eventsourcing
repository rebuilds state with `project(evolve)` and saves events with `Application.save()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Self, TypeVar, cast
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic, resolve_topic


def now_utc() -> datetime:
    return datetime.now(tz=UTC)


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Every stored event: which aggregate, which version, when the ledger recorded it, and
    its hash chained to the aggregate's previous event (`ledger.sealing`; set when saved)."""

    originator_id: UUID
    originator_version: int
    timestamp: datetime = msgspec.field(default_factory=now_utc)
    chain: str = ""


class Aggregate(msgspec.Struct, kw_only=True):
    """Mutable state rebuilt from events; only `evolve` functions change it."""

    id: UUID
    version: int
    created_on: datetime
    modified_on: datetime
    chain: str = ""  # the hash of the last event folded in: what the next one chains to

    def next_event_fields(self) -> dict[str, object]:
        return {"originator_id": self.id, "originator_version": self.version + 1}

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        """The repository hands out a copy of each cached aggregate; `copy.deepcopy` walks every
        datetime and frozen rule set (half the sale path's time). State is mutable structs, lists
        and dicts around immutable values and frozen structs, so only those need copying."""
        return cast("Self", _copied(self))


def _copied(value: object) -> object:
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, msgspec.Struct) and not value.__struct_config__.frozen:
        fields = {name: _copied(getattr(value, name)) for name in value.__struct_fields__}
        return msgspec.structs.replace(value, **fields)
    return value  # immutable: numbers, text, times, UUIDs, frozen structs (never mutated)


def born(event: DomainEvent) -> dict[str, Any]:
    """The fields an aggregate takes from the event that creates it."""
    return {
        "id": event.originator_id,
        "version": event.originator_version,
        "created_on": event.timestamp,
        "modified_on": event.timestamp,
    }


class Snapshot(DomainEvent, frozen=True, kw_only=True):
    """A snapshot event: the state of an aggregate, encoded, at one version."""

    topic: str
    state: bytes

    @classmethod
    def take(cls, aggregate: Aggregate) -> Snapshot:
        return cls(
            originator_id=aggregate.id,
            originator_version=aggregate.version,
            topic=get_topic(type(aggregate)),
            state=msgspec.json.encode(aggregate),  # JSON keeps each time's offset
        )

    def restore(self) -> Aggregate:
        cls: type[Aggregate] = resolve_topic(self.topic)
        return msgspec.json.decode(self.state, type=cls)


A = TypeVar("A", bound=Aggregate)
Evolve = Callable[[A | None, DomainEvent], A]


def projector(evolve: Evolve[A]) -> Callable[[A | None, Iterable[DomainEvent]], A | None]:
    """Turn an `evolve` function into the projector the eventsourcing repository calls."""

    def project(state: A | None, events: Iterable[DomainEvent]) -> A | None:
        for event in events:
            if isinstance(event, Snapshot):
                restored = event.restore()
                state = restored  # type: ignore[assignment]
                continue
            state = evolve(state, event)
            state.version = event.originator_version
            state.modified_on = event.timestamp
            state.chain = event.chain
        return state

    return project
