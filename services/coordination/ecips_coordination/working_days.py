"""Working days and the deadlines derived from them.

Only weekends are non-working for now. Everything that asks "is this a
working day" goes through :func:`is_working_day`, so public holidays and
make-up working days (调休) can later come from data without touching callers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

# Departments work in China time: a deadline "day" is a day in Beijing.
CHINA = timezone(timedelta(hours=8), name="Asia/Shanghai")


def is_working_day(day: date) -> bool:
    return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


def china_date(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def china_today(now: datetime | None = None) -> date:
    return china_date(now or datetime.now(UTC))
