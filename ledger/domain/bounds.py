"""The bounds every value given to the ledger keeps (SPEC 3.1): times, dates, text, cursors.

The API checks them at the edge, field by field (`api/validation.py`), with the chain's time
zone; the domain checks a business time again before it reaches an event (`check_instant`), so a
value no view can handle (year 1, year 9999) is refused wherever it comes from.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo

from ledger.domain.errors import InvalidInput

# Times given to the API: [2000-01-01, 2100-01-01) in chain time.
TIME_MIN_LOCAL = datetime(2000, 1, 1)  # noqa: DTZ001 - a wall-clock time, zoned when checked
TIME_MAX_LOCAL = datetime(2100, 1, 1)  # noqa: DTZ001 - likewise (exclusive)
# The domain's backstop, in any zone at all (UTC-12 … UTC+14): a time inside these converts to
# every zone and sorts as UTC text in every view.
TIME_MIN = datetime(2000, 1, 1, tzinfo=UTC) - timedelta(hours=14)
TIME_MAX = datetime(2100, 1, 1, tzinfo=UTC) + timedelta(hours=12)
BIRTHDAY_MIN = date(1900, 1, 1)
INTEGER_MAX = 2**63 - 1  # cursors and limits: what a signed 64-bit column holds
PERIOD_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])$"  # 2000-01 … 2099-12
# U+0000–U+001F: never in text; tab and newline only in free-text reasons.
_CONTROL = re.compile("[\x00-\x1f]")
_CONTROL_BUT_TAB_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f]")
NO_CONTROL_PATTERN = "^[^\\x00-\\x1f]*$"
FREE_TEXT_PATTERN = "^[^\\x00-\\x08\\x0b-\\x1f]*$"
FREE_TEXT_FIELDS = frozenset({"reason"})


def time_problem(value: datetime, zone: tzinfo | None = None) -> str | None:
    """Why `value` is outside [2000-01-01, 2100-01-01) in `zone` (any zone when None)."""
    if zone is None:
        low, high = TIME_MIN, TIME_MAX
    else:
        low, high = TIME_MIN_LOCAL.replace(tzinfo=zone), TIME_MAX_LOCAL.replace(tzinfo=zone)
    if value.tzinfo is None:
        return "needs a UTC offset"
    if not low <= value < high:
        return "must lie in [2000-01-01, 2100-01-01) chain time"
    return None


def date_problem(value: date, today: date) -> str | None:
    """Why a date given to the API (a birthday) is not a real date from 1900 to today."""
    if not BIRTHDAY_MIN <= value <= today + timedelta(days=1):  # a day's grace for time zones
        return "must be a date from 1900-01-01 to today"
    return None


def text_problem(value: str, field: str) -> str | None:
    """Why `value` may not be text given to the ledger (control characters)."""
    pattern = _CONTROL_BUT_TAB_NEWLINE if field in FREE_TEXT_FIELDS else _CONTROL
    if pattern.search(value):
        return "must not hold control characters"
    return None


def check_instant(value: datetime, field: str) -> datetime:
    """The domain's backstop for a business time about to reach an event (422 otherwise)."""
    problem = time_problem(value)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}", field=field)
    return value


def check_text(value: str, field: str) -> str:
    problem = text_problem(value, field)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}", field=field)
    return value
