"""Members brought from a legacy system (SPEC 2.11): the import line, its checks, and the events
that open a member with the points, tier and stored value the legacy system held.

`MemberImported` opens the member (enrolled at the legacy enrolment time, with its tier, its
tier-spend months and its stored value); one `OpeningLotImported` per lot follows, each with its
own earned and expiry times. A lot already due at import is not imported (counted as expired on
import). Neither event is an enrolment, a tier change or a store's accrual: settlement never
sees them, the liability does. Pure: the caller seals the personal data and gives the rule sets.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta

from ledger.domain import ids
from ledger.domain.commands import AmountFen, AwareDatetime, CardNumber, Identifier, Name
from ledger.domain.errors import InvalidInput, InvariantViolation, invariant
from ledger.domain.member import Member, OpeningEvent
from ledger.domain.model import born
from ledger.domain.personal import Ciphertext
from ledger.policies.lots import Lot, expires_at, is_due
from ledger.policies.ruleset import RuleSet, RuleVersion
from ledger.policies.tiers import SpendEntry

LOTS_MAX = 1_000
IMPORT_TIME_MIN_LOCAL = datetime(1990, 1, 1)  # noqa: DTZ001 - wall clock, zoned when checked
AHEAD_MAX = timedelta(minutes=5)
Month = Annotated[str, Meta(pattern=r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$")]


class ImportLot(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    points: Annotated[int, Meta(gt=0, le=100_000_000)]
    earned_at: AwareDatetime
    expires_at: AwareDatetime | None = None  # else by SPEC 2.5 from the rules in force then


class TierSpendMonth(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    month: Month  # 'YYYY-MM', chain time
    spend_fen: AmountFen


class ImportLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One member of an import file (a JSON line, or a members row with its lots rows)."""

    member_id: CardNumber
    store_id: Identifier
    enrolled_at: AwareDatetime
    source_ref: Identifier
    name: Name | None = None
    phone: Annotated[str, Meta(pattern=r"^\+?[0-9][0-9 -]{4,19}$")] | None = None
    id_number: Annotated[str, Meta(min_length=1, max_length=18)] | None = None
    birthday: date | None = None
    tier: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    tier_spend: Annotated[list[TierSpendMonth], Meta(max_length=1_200)] = []
    lots: Annotated[list[ImportLot], Meta(max_length=LOTS_MAX)] = []
    stored_value_fen: AmountFen = 0


class MemberImported(OpeningEvent, frozen=True, kw_only=True):
    """A member opened from the legacy system's record `source_ref`."""

    member_id: str
    store_id: str
    occurred_at: datetime  # the legacy enrolment
    tier: str | None  # holds until the first tier review
    tier_spend: list[SpendEntry]  # at the first instant of each month (chain time), like sales
    stored_value_fen: int
    sealed: Ciphertext | None  # name, phone, ID number, birthday under the member's key
    source_ref: str
    imported_at: datetime
    lots_expired_on_import: int  # lots of the line already due at import: not imported
    points_expired_on_import: int
    operator: str

    def applied_to(self, state: Member | None) -> Member:
        invariant(state is None, "a member is opened once")
        return Member(
            **born(self),
            member_id=self.member_id,
            store_id=self.store_id,
            enrolled_at=self.occurred_at,
            tier=self.tier,
            birthday=None,
            stored_value_fen=self.stored_value_fen,
            spend=list(self.tier_spend),
        )


class OpeningLotImported(OpeningEvent, frozen=True, kw_only=True):
    """A lot of the legacy system's, with its own earned and expiry times (`rule_version`: the
    version whose expiry rule gave `expires_at`; None when the line gave it)."""

    occurred_at: datetime  # the lot's earned_at
    source_ref: str
    lot: Lot
    rule_version: int | None
    operator: str

    def applied_to(self, state: Member | None) -> Member:
        if state is None:
            raise InvariantViolation("a lot is imported for an opened member")
        state.lots.append(msgspec.structs.replace(self.lot))
        return state


RulesAt = Callable[[datetime], RuleVersion | None]


def import_time_problem(value: datetime, now: datetime, rules: RuleSet) -> str | None:
    low = IMPORT_TIME_MIN_LOCAL.replace(tzinfo=rules.zone)
    if not low <= value <= now + AHEAD_MAX:
        return "must lie between 1990-01-01 (chain time) and now"
    return None


def check_line(line: ImportLine, now: datetime, rules: RuleSet) -> None:
    """What the wire types cannot say about a line (InvalidInput naming the field)."""
    problem = import_time_problem(line.enrolled_at, now, rules)
    if problem:
        raise InvalidInput(f"enrolled_at {problem}", field="enrolled_at")
    for n, lot in enumerate(line.lots, 1):
        problem = import_time_problem(lot.earned_at, now, rules)
        if problem:
            raise InvalidInput(f"lots[{n}].earned_at {problem}", field="lots")
        if lot.expires_at is not None and lot.expires_at <= lot.earned_at:
            raise InvalidInput(f"lots[{n}].expires_at is not after its earned_at", field="lots")
    months = [m.month for m in line.tier_spend]
    if len(set(months)) != len(months):
        raise InvalidInput("tier_spend names a month twice", field="tier_spend")
    if months and max(months) > now.astimezone(rules.zone).strftime("%Y-%m"):
        raise InvalidInput("tier_spend names a month after this one", field="tier_spend")
    if rules.tiers is None and line.tier is not None:
        raise InvalidInput("tier given, but the rule set has no tiers", field="tier")
    if rules.tiers is not None and line.tier is not None and rules.level(line.tier) is None:
        raise InvalidInput(f"tier {line.tier!r} is not a level of the rule set", field="tier")


def _month_start(month: str, rules: RuleSet) -> datetime:
    year, number = (int(part) for part in month.split("-"))
    return datetime(year, number, 1, tzinfo=rules.zone)


def open_member(
    line: ImportLine,
    *,
    now: datetime,
    rules: RuleSet,
    rules_at: RulesAt,
    sealed: Ciphertext | None,
    operator: str,
    member_uuid: UUID | None = None,
) -> tuple[MemberImported, list[OpeningLotImported]]:
    """The events that open the member of `line` (checked with `check_line`); `rules` are those
    in force now (the tier), `rules_at(t)` the version an expiry computed for a lot earned at t
    follows (the version in force then, or the first before any)."""
    member_uuid = member_uuid or ids.member_id(line.member_id)
    lots, expired, expired_points = _lots(line, member_uuid, now, rules_at, operator)
    first_tier = rules.tiers.levels[0].code if rules.tiers else None
    opened_member = MemberImported(
        originator_id=member_uuid,
        originator_version=1,
        member_id=line.member_id,
        store_id=line.store_id,
        occurred_at=line.enrolled_at,
        tier=line.tier or first_tier,
        tier_spend=[
            SpendEntry(_month_start(m.month, rules), m.spend_fen)
            for m in line.tier_spend
            if m.spend_fen
        ],
        stored_value_fen=line.stored_value_fen,
        sealed=sealed,
        source_ref=line.source_ref,
        imported_at=now,
        lots_expired_on_import=expired,
        points_expired_on_import=expired_points,
        operator=operator,
    )
    return opened_member, lots


def _lots(
    line: ImportLine, member_uuid: UUID, now: datetime, rules_at: RulesAt, operator: str
) -> tuple[list[OpeningLotImported], int, int]:
    """The line's lots not yet due at `now` (versions 2, 3, … in order earned), and how many
    lots and points were due."""
    lots: list[OpeningLotImported] = []
    expired = expired_points = 0
    for lot in sorted(line.lots, key=lambda lot: lot.earned_at):
        version = None if lot.expires_at is not None else rules_at(lot.earned_at)
        due = lot.expires_at or (expires_at(version.rules, lot.earned_at) if version else None)
        opened = Lot(
            lot_id=len(lots) + 2,
            reference=line.source_ref,
            earned_at=lot.earned_at,
            available_at=lot.earned_at,
            expires_at=due,
            points=lot.points,
            remaining=lot.points,
        )
        if is_due(opened, now):
            expired, expired_points = expired + 1, expired_points + lot.points
            continue
        lots.append(
            OpeningLotImported(
                originator_id=member_uuid,
                originator_version=opened.lot_id,
                occurred_at=lot.earned_at,
                source_ref=line.source_ref,
                lot=opened,
                rule_version=version.version if version else None,
                operator=operator,
            )
        )
    return lots, expired, expired_points
