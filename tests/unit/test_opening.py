"""The import's pure core (SPEC 2.11): a line's checks, its events, the member they open, and
what the as-of fold, the liability and the history make of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from ledger.domain.errors import InvalidInput
from ledger.domain.member import balance, evolve
from ledger.domain.model import DomainEvent
from ledger.domain.opening import (
    ImportLine,
    MemberImported,
    OpeningLotImported,
    check_line,
    open_member,
)
from ledger.policies.asof import member_as_of
from ledger.policies.lots import expires_at
from ledger.policies.ruleset import RuleVersion
from ledger.policies.tiers import SpendEntry
from projections import liability
from projections.entries import entry_for
from tests.rulesets import SPEC_EXAMPLE, ruleset

pytestmark = pytest.mark.unit
RULES = ruleset(SPEC_EXAMPLE | {"effective_from": "2020-01-01T00:00:00+08:00"})
VERSION = RuleVersion(version=1, published_at=datetime(2020, 1, 1, tzinfo=UTC), rules=RULES)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def line(**fields: Any) -> ImportLine:
    base = {
        "member_id": "8800000001",
        "store_id": "F001",
        "enrolled_at": "2019-05-04T10:00:00+08:00",
        "source_ref": "crm-1",
    }
    return msgspec.convert(base | fields, ImportLine)


def opened(given: ImportLine) -> tuple[MemberImported, list[OpeningLotImported]]:
    check_line(given, NOW, RULES)
    return open_member(
        given, now=NOW, rules=RULES, rules_at=lambda _: VERSION, sealed=None, operator="t"
    )


def test_lots_keep_their_expiry_or_take_the_rules_and_due_ones_stay_out() -> None:
    member, lots = opened(
        line(
            lots=[
                {"points": 300, "earned_at": "2026-09-30T10:00:00+08:00"},
                {"points": 100, "earned_at": "2025-10-25T10:00:00+08:00"},  # due 2026-04-01
                {
                    "points": 200,
                    "earned_at": "2026-08-21T10:00:00+08:00",
                    "expires_at": "2030-01-01T00:00:00+08:00",
                },
            ]
        )
    )
    assert [(e.originator_version, e.lot.points) for e in lots] == [(2, 200), (3, 300)]
    assert lots[0].lot.expires_at == datetime.fromisoformat("2030-01-01T00:00:00+08:00")
    assert lots[0].rule_version is None  # given
    earned = datetime.fromisoformat("2026-09-30T10:00:00+08:00")
    assert (lots[1].lot.expires_at, lots[1].rule_version) == (expires_at(RULES, earned), 1)
    assert (member.lots_expired_on_import, member.points_expired_on_import) == (1, 100)
    assert all(e.source_ref == "crm-1" and e.lot.reference == "crm-1" for e in lots)


def test_the_opened_member_holds_its_tier_spend_months_and_stored_value() -> None:
    member, lots = opened(
        line(
            tier="gold",
            tier_spend=[
                {"month": "2025-03", "spend_fen": 120000},
                {"month": "2025-04", "spend_fen": 0},
            ],
            stored_value_fen=1500,
            lots=[{"points": 50, "earned_at": "2026-11-01T10:00:00+08:00"}],
        )
    )
    state = None
    for event in [member, *lots]:
        state = evolve(state, event)
        state.version = event.originator_version
    assert state is not None
    start = datetime.fromisoformat("2025-03-01T00:00:00+08:00")
    assert state.spend == [SpendEntry(start, 120000)]  # the month's first instant, chain time
    assert (state.tier, state.tier_marks, state.stored_value_fen) == ("gold", [], 1500)
    assert balance(state, NOW).points == 50
    default = opened(line())[0]
    assert default.tier == "normal"  # the lowest level when the line names none


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"enrolled_at": "1989-12-31T23:00:00+08:00"}, "enrolled_at"),
        ({"enrolled_at": (NOW + timedelta(hours=1)).isoformat()}, "enrolled_at"),
        ({"lots": [{"points": 1, "earned_at": "1980-01-01T00:00:00+08:00"}]}, "lots"),
        (
            {
                "lots": [
                    {
                        "points": 1,
                        "earned_at": "2026-01-01T00:00:00+08:00",
                        "expires_at": "2026-01-01T00:00:00+08:00",
                    }
                ]
            },
            "lots",
        ),
        ({"tier_spend": [{"month": "2025-03", "spend_fen": 1}] * 2}, "tier_spend"),
        ({"tier_spend": [{"month": "2027-01", "spend_fen": 1}]}, "tier_spend"),
        ({"tier": "platinum"}, "tier"),
    ],
)
def test_bad_lines_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_line(line(**fields), NOW, RULES)
    assert refused.value.field == field


def test_times_back_to_1990_and_no_31_day_bound() -> None:
    check_line(
        line(
            enrolled_at="1990-01-01T00:00:00+08:00",
            lots=[{"points": 1, "earned_at": "1990-06-01T00:00:00+08:00"}],
        ),
        NOW,
        RULES,
    )


def test_the_fold_the_liability_and_the_history_see_the_import() -> None:
    member, lots = opened(
        line(stored_value_fen=700, lots=[{"points": 40, "earned_at": "2026-11-01T10:00:00+08:00"}])
    )
    events: list[DomainEvent] = [member, *lots]
    then = member_as_of([member, *lots], NOW)
    assert (then.points, then.stored_value_fen, then.member_id) == (40, 700, "8800000001")
    assert member_as_of([member, *lots], datetime(2026, 10, 1, tzinfo=UTC)).points == 0
    assert liability.moves(member) == {liability.STORED_VALUE: 700}
    assert liability.moves(lots[0]) == {2: 40}
    new = liability.new_lot(lots[0])
    assert new is not None and (new.kind, new.rule_version) == ("import", None)
    entries = [entry_for(e) for e in events]  # type: ignore[arg-type]
    assert [e.points_delta for e in entries] == [0, 40]
    assert all("crm-1" in e.explanation and e.reference == "crm-1" for e in entries)
