"""The compliance report (督促检查): per department and month, whether the month's
records came in by the deadline, whether every expected category came in, and
how many rows were rejected (and why) or left unmatched in the ledger.

A record belongs to the month of its ``occurred_on``; it is on time when its
first revision was accepted by the deadline (the rule is data: compliance.yaml).
Nil returns (零报告) count as receiving a category with no records.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.problems import FieldError, InvalidInput
from ecips_ingest.catalogue import Catalogue, ComplianceRules
from ecips_ingest.ledger_client import LedgerDirectory
from ecips_ingest.repository import ComplianceRepository, CountRepository, FirstSubmissions
from ecips_ingest.schemas import (
    CHINA,
    ComplianceReport,
    ComplianceRulesOut,
    DepartmentCompliance,
    Finding,
    RejectionCount,
)


def china_today(now: datetime) -> date:
    return now.astimezone(CHINA).date()


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def period_bounds(period: str) -> tuple[date, date]:
    """[first day, first day of the next month)."""
    year, month = (int(p) for p in period.split("-"))
    start = date(year, month, 1)
    end = date(year + month // 12, month % 12 + 1, 1)
    return start, end


def deadline_of(period: str, rules: ComplianceRules) -> datetime:
    """The last instant a record of the month counts as on time."""
    _, next_month = period_bounds(period)
    zone = timezone(timedelta(hours=rules.deadline.utc_offset_hours))
    due = next_month.replace(day=rules.deadline.day_of_next_month)
    return datetime.combine(due, time.max, tzinfo=zone)


def submission_window_period(now: datetime, rules: ComplianceRules) -> str:
    """The month whose submissions are due next (a row with no usable date counts there)."""
    zone = timezone(timedelta(hours=rules.deadline.utc_offset_hours))
    local = now.astimezone(zone).date()
    if local.day <= rules.deadline.day_of_next_month:
        local = local.replace(day=1) - timedelta(days=1)
    return period_of(local)


class ComplianceReporter:
    def __init__(
        self,
        session: AsyncSession,
        catalogue: Catalogue,
        ledger: LedgerDirectory | None,
        now: datetime,
    ) -> None:
        self._catalogue = catalogue
        self._rules = catalogue.compliance
        self._ledger = ledger
        self._now = now
        self._repo = ComplianceRepository(session)
        self._counts = CountRepository(session)

    async def report(self, period: str, department: str | None = None) -> ComplianceReport:
        start, end = period_bounds(period)
        if start > china_today(self._now):
            raise InvalidInput(
                [
                    FieldError(
                        field="period", code="period_in_future", message=f"{period} has not begun"
                    )
                ]
            )
        departments = list(self._catalogue.departments.values())
        if department is not None:
            departments = [d for d in departments if d.code == department]
            if not departments:
                raise InvalidInput(
                    [
                        FieldError(
                            field="department",
                            code="unknown_department",
                            message=f"unknown department {department!r}; see GET /v1/departments",
                        )
                    ]
                )
        deadline = deadline_of(period, self._rules)
        passed = self._now > deadline
        firsts: dict[str, list[FirstSubmissions]] = defaultdict(list)
        for row in await self._repo.first_submissions(start, end, deadline):
            firsts[row.department].append(row)
        counts: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
        last_at: dict[str, datetime] = {}
        for count in await self._counts.for_period(period):
            counts[count.department][(count.outcome, count.code)] += count.rows
            if count.department not in last_at or count.last_at > last_at[count.department]:
                last_at[count.department] = count.last_at
        nil: dict[str, dict[str, datetime]] = defaultdict(dict)
        for declared in await self._repo.nil_returns(period, department):
            nil[declared.department][declared.category] = declared.declared_at
        notes: list[str] = []
        unmatched = await self._unmatched(period, notes)

        items: list[DepartmentCompliance] = []
        for dept in departments:
            by_category = {row.category: row for row in firsts.get(dept.code, [])}
            nil_returns = nil.get(dept.code, {})
            received = set(by_category) | set(nil_returns)
            received_in_time = {c for c, row in by_category.items() if row.records > row.late} | {
                c for c, at in nil_returns.items() if at <= deadline
            }
            expected = list(dept.expected_monthly)
            missing = [c for c in expected if c not in received]
            records = sum(r.records for r in by_category.values())
            late = sum(r.late for r in by_category.values())
            dept_counts = counts.get(dept.code, {})
            accepted = sum(n for (o, _), n in dept_counts.items() if o == "accepted")
            unchanged = sum(n for (o, _), n in dept_counts.items() if o == "unchanged")
            rejected = sum(n for (o, _), n in dept_counts.items() if o == "rejected")
            received_rows = accepted + unchanged + rejected
            share = rejected / received_rows if received_rows else None
            codes = sorted(
                ((code, n) for (o, code), n in dept_counts.items() if o == "error"),
                key=lambda cn: (-cn[1], cn[0]),
            )[: self._rules.top_rejection_codes]
            unmatched_count = None if unmatched is None else unmatched.get(dept.code, 0)
            inaccurate = (
                share is not None and share > self._rules.accuracy.max_rejected_share
            ) or (
                self._rules.accuracy.unmatched_counts_as_inaccurate
                and unmatched_count is not None
                and unmatched_count > 0
            )
            on_time = (
                (late == 0 and all(c in received_in_time for c in expected)) if passed else None
            )
            findings: list[Finding] = []
            if on_time is False:
                findings.append("late")
            if missing and passed:
                findings.append("incomplete")
            if inaccurate:
                findings.append("inaccurate")
            latest = [r.last_at for r in by_category.values()]
            if dept.code in last_at:
                latest.append(last_at[dept.code])
            items.append(
                DepartmentCompliance(
                    department=dept.code,
                    name=dept.name,
                    kind=dept.kind,
                    expected_categories=expected,
                    received_categories=sorted(received),
                    received_by_deadline=sorted(received_in_time),
                    missing_categories=missing,
                    nil_returns=sorted(nil_returns),
                    records=records,
                    late_records=late,
                    rows_received=received_rows,
                    rows_accepted=accepted,
                    rows_unchanged=unchanged,
                    rows_rejected=rejected,
                    rejected_share=round(share, 4) if share is not None else None,
                    top_rejection_codes=[RejectionCount(code=c, rows=n) for c, n in codes],
                    unmatched_records=unmatched_count,
                    last_submission_at=max(latest) if latest else None,
                    on_time=on_time,
                    complete=not missing,
                    accurate=not inaccurate,
                    findings=findings,
                )
            )
        return ComplianceReport(
            period=period,
            deadline=deadline,
            deadline_passed=passed,
            as_of=self._now,
            rules=ComplianceRulesOut(
                deadline_day_of_next_month=self._rules.deadline.day_of_next_month,
                utc_offset_hours=self._rules.deadline.utc_offset_hours,
                max_rejected_share=self._rules.accuracy.max_rejected_share,
                unmatched_counts_as_inaccurate=self._rules.accuracy.unmatched_counts_as_inaccurate,
                source=self._rules.source,
                version=self._rules.version,
            ),
            notes=notes,
            items=items,
            total=len(items),
        )

    async def _unmatched(self, period: str, notes: list[str]) -> dict[str, int] | None:
        """Unmatched records per department per the ledger; None (with a note) when it
        cannot say."""
        if self._ledger is None:
            notes.append("unmatched_records is null: the ledger is not configured")
            return None
        answer = await self._ledger.unmatched(period)
        if answer.by_department is None:
            notes.append(f"unmatched_records is null: {answer.note}")
        return answer.by_department
