"""Answers to the ledger's read API (non-public data: callers are audited
before they get here)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.auth import Principal
from ecips_common.contracts import Encumbrance, FormerName
from ecips_common.identifiers import (
    IdentifierError,
    validate_registration_number,
    validate_uscc,
)
from ecips_common.problems import FieldError, InvalidInput, NotFound
from ecips_ledger.master_data import status_code_of
from ecips_ledger.models import Enterprise, FiledRecord
from ecips_ledger.repository import LedgerRepository, WaitScope, WaitState
from ecips_ledger.schemas import (
    AuditEntryOut,
    AuditPage,
    EnterpriseList,
    EnterpriseLookup,
    EnterpriseLookupResult,
    EnterpriseOut,
    FiledRecordOut,
    FiledRecordPage,
    QualityCheck,
    QualityFinding,
    QualityReport,
    RevisionOut,
    WaitOut,
    WaitPage,
)
from ecips_ledger.service import flags_of

# Reporting periods are calendar months in China Standard Time (no DST).
CHINA_TIME = timezone(timedelta(hours=8), "CST")
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")
SECONDS_PER_DAY = 86_400


def parse_uscc(raw: str) -> str:
    try:
        return validate_uscc(raw)
    except IdentifierError as exc:
        raise InvalidInput([FieldError(field="uscc", code=exc.code, message=exc.message)]) from exc


def parse_registration_number(raw: str) -> str:
    try:
        return validate_registration_number(raw)
    except IdentifierError as exc:
        raise InvalidInput(
            [FieldError(field="registration_number", code=exc.code, message=exc.message)]
        ) from exc


def parse_period(raw: str, *, field: str = "period") -> tuple[datetime, datetime]:
    """``YYYY-MM`` → the month's bounds [start, end) in China Standard Time."""
    match = _PERIOD.match(raw)
    month = int(match.group(2)) if match else 0
    if match is None or not 1 <= month <= 12:
        raise InvalidInput(
            [FieldError(field=field, code="invalid_period", message="expected YYYY-MM")]
        )
    year = int(match.group(1))
    start = datetime(year, month, 1, tzinfo=CHINA_TIME)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=CHINA_TIME)
    return start, end


def _invalid_cursor() -> InvalidInput:
    return InvalidInput(
        [
            FieldError(
                field="after",
                code="invalid_cursor",
                message="not a cursor from a previous page's next_cursor",
            )
        ]
    )


def encode_cursor(occurred_on: date, record_id: uuid.UUID) -> str:
    return f"{occurred_on.isoformat()}_{record_id}"


def decode_cursor(cursor: str) -> tuple[date, uuid.UUID]:
    try:
        day, record_id = cursor.split("_", 1)
        return date.fromisoformat(day), uuid.UUID(record_id)
    except ValueError as exc:
        raise _invalid_cursor() from exc


def encode_wait_cursor(since: datetime, record_id: uuid.UUID) -> str:
    return f"{since.isoformat()}_{record_id}"


def decode_wait_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        since, record_id = cursor.rsplit("_", 1)
        parsed = datetime.fromisoformat(since)
    except ValueError as exc:
        raise _invalid_cursor() from exc
    if parsed.tzinfo is None:
        raise _invalid_cursor()
    try:
        return parsed, uuid.UUID(record_id)
    except ValueError as exc:
        raise _invalid_cursor() from exc


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def enterprise_out(enterprise: Enterprise) -> EnterpriseOut:
    return EnterpriseOut(
        uscc=enterprise.uscc,
        registration_number=enterprise.registration_number,
        name=enterprise.name,
        former_names=[FormerName.model_validate(f) for f in enterprise.former_names],
        legal_representative=enterprise.legal_representative,
        enterprise_type=enterprise.enterprise_type,
        registered_capital=enterprise.registered_capital,
        established_on=enterprise.established_on,
        address=enterprise.address,
        business_scope=enterprise.business_scope,
        registration_authority=enterprise.registration_authority,
        division_code=enterprise.division_code,
        status=enterprise.status,
        status_code=status_code_of(enterprise.status),
        status_since=enterprise.status_since,
        registered=enterprise.registered,
        flags=flags_of(enterprise),
        equity_freezes=[Encumbrance.model_validate(e) for e in enterprise.equity_freezes],
        chattel_mortgages=[Encumbrance.model_validate(e) for e in enterprise.chattel_mortgages],
        equity_pledges=[Encumbrance.model_validate(e) for e in enterprise.equity_pledges],
        record_counts=enterprise.record_counts,
        penalty_counts_by_year=enterprise.penalty_counts_by_year,
        version=enterprise.version,
        updated_at=enterprise.updated_at,
    )


def wait_out(record: FiledRecord, now: datetime) -> WaitOut:
    since = record.unmatched_since or record.received_at
    waiting = not record.matched
    until = now if waiting or record.filed_at is None else record.filed_at
    seconds = max(0, int((until - since).total_seconds()))
    return WaitOut(
        record_id=record.record_id,
        department=record.department,
        source_id=record.source_id,
        category=record.category,
        uscc=record.uscc,
        registration_number=record.registration_number,
        enterprise_name=record.enterprise_name,
        received_at=since,
        filed_at=None if waiting else record.filed_at,
        waiting=waiting,
        waited_days=seconds // SECONDS_PER_DAY,
        waited_seconds=seconds,
    )


class LedgerReader:
    def __init__(self, session: AsyncSession) -> None:
        self._repo = LedgerRepository(session)

    async def enterprise(self, raw_uscc: str) -> EnterpriseOut:
        uscc = parse_uscc(raw_uscc)
        enterprise = await self._repo.get_enterprise(uscc)
        if enterprise is None:
            raise NotFound("enterprise", f"No enterprise is registered under {uscc}.")
        return enterprise_out(enterprise)

    async def lookup(self, request: EnterpriseLookup) -> EnterpriseLookupResult:
        """Many enterprises in one question; every identifier is checked first
        and a malformed one is named by its position."""
        errors: list[FieldError] = []
        usccs: list[str] = []
        numbers: list[str] = []
        for field, raw_values, parse, into in (
            ("usccs", request.usccs, validate_uscc, usccs),
            (
                "registration_numbers",
                request.registration_numbers,
                validate_registration_number,
                numbers,
            ),
        ):
            for index, raw in enumerate(raw_values):
                try:
                    into.append(parse(raw))
                except IdentifierError as exc:
                    errors.append(
                        FieldError(field=f"{field}.{index}", code=exc.code, message=exc.message)
                    )
        if errors:
            raise InvalidInput(errors)
        found = await self._repo.enterprises_in(set(usccs))
        return EnterpriseLookupResult(
            items=[enterprise_out(e) for e in found],
            registration_numbers=await self._repo.usccs_for_numbers(set(numbers)),
        )

    async def enterprises_by_number(self, raw_number: str) -> EnterpriseList:
        """The enterprise an old 15-digit registration number maps to (0 or 1)."""
        enterprise = await self._repo.enterprise_by_number(parse_registration_number(raw_number))
        return EnterpriseList(items=[enterprise_out(enterprise)] if enterprise else [])

    async def records(
        self,
        raw_uscc: str,
        *,
        category: str | None,
        status: str | None,
        department: str | None,
        occurred_from: date | None,
        occurred_to: date | None,
        after: str | None,
        limit: int,
    ) -> FiledRecordPage:
        uscc = parse_uscc(raw_uscc)
        if occurred_from and occurred_to and occurred_from > occurred_to:
            raise InvalidInput(
                [FieldError(field="from", code="invalid_range", message="'from' is after 'to'")]
            )
        cursor = decode_cursor(after) if after else None
        if await self._repo.get_enterprise(uscc) is None:
            raise NotFound("enterprise", f"No enterprise is registered under {uscc}.")
        rows, total = await self._repo.records_page(
            uscc,
            category=category,
            status=status,
            department=department,
            occurred_from=occurred_from,
            occurred_to=occurred_to,
            after=cursor,
            limit=limit,
        )
        revisions = await self._repo.revisions_of([r.record_id for r in rows])
        items = [
            FiledRecordOut(
                record_id=r.record_id,
                uscc=uscc,
                registration_number=r.registration_number,
                category=r.category,
                department=r.department,
                source_id=r.source_id,
                enterprise_name=r.enterprise_name,
                revision=r.revision,
                status="revoked" if r.status == "revoked" else "active",
                occurred_on=r.occurred_on,
                data=r.data,
                disclosure=r.disclosure,
                publicity_period_days=r.publicity_period_days,
                revocation_reason=r.revocation_reason,
                revoked_at=r.revoked_at,
                version=r.version,
                filed_at=r.filed_at,
                revisions=[
                    RevisionOut.model_validate(v, from_attributes=True)
                    for v in revisions[r.record_id]
                ],
            )
            for r in rows
        ]
        next_cursor = (
            encode_cursor(rows[-1].occurred_on, rows[-1].record_id) if len(rows) == limit else None
        )
        return FiledRecordPage(items=items, next_cursor=next_cursor, total=total)

    async def audit(
        self,
        principal: Principal,
        *,
        department: str | None,
        uscc: str | None,
        before: int | None,
        limit: int,
    ) -> AuditPage:
        # Only a reports reader looks beyond their own department.
        if not principal.has("reports:read"):
            department = principal.department
        rows = await self._repo.audit_page(
            department=department, uscc=uscc, before=before, limit=limit
        )
        return AuditPage(
            items=[AuditEntryOut.model_validate(r, from_attributes=True) for r in rows],
            next_cursor=rows[-1].id if len(rows) == limit else None,
        )

    async def waits(
        self,
        *,
        state: WaitState,
        department: str | None,
        period: str | None,
        occurred_period: str | None,
        after: str | None,
        limit: int,
    ) -> WaitPage:
        """Records waiting (or that waited) for their enterprise's registration."""
        occurred = None
        if occurred_period:
            start, end = parse_period(occurred_period, field="occurred_period")
            occurred = (start.date(), end.date())
        scope = WaitScope(
            state=state,
            department=department,
            received=parse_period(period) if period else None,
            occurred=occurred,
        )
        cursor = decode_wait_cursor(after) if after else None
        now = datetime.now(UTC)
        rows = await self._repo.waits_page(scope, after=cursor, limit=limit)
        counts = await self._repo.waits_per_department(scope)
        last = rows[-1] if len(rows) == limit else None
        return WaitPage(
            items=[wait_out(r, now) for r in rows],
            counts=counts,
            total=sum(counts.values()),
            next_cursor=(
                encode_wait_cursor(last.unmatched_since, last.record_id)
                if last is not None and last.unmatched_since is not None
                else None
            ),
            as_of=now,
        )

    async def quality(
        self, *, checks: set[QualityCheck], older_than_days: int, limit: int
    ) -> QualityReport:
        now = datetime.now(UTC)
        counts: dict[str, int] = {}
        items: list[QualityFinding] = []
        if "missing_registration" in checks:
            groups, counts["missing_registration"] = await self._repo.waiting_groups(limit=limit)
            items += [
                QualityFinding(
                    check="missing_registration",
                    detail="records wait for an enterprise that has no registration",
                    uscc=g.uscc,
                    registration_number=g.registration_number,
                    departments=g.departments,
                    records=g.records,
                    since=g.oldest,
                    waited_days=(
                        int((now - g.oldest).total_seconds()) // SECONDS_PER_DAY
                        if g.oldest
                        else None
                    ),
                )
                for g in groups
            ]
        if "unmatched_overdue" in checks:
            rows, counts["unmatched_overdue"] = await self._repo.overdue_waits(
                waiting_since_before=now - timedelta(days=older_than_days), limit=limit
            )
            for row in rows:
                wait = wait_out(row, now)
                items.append(
                    QualityFinding(
                        check="unmatched_overdue",
                        detail=f"unmatched for more than {older_than_days} days",
                        uscc=row.uscc,
                        registration_number=row.registration_number,
                        record_id=row.record_id,
                        department=row.department,
                        source_id=row.source_id,
                        category=row.category,
                        enterprise_name=row.enterprise_name,
                        since=wait.received_at,
                        waited_days=wait.waited_days,
                    )
                )
        if "registration_revoked" in checks:
            enterprises, counts["registration_revoked"] = await self._repo.unregistered_enterprises(
                limit=limit
            )
            items += [
                QualityFinding(
                    check="registration_revoked",
                    detail="every registration record of this enterprise was revoked",
                    uscc=e.uscc,
                    registration_number=e.registration_number,
                    enterprise_name=e.name,
                    since=e.updated_at,
                )
                for e in enterprises
            ]
        if "name_mismatch" in checks:
            mismatches, counts["name_mismatch"] = await self._repo.name_mismatches(limit=limit)
            items += [
                QualityFinding(
                    check="name_mismatch",
                    detail=f"named {m.record_name}; the enterprise is {m.enterprise_name}",
                    uscc=m.uscc,
                    record_id=m.record_id,
                    department=m.department,
                    source_id=m.source_id,
                    category=m.category,
                    enterprise_name=m.record_name,
                )
                for m in mismatches
            ]
        if "duplicate_source_id" in checks:
            shared, counts["duplicate_source_id"] = await self._repo.shared_source_ids(limit=limit)
            items += [
                QualityFinding(
                    check="duplicate_source_id",
                    detail="the same source id was used by several departments",
                    source_id=d.source_id,
                    departments=d.departments,
                    record_ids=d.record_ids,
                    records=len(d.record_ids),
                )
                for d in shared
            ]
        if "abnormal_over_three_years" in checks:
            listed, counts["abnormal_over_three_years"] = await self._repo.long_abnormal_listings(
                listed_on_or_before=years_before(now.astimezone(CHINA_TIME).date(), 3),
                limit=limit,
            )
            items += [
                QualityFinding(
                    check="abnormal_over_three_years",
                    detail=(
                        "on the abnormal-operation list for three years or more and not on "
                        "the serious-illegal list: due for transfer"
                    ),
                    uscc=e.uscc,
                    enterprise_name=e.name,
                    since=e.abnormal_operation_since,
                )
                for e in listed
            ]
        unmatched = await self._repo.waits_per_department(WaitScope(state="waiting"))
        return QualityReport(
            as_of=now,
            older_than_days=older_than_days,
            counts=counts,
            unmatched_by_department=unmatched,
            items=items,
        )
