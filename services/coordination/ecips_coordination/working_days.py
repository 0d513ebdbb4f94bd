"""Working days and the deadlines derived from them.

Which days are worked is data (``catalogue/calendar.yaml``): weekends are off
unless listed as make-up working days (调休), weekdays are worked unless listed
as public holidays. Years the file does not cover count weekends only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

logger = logging.getLogger("ecips.coordination")

# Departments work in China time: a deadline "day" is a day in Beijing.
CHINA = timezone(timedelta(hours=8), name="Asia/Shanghai")

CALENDAR_FILE = Path(__file__).parent / "catalogue" / "calendar.yaml"


class CalendarError(RuntimeError):
    """The calendar file is invalid; the message names the entry."""


class _Holiday(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1)
    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> _Holiday:
        if self.end < self.start:
            raise ValueError(f"{self.name}: 'to' is before 'from'")
        if (self.end - self.start).days > 15:
            raise ValueError(f"{self.name}: longer than any public holiday")
        return self


class _WorkingDay(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    date: date
    name: str = Field(min_length=1)


class _Year(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    year: int = Field(ge=2000, le=2100)
    provisional: bool
    source: str = Field(min_length=1)
    holidays: list[_Holiday]
    working_days: list[_WorkingDay]

    @model_validator(mode="after")
    def _consistent(self) -> _Year:
        for holiday in self.holidays:
            if holiday.start.year != self.year and holiday.end.year != self.year:
                raise ValueError(f"{holiday.name} is not in {self.year}")
        for worked in self.working_days:
            if worked.date.weekday() < 5:
                raise ValueError(f"{worked.date} is a weekday: only weekends can be 调休 days")
        return self


class _CalendarFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    years: list[_Year] = Field(min_length=1)


class WorkingCalendar:
    def __init__(
        self,
        *,
        version: str,
        holidays: Iterable[date],
        working_days: Iterable[date],
        years: Iterable[int],
        provisional_years: Iterable[int] = (),
    ) -> None:
        self.version = version
        self.holidays = frozenset(holidays)
        self.working_days = frozenset(working_days)
        self.years = frozenset(years)
        self.provisional_years = frozenset(provisional_years)
        clash = self.holidays & self.working_days
        if clash:
            raise CalendarError(f"days both holiday and working day: {sorted(clash)}")
        self._warned: set[int] = set()

    def is_working_day(self, day: date) -> bool:
        if day.year not in self.years and day.year not in self._warned:
            self._warned.add(day.year)
            logger.warning(
                "no holiday calendar for this year: counting weekends only",
                extra={"year": day.year, "calendar_version": self.version},
            )
        if day in self.working_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
        if days < 0:
            raise ValueError("days must not be negative")
        current = start
        remaining = days
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current


def load_calendar(path: Path = CALENDAR_FILE) -> WorkingCalendar:
    try:
        raw = yaml.safe_load(path.read_text("utf-8"))
        data = _CalendarFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise CalendarError(f"cannot read {path}: {exc}") from exc
    except ValidationError as exc:
        raise CalendarError(f"{path} is invalid: {exc}") from exc
    holidays: set[date] = set()
    working: set[date] = set()
    seen: set[int] = set()
    for year in data.years:
        if year.year in seen:
            raise CalendarError(f"{path}: year {year.year} is listed twice")
        seen.add(year.year)
        for holiday in year.holidays:
            day = holiday.start
            while day <= holiday.end:
                holidays.add(day)
                day += timedelta(days=1)
        working.update(w.date for w in year.working_days)
    return WorkingCalendar(
        version=data.version,
        holidays=holidays,
        working_days=working,
        years=seen,
        provisional_years=[y.year for y in data.years if y.provisional],
    )


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    return load_calendar()


def is_working_day(day: date, calendar: WorkingCalendar | None = None) -> bool:
    return (calendar or default_calendar()).is_working_day(day)


def add_working_days(start: date, days: int, calendar: WorkingCalendar | None = None) -> date:
    """The ``days``-th working day after ``start`` (``start`` itself never counts)."""
    return (calendar or default_calendar()).add_working_days(start, days)


def china_date(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def china_today(now: datetime | None = None) -> date:
    return china_date(now or datetime.now(UTC))
