"""Calendar arithmetic in the chain's time zone: months, clearance dates, birthdays."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def add_months(instant: datetime, months: int, zone: ZoneInfo) -> datetime:
    """The same wall-clock time `months` later (or earlier) in `zone`, day clamped to the month."""
    local = instant.astimezone(zone)
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def start_of_day_after(day: date, zone: ZoneInfo) -> datetime:
    """00:00 in `zone` of the day after `day`."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def is_birthday(month_day: str, instant: datetime, zone: ZoneInfo) -> bool:
    """Whether `instant` falls on the member's birthday ('MM-DD'); 29 Feb counts as 28 Feb
    in years without one."""
    local = instant.astimezone(zone).date()
    month, day = (int(part) for part in month_day.split("-"))
    if month == 2 and day == 29 and not calendar.isleap(local.year):
        day = 28
    return (local.month, local.day) == (month, day)


def is_birthday_month(month_day: str, instant: datetime, zone: ZoneInfo) -> bool:
    """Whether `instant` falls in the month of the member's birthday ('MM-DD'), chain time."""
    return instant.astimezone(zone).month == int(month_day.split("-", maxsplit=1)[0])


def month_of(instant: datetime, zone: ZoneInfo) -> str:
    """The 'YYYY-MM' period an instant belongs to in `zone`."""
    local = instant.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def next_daily(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first instant strictly after `after` whose wall-clock time in `zone` is `at`."""
    local = after.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate
