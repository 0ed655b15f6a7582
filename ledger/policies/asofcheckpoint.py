"""Checkpoints of the as-of fold (D67): what a cold `balance?as_of=` starts from instead of
reading and folding all of a member's events.

A checkpoint at recording position V (the member's version) holds the fold of *every* event up
to V, and its segment, the events (V', V] since the checkpoint before, says the latest and the
earliest business and recording times in it. A question (as_of T, recorded_as_of R):

- may start from the checkpoint at V if every event up to V counts for it: the latest
  business time up to V is ≤ T and the latest recording time up to V is ≤ R. These maxima only
  grow with V, so the usable checkpoints are a prefix and the last of them is taken;
- then reads, in the order recorded, only the later segments in which some event may count: a
  segment whose earliest business time is after T, or whose earliest recording time is after
  R, holds none that counts and is skipped (for `as_of` in the past, all but one or two). An
  offline sale recorded late, after the checkpoint, with a business time ≤ T lowers its
  segment's earliest business time, so that segment is read and the sale counts;
- then reads the events after the last checkpoint (fewer than `EVERY`), whatever their times.

Skipping an event that does not count changes no sum; the one thing every event does, counted
or not, is to name the card the account reads under (`fold_moves`), so each segment keeps that
name as it stands after it. The answer is then the full fold's, exactly (tests compare them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID, uuid5

import msgspec

from ledger.domain.model import DomainEvent
from ledger.policies.asof import Fold, LotThen, MemberAsOf, Move, answer, fold_moves

EVERY = 100  # events between checkpoints: what a question reads at most per segment
FORMAT = "as-of fold 2"  # a change of the fold's sums needs new checkpoints: a new name


def checkpoint_id(member: UUID) -> UUID:
    return uuid5(member, f"{FORMAT} checkpoints")


def index_id(member: UUID) -> UUID:
    return uuid5(member, f"{FORMAT} index")


class LotRow(msgspec.Struct, array_like=True, frozen=True):
    """A `LotThen` as a checkpoint stores it: a JSON array, not an object (a third the bytes)."""

    lot_id: int
    reference: str
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None
    points: int
    remaining: int


class HoldThen(msgspec.Struct, array_like=True, frozen=True):
    redemption_id: UUID
    points: int
    expires_at: datetime


class FoldState(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    tier: str | None
    tier_at: datetime | None
    lots: list[LotRow]
    debt: int
    stored_value: int
    holds: list[HoldThen]
    counted: int


class Segment(msgspec.Struct, array_like=True, frozen=True):
    version: int  # the checkpoint's: the segment's last event
    max_occurred: datetime | None  # the latest business time of any event up to `version`
    max_recorded: datetime  # the latest recording time of any event up to `version`
    min_occurred: datetime | None  # the earliest in the segment (None: one has no such time)
    min_recorded: datetime  # the earliest recording time in the segment
    member_id: str  # the card the account reads under after `version`


class FoldCheckpoint(DomainEvent, frozen=True, kw_only=True):
    """The fold of every event of a member up to `originator_version` (snapshot store)."""

    state: FoldState


class FoldIndex(DomainEvent, frozen=True, kw_only=True):
    """A member's checkpoints so far; `originator_version` is how many (snapshot store)."""

    segments: list[Segment]


def saved(fold: Fold) -> FoldState:
    return FoldState(
        member_id=fold.member_id,
        tier=fold.tier,
        tier_at=fold.tier_at,
        lots=[LotRow(*msgspec.structs.astuple(lot)) for lot in fold.lots.values()],
        debt=fold.debt,
        stored_value=fold.stored_value,
        holds=[HoldThen(k, points, at) for k, (points, at) in fold.holds.items()],
        counted=fold.counted,
    )


def restored(state: FoldState | None) -> Fold:
    fold = Fold()
    if state is not None:
        fold.member_id, fold.tier, fold.tier_at = state.member_id, state.tier, state.tier_at
        fold.lots = {row.lot_id: LotThen(**msgspec.structs.asdict(row)) for row in state.lots}
        fold.debt, fold.stored_value, fold.counted = state.debt, state.stored_value, state.counted
        fold.holds = {h.redemption_id: (h.points, h.expires_at) for h in state.holds}
    return fold


class Plan(msgspec.Struct, frozen=True):
    start: int  # the version of the checkpoint to start from (0: none)
    reads: list[tuple[int, int | None]]  # version ranges (after, up to; None: to the end)


def plan(segments: Sequence[Segment], as_of: datetime, recorded_as_of: datetime | None) -> Plan:
    """Where a question starts and which events it reads (the module's docstring)."""
    start = 0
    later: Sequence[Segment] = segments
    for n, segment in enumerate(segments):
        occurred_ok = segment.max_occurred is None or segment.max_occurred <= as_of
        if not occurred_ok or (
            recorded_as_of is not None and segment.max_recorded > recorded_as_of
        ):
            break
        start, later = segment.version, segments[n + 1 :]
    reads: list[tuple[int, int | None]] = []
    before = start
    for segment in later:
        late = segment.min_occurred is not None and segment.min_occurred > as_of
        if not (late or (recorded_as_of is not None and segment.min_recorded > recorded_as_of)):
            reads.append(_range(reads, before, segment.version))
        before = segment.version
    reads.append(_range(reads, before, None))  # after the last checkpoint: always read
    return Plan(start, reads)


def _range(
    reads: list[tuple[int, int | None]], after: int, upto: int | None
) -> tuple[int, int | None]:
    """(after, upto], joined to the last range when they meet (one read instead of two)."""
    if reads and reads[-1][1] == after:
        return reads.pop()[0], upto
    return after, upto


def as_of_from(
    state: FoldState | None,
    segments: Sequence[Segment],
    read: Sequence[Move],
    as_of: datetime,
    recorded_as_of: datetime | None,
) -> MemberAsOf:
    """The answer from the start checkpoint's state and the moves `plan` had read, in order."""
    last = segments[-1].version if segments else 0
    fold = fold_moves(
        restored(state), [m for m in read if m.originator_version <= last], as_of, recorded_as_of
    )
    if segments:
        fold.member_id = segments[-1].member_id
    tail = [m for m in read if m.originator_version > last]
    return answer(fold_moves(fold, tail, as_of, recorded_as_of), as_of, recorded_as_of)


def extend(
    member: UUID, segments: Sequence[Segment], state: FoldState | None, tail: Sequence[Move]
) -> tuple[list[FoldCheckpoint], list[Segment]]:
    """New checkpoints every EVERY events of `tail` (every event after the last checkpoint, whose
    state is `state`), and the segments with theirs."""
    fold = restored(state)
    found: list[FoldCheckpoint] = []
    grown = list(segments)
    since: list[Move] = []
    for move in tail:
        fold_moves(fold, [move], None)  # every event counts in a checkpoint
        since.append(move)
        if move.originator_version - (grown[-1].version if grown else 0) >= EVERY:
            grown.append(_segment(grown[-1] if grown else None, since, move, fold.member_id))
            found.append(
                FoldCheckpoint(
                    originator_id=checkpoint_id(member),
                    originator_version=move.originator_version,
                    state=saved(fold),
                )
            )
            since = []
    return found, grown


def _segment(before: Segment | None, moves: list[Move], last: Move, member_id: str) -> Segment:
    occurred = [m.occurred_at for m in moves if m.occurred_at is not None]
    earlier = [before.max_occurred] if before is not None and before.max_occurred else []
    return Segment(
        version=last.originator_version,
        max_occurred=max([*earlier, *occurred]) if occurred or earlier else None,
        max_recorded=max([m.timestamp for m in moves] + ([before.max_recorded] if before else [])),
        min_occurred=min(occurred) if len(occurred) == len(moves) else None,
        min_recorded=min(m.timestamp for m in moves),
        member_id=member_id,
    )
