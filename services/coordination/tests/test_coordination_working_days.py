"""The deadline calendar and the overdue flag (pure functions)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from ecips_coordination.models import Task
from ecips_coordination.service import is_overdue
from ecips_coordination.working_days import add_working_days, china_date


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
