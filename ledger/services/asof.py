"""A cold `balance?as_of=` from the fold's checkpoints (D67): the member's index of checkpoints,
the one to start from, and the few events the question may count, instead of every event.

The checkpoints live in the snapshot store under ids derived from the member's
(`ledger.policies.asofcheckpoint`): derived data beside the log, never in it, rebuilt from the
events whenever missing. A question that read more than `EVERY` events past the last checkpoint
writes the new ones (deterministic: two processes writing the same one clash harmlessly).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import cast
from uuid import UUID

from eventsourcing.persistence import PersistenceError
from eventsourcing.utils import resolve_topic

from ledger.domain.errors import MemberNotFound, invariant
from ledger.policies.asof import MemberAsOf, Move, move_type
from ledger.policies.asofcheckpoint import (
    EVERY,
    FoldCheckpoint,
    FoldIndex,
    FoldState,
    Segment,
    as_of_from,
    checkpoint_id,
    extend,
    index_id,
    plan,
)
from ledger.services.core import LedgerCore


@functools.cache
def move_kind(topic: str) -> type[Move] | None:
    """The move a stored topic decodes as for the as-of fold (None: not a member event)."""
    return move_type(resolve_topic(topic))


class AsOfReader:
    def __init__(self, core: LedgerCore) -> None:
        self.core = core

    def as_of(
        self, card: str, member: UUID, as_of: datetime, recorded_as_of: datetime | None
    ) -> MemberAsOf:
        segments = self._segments(member)
        steps = plan(segments, as_of, recorded_as_of)
        state = self._state(member, steps.start)
        read: list[Move] = []
        for after, upto in steps.reads:
            read += self.core.read_as(member, move_kind, gt=after, lte=upto)
        if not segments and not read:
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        last = segments[-1].version if segments else 0
        tail = [m for m in read if m.originator_version > last]
        if len(tail) >= EVERY:
            self._checkpoint(member, segments, steps.start, state, tail)
        return as_of_from(state, segments, read, as_of, recorded_as_of)

    def _segments(self, member: UUID) -> list[Segment]:
        store = self.core.snapshots
        assert store is not None  # noqa: S101 - the ledger snapshots members
        found = list(store.get(index_id(member), desc=True, limit=1))
        return found[0].segments if found and isinstance(found[0], FoldIndex) else []

    def _state(self, member: UUID, version: int) -> FoldState | None:
        if version == 0:
            return None
        store = self.core.snapshots
        assert store is not None  # noqa: S101 - the ledger snapshots members
        found = list(store.get(checkpoint_id(member), gt=version - 1, lte=version))
        invariant(
            bool(found) and isinstance(found[0], FoldCheckpoint),
            f"the index names the as-of checkpoint {member} v{version}, written with it",
        )
        return cast(FoldCheckpoint, found[0]).state

    def _checkpoint(
        self,
        member: UUID,
        segments: Sequence[Segment],
        start: int,
        state: FoldState | None,
        tail: Sequence[Move],
    ) -> None:
        """Write the checkpoints `tail` completes (from the last one's state) and the index."""
        last = segments[-1].version if segments else 0
        if start != last:
            state = self._state(member, last)
        made, grown = extend(member, segments, state, tail)
        if not made:
            return
        index = FoldIndex(
            originator_id=index_id(member), originator_version=len(grown), segments=grown
        )
        store = self.core.snapshots
        assert store is not None  # noqa: S101 - the ledger snapshots members
        # Another process may have written them first, or the store refuse: the answer stands
        # either way, and the next question tries again.
        with contextlib.suppress(PersistenceError):
            store.put([*made, index])
