"""The aggregates' copy (what the repository hands out from its cache): a change to the copy
never reaches the cached original, at any depth that state is mutable."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from ledger.domain.member import Member
from ledger.policies.lots import Hold, Lot
from ledger.policies.tiers import SpendEntry

pytestmark = pytest.mark.unit
T = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_copied_member_shares_no_mutable_state() -> None:
    lot = Lot(
        lot_id=2,
        reference="R1",
        earned_at=T,
        available_at=T,
        expires_at=None,
        points=10,
        remaining=10,
    )
    member = Member(
        id=uuid4(),
        version=3,
        created_on=T,
        modified_on=T,
        member_id="M1",
        store_id="S1",
        enrolled_at=T,
        tier="normal",
        birthday=None,
        lots=[lot],
        spend=[SpendEntry(T, 100)],
        holds={"h": Hold(points=1, expires_at=T)},
    )
    twin = copy.deepcopy(member)
    assert twin == member and twin is not member
    twin.lots[0].remaining = 0
    twin.lots.append(lot)
    twin.spend.clear()
    twin.holds.clear()
    twin.debt_points = 5
    assert member.lots == [lot] and member.lots[0].remaining == 10
    assert member.spend == [SpendEntry(T, 100)] and member.holds and member.debt_points == 0
