"""Enrolment: a card becomes a member; a national ID number can belong to one member only.

The ID number is checked (GB 11643, with python-stdnum: date of birth, check character; a
15-digit number is converted to its 18-digit form) and kept only sealed with the rest of the
personal data. What links the member to the person (the ID number's and the phone's keyed
hashes, the birthday's month and day) goes to the identity index beside the log, never into
the log (`ledger.infrastructure.identityindex`), so that erasure can delete it.

`IdentityClaimed` (an aggregate per ID-number hash) and `MemberEnrolled.id_hash`/`birthday`
are how enrolments were recorded before the index: they still decode, and new code writes
neither.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime

import msgspec
from stdnum.cn import ric
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from ledger.domain import ids
from ledger.domain.commands import EnrolMember
from ledger.domain.errors import InvalidIdNumber
from ledger.domain.member import MemberEnrolled
from ledger.domain.model import Aggregate, DomainEvent, born
from ledger.domain.personal import Ciphertext, PersonalData


class IdentityClaimed(DomainEvent, frozen=True, kw_only=True):
    member_id: str


class IdentityClaim(Aggregate, kw_only=True):
    member_id: str


def evolve(state: IdentityClaim | None, event: DomainEvent) -> IdentityClaim:
    if not isinstance(event, IdentityClaimed):
        raise TypeError(f"IdentityClaim cannot apply {type(event).__name__}")
    return IdentityClaim(
        **born(event),
        member_id=event.member_id,
    )


def enrol(
    cmd: EnrolMember,
    *,
    occurred_at: datetime,
    tier: str | None,
    fingerprint: str,
    operator: str,
    sealed: Ciphertext | None = None,
) -> list[DomainEvent]:
    """The enrolment's event. `sealed` is `personal_data(cmd)` sealed under the member's key;
    nothing derived from the personal data is in the event (it goes to the identity index)."""
    return [
        MemberEnrolled(
            originator_id=ids.member_id(cmd.member_id),
            originator_version=1,
            member_id=cmd.member_id,
            store_id=cmd.store_id,
            occurred_at=occurred_at,
            tier=tier,
            birthday=None,
            sealed=sealed,
            id_hash=None,
            fingerprint=fingerprint,
            operator=operator,
        )
    ]


def id_number_18(text: str) -> str:
    """The ID number in its 18-character form (GB 11643), or InvalidIdNumber (422)."""
    number = text.strip().upper()
    if len(number) == 15 and number.isdigit():  # 1st generation: 19YY, then a check character
        body = number[:6] + "19" + number[6:]
        number = body + ric.calc_check_digit(body + "0")
    try:
        return _validated(number)
    except ValidationError as e:
        raise InvalidIdNumber(
            f"id_number is not a valid national ID number (GB 11643): {e}", field="id_number"
        ) from e


_PLAIN = re.compile(r"[0-9]{17}[0-9X]")


def _validated(number: str) -> str:
    """`stdnum.cn.ric.validate`, with the place of birth (a table lookup by the first six digits
    and the year, the slow part) remembered: an import checks a million numbers."""
    if not _PLAIN.fullmatch(number):  # anything but 17 ASCII digits and a check character
        number = ric.compact(number)
    if len(number) != 18:
        raise InvalidLength
    if not all("0" <= c <= "9" for c in number[:-1]):
        raise InvalidFormat
    if number[-1] != ric.calc_check_digit(number):
        raise InvalidChecksum
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))  # ric.get_birth_date
    except ValueError as e:
        raise InvalidComponent from e
    _birth_place(number[:6], number[6:10])
    return number


@functools.lru_cache(maxsize=100_000)
def _birth_place(region: str, year: str) -> None:
    ric.get_birth_place(f"{region}{year}01010000")  # raises when unknown in that year


def phone_digits(text: str) -> str:
    """The phone number as the index keys it: digits only, without a leading 86 (13 digits)
    or 0086 (15 digits) (SPEC 2.8)."""
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    if len(digits) == 15 and digits.startswith("0086"):
        return digits[4:]
    return digits


class PersonalKeys(msgspec.Struct, frozen=True, kw_only=True):
    """What the identity index keeps of an enrolment's personal data, before hashing."""

    id_number: str | None  # 18 characters
    phone: str | None  # digits
    birthday: str | None  # 'MM-DD'


def personal_keys(cmd: EnrolMember) -> PersonalKeys:
    return PersonalKeys(
        id_number=id_number_18(cmd.id_number) if cmd.id_number else None,
        phone=phone_digits(cmd.phone) if cmd.phone else None,
        birthday=cmd.birthday.strftime("%m-%d") if cmd.birthday else None,
    )


def public_part(cmd: EnrolMember) -> EnrolMember:
    """The request without its personal data (what the log's fingerprint covers)."""
    return msgspec.structs.replace(cmd, name=None, phone=None, id_number=None, birthday=None)


def personal_data(cmd: EnrolMember) -> PersonalData:
    return PersonalData(
        name=cmd.name,
        phone=cmd.phone,
        id_number=id_number_18(cmd.id_number) if cmd.id_number else None,
        birthday=cmd.birthday.isoformat() if cmd.birthday else None,
    )
