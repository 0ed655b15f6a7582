"""Lost cards and duplicates (SPEC 2.8, 挂失补卡 and merges): pure decisions and their events.

An account is the member aggregate of the card it was enrolled with; its id never changes. A
replacement card is an alias: its own id holds one `CardAliased` naming the account, and the
account records `CardReplaced`, after which the account reads under the new card and the old one
answers every write with 409 `card-replaced` (reads and refunds of its sales still work). A
merge moves a duplicate account's lots (each with its own expiry, pending or not), debt, stored
value and tier spend into this one: `MemberMerged` out of the duplicate and into this account,
saved together; the duplicate then answers 409 `member-merged`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from ledger.domain import ids
from ledger.domain.commands import CardNumber, Identifier, Text
from ledger.domain.errors import (
    CardReplacedError,
    Conflict,
    InvalidInput,
    MemberMergedError,
    invariant,
)
from ledger.domain.member import AccountEvent, CardAliased, Member, held
from ledger.domain.model import DomainEvent
from ledger.policies.lots import Lot
from ledger.policies.ruleset import RuleSet
from ledger.policies.tiers import SpendEntry, TierMark, rank

MERGED_LOT_BASE = 10**12  # moved lots' ids: above any event version, so never a clash
MOVED_LOTS_MAX = 9_999


class ReplaceCard(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/members/{member_id}/replace-card` (customer service)."""

    new_member_id: CardNumber
    store_id: Identifier
    reason: Text


class MergeMember(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`POST /v1/members/{member_id}/merge` (customer service): the duplicate goes into it."""

    from_member_id: CardNumber
    reason: Text


class CardReplaced(AccountEvent, frozen=True, kw_only=True):
    occurred_at: datetime
    old_member_id: str
    new_member_id: str
    store_id: str
    reason: str
    operator: str

    def applied_to(self, state: Member | None) -> Member:
        invariant(state is not None, "a card of an enrolled member is replaced")
        assert state is not None  # noqa: S101 - narrowing for the type checker
        state.replaced_cards[self.old_member_id] = self.new_member_id
        state.member_id = self.new_member_id
        return state


class MovedLot(msgspec.Struct, frozen=True, kw_only=True):
    from_lot_id: int  # its id in the duplicate
    lot: Lot  # as it moves: the duplicate's lot (out), or the new lot in this account (in)


class MemberMerged(AccountEvent, frozen=True, kw_only=True):
    occurred_at: datetime
    direction: Literal["out", "in"]
    into_member_id: str  # the card that keeps the account
    from_member_id: str  # the duplicate's card
    from_account_id: UUID  # the duplicate's member id (its lots' descriptions are kept there)
    reason: str
    lots: list[MovedLot]
    debt_points: int
    stored_value_fen: int
    spend: list[SpendEntry]
    tier: str | None  # in: the account's tier after the merge (the higher of the two)
    operator: str

    def applied_to(self, state: Member | None) -> Member:
        invariant(state is not None, "an enrolled member merges")
        assert state is not None  # noqa: S101 - narrowing for the type checker
        self._move(state)
        invariant(state.debt_points >= 0, "debt is never negative")
        return state

    def _move(self, state: Member) -> None:
        sign = -1 if self.direction == "out" else 1
        state.debt_points += sign * self.debt_points
        state.stored_value_fen += sign * self.stored_value_fen
        if self.direction == "out":
            for moved in self.lots:
                lot = state.lot(moved.from_lot_id)
                invariant(lot.remaining == moved.lot.remaining, "a lot moves whole")
                lot.remaining = 0
            state.spend = []
            state.merged_into = self.into_member_id
            return
        state.lots.extend(msgspec.structs.replace(m.lot) for m in self.lots)
        state.spend = sorted([*state.spend, *self.spend], key=lambda e: e.occurred_at)
        if self.tier is not None and self.tier != state.tier:
            state.tier_marks.append(TierMark(self.occurred_at, state.tier, self.tier))
            state.tier = self.tier


class Replacement(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str  # the card the account reads under now
    replaced_member_id: str
    store_id: str
    reason: str
    occurred_at: datetime


class Merger(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    from_member_id: str
    lots_moved: int
    points_moved: int
    debt_points: int
    stored_value_fen: int
    tier: str | None
    occurred_at: datetime


def check_writable(account: Member, card: str) -> None:
    """A write addressed to `card` of this account: 409 if the card was replaced or merged."""
    if account.merged_into is not None:
        raise MemberMergedError(
            f"card {card!r} was merged into card {account.merged_into!r}",
            current_member_id=account.merged_into,
            field="member_id",
        )
    if card != account.member_id:
        raise CardReplacedError(
            f"card {card!r} was replaced by card {account.member_id!r}",
            current_member_id=account.member_id,
            field="member_id",
        )


def replace_card(
    account: Member, card: str, cmd: ReplaceCard, *, operator: str, now: datetime
) -> tuple[list[DomainEvent], Replacement]:
    """The account moves from `card` (its current card) to `cmd.new_member_id`. Pure."""
    check_writable(account, card)
    replaced = CardReplaced(
        originator_id=account.id,
        originator_version=account.version + 1,
        occurred_at=now,
        old_member_id=card,
        new_member_id=cmd.new_member_id,
        store_id=cmd.store_id,
        reason=cmd.reason,
        operator=operator,
    )
    alias = CardAliased(
        originator_id=ids.member_id(cmd.new_member_id),
        originator_version=1,
        member_id=cmd.new_member_id,
        account_id=account.id,
        store_id=cmd.store_id,
        occurred_at=now,
    )
    return [replaced, alias], replacement_of(replaced)


def replacement_of(event: CardReplaced) -> Replacement:
    return Replacement(
        member_id=event.new_member_id,
        replaced_member_id=event.old_member_id,
        store_id=event.store_id,
        reason=event.reason,
        occurred_at=event.occurred_at,
    )


def _higher(rules: RuleSet | None, a: str | None, b: str | None) -> str | None:
    if rules is None or b is None:
        return a
    return b if rank(rules, b) > rank(rules, a) else a


def merge(
    account: Member,
    duplicate: Member,
    cmd: MergeMember,
    rules: RuleSet | None,
    *,
    operator: str,
    now: datetime,
) -> tuple[list[DomainEvent], Merger]:
    """Move everything of `duplicate` into `account`. Pure."""
    if duplicate.id == account.id:
        raise InvalidInput("a member cannot be merged into itself", field="from_member_id")
    if held(duplicate, now):
        raise Conflict(
            "the duplicate has a redemption on hold: capture or void it first",
            field="from_member_id",
        )
    lots = [lot for lot in duplicate.lots if lot.remaining > 0]
    if len(lots) > MOVED_LOTS_MAX:
        raise InvalidInput(f"more than {MOVED_LOTS_MAX} lots to move", field="from_member_id")
    base = MERGED_LOT_BASE + (account.version + 1) * (MOVED_LOTS_MAX + 1)
    moved_in = [
        MovedLot(
            from_lot_id=lot.lot_id,
            lot=msgspec.structs.replace(lot, lot_id=base + n, points=lot.remaining),
        )
        for n, lot in enumerate(lots, start=1)
    ]
    common = {
        "occurred_at": now,
        "into_member_id": account.member_id,
        "from_member_id": duplicate.member_id,
        "from_account_id": duplicate.id,
        "reason": cmd.reason,
        "debt_points": duplicate.debt_points,
        "stored_value_fen": duplicate.stored_value_fen,
        "spend": list(duplicate.spend),
        "operator": operator,
    }
    out = MemberMerged(
        originator_id=duplicate.id,
        originator_version=duplicate.version + 1,
        direction="out",
        lots=[MovedLot(from_lot_id=lot.lot_id, lot=msgspec.structs.replace(lot)) for lot in lots],
        tier=duplicate.tier,
        **common,  # type: ignore[arg-type]
    )
    into = MemberMerged(
        originator_id=account.id,
        originator_version=account.version + 1,
        direction="in",
        lots=moved_in,
        tier=_higher(rules, account.tier, duplicate.tier),
        **common,  # type: ignore[arg-type]
    )
    return [out, into], merger_of(into)


def merger_of(event: MemberMerged) -> Merger:
    return Merger(
        member_id=event.into_member_id,
        from_member_id=event.from_member_id,
        lots_moved=len(event.lots),
        points_moved=sum(m.lot.remaining for m in event.lots),
        debt_points=event.debt_points,
        stored_value_fen=event.stored_value_fen,
        tier=event.tier,
        occurred_at=event.occurred_at,
    )
