"""The deadline calendar and the overdue flag (pure functions)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from ecips_coordination.models import Task
from ecips_coordination.service import is_overdue
from ecips_coordination.working_days import (
    CALENDAR_FILE,
    CalendarError,
    add_working_days,
    china_date,
    default_calendar,
    is_working_day,
    load_calendar,
)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        (date(2026, 3, 2), 3, date(2026, 3, 5)),  # Monday -> Thursday
        (date(2026, 3, 5), 3, date(2026, 3, 10)),  # Thursday -> next Tuesday
        (date(2026, 3, 6), 3, date(2026, 3, 11)),  # Friday -> next Wednesday
        (date(2026, 3, 7), 3, date(2026, 3, 11)),  # Saturday counts from Monday
        (date(2026, 3, 2), 10, date(2026, 3, 16)),  # two working weeks
        (date(2026, 3, 2), 0, date(2026, 3, 2)),
    ],
)
def test_add_working_days_skips_weekends(start: date, days: int, due: date) -> None:
    assert add_working_days(start, days) == due


def test_negative_working_days_are_refused() -> None:
    with pytest.raises(ValueError):
        add_working_days(date(2026, 3, 2), -1)


def test_china_date_is_utc_plus_eight() -> None:
    assert china_date(datetime(2026, 3, 1, 16, 30, tzinfo=UTC)) == date(2026, 3, 2)
    assert china_date(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) == date(2026, 3, 1)


def _task(status: str) -> Task:
    return Task(
        task_id=uuid.uuid4(),
        status=status,
        claim_due=date(2026, 3, 5),
        feedback_due=date(2026, 3, 16),
    )


@pytest.mark.parametrize(
    ("status", "today", "overdue"),
    [
        ("open", date(2026, 3, 5), False),  # the due day itself is still in time
        ("open", date(2026, 3, 6), True),  # not claimed in time
        ("claimed", date(2026, 3, 6), False),  # claimed: only the feedback deadline counts
        ("claimed", date(2026, 3, 17), True),
        ("done", date(2026, 4, 1), False),
    ],
)
def test_overdue_follows_the_deadline_that_applies(status: str, today: date, overdue: bool) -> None:
    noon_in_china = datetime(today.year, today.month, today.day, 4, 0, tzinfo=UTC)
    assert is_overdue(_task(status), noon_in_china) is overdue


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # Thursday before the Dragon Boat Festival (Fri 06-19 to Sun 06-21, 2026):
        # the holiday and the weekend both skipped.
        (date(2026, 6, 18), 3, date(2026, 6, 24)),
        # Wednesday before National Day (10-01 to 10-07): 10-08, 10-09, then the
        # make-up Saturday 10-10 is the third working day.
        (date(2026, 9, 30), 3, date(2026, 10, 10)),
        (date(2026, 9, 30), 10, date(2026, 10, 20)),
        # Spring Festival 2026 (02-15 to 02-23) with make-up Saturdays 02-14 and 02-28.
        (date(2026, 2, 13), 1, date(2026, 2, 14)),
        (date(2026, 2, 14), 1, date(2026, 2, 24)),
        (date(2026, 2, 26), 2, date(2026, 2, 28)),
        # 2025: New Year's Day alone, and the eight-day National Day / Mid-Autumn break.
        (date(2024, 12, 31), 1, date(2025, 1, 2)),
        (date(2025, 9, 30), 1, date(2025, 10, 9)),
        (date(2025, 10, 10), 1, date(2025, 10, 11)),  # Saturday 10-11 is worked
    ],
)
def test_add_working_days_skips_holidays_and_counts_makeup_days(
    start: date, days: int, due: date
) -> None:
    assert add_working_days(start, days) == due


def test_the_calendar_covers_2025_to_2027_and_marks_what_is_provisional() -> None:
    calendar = default_calendar()
    assert {2025, 2026, 2027} <= calendar.years
    assert calendar.provisional_years == {2027}
    assert not is_working_day(date(2027, 2, 8))  # 初三, a statutory day
    assert not is_working_day(date(2026, 10, 1))
    assert is_working_day(date(2026, 9, 20))  # a Sunday worked (调休)
    worked_weekend_days = sorted(d for d in calendar.working_days if d.year == 2026)
    assert all(d.weekday() >= 5 for d in worked_weekend_days)
    assert len(worked_weekend_days) == 6


def test_a_year_without_data_counts_weekends_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    calendar = load_calendar()
    with caplog.at_level(logging.WARNING, logger="ecips.coordination"):
        assert calendar.add_working_days(date(2031, 10, 1), 1) == date(2031, 10, 2)
    assert "no holiday calendar" in caplog.text


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("- {date: 2026-10-09, name: 周五}", "weekday"),
        ("- {date: 2026-10-03, name: 国庆}", "both holiday and working day"),
    ],
)
def test_a_bad_calendar_stops_startup(tmp_path: Path, broken: str, message: str) -> None:
    text = CALENDAR_FILE.read_text("utf-8").replace(
        "      - {date: 2026-10-10, name: 国庆节调休}", "      " + broken
    )
    path = tmp_path / "calendar.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(CalendarError, match=message):
        load_calendar(path)


@pytest.mark.parametrize(
    ("status", "today", "overdue"),
    [
        # Opened 2026-09-30: claim due on the make-up Saturday 10-10, feedback on 10-20.
        ("open", date(2026, 10, 7), False),  # the holiday does not eat the deadline
        ("open", date(2026, 10, 10), False),  # due day, a worked Saturday
        ("open", date(2026, 10, 11), True),  # the Sunday after it
        ("claimed", date(2026, 10, 20), False),
        ("claimed", date(2026, 10, 21), True),
    ],
)
def test_overdue_across_a_weekend_and_a_public_holiday(
    status: str, today: date, overdue: bool
) -> None:
    opened = date(2026, 9, 30)
    task = Task(
        task_id=uuid.uuid4(),
        status=status,
        claim_due=add_working_days(opened, 3),
        feedback_due=add_working_days(opened, 10),
    )
    noon_in_china = datetime(today.year, today.month, today.day, 4, 0, tzinfo=UTC)
    assert is_overdue(task, noon_in_china) is overdue
