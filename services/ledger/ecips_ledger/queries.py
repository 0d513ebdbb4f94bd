"""Answers to the ledger's read API (non-public data: callers are audited
before they get here)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.auth import Principal
from ecips_common.contracts import FormerName
from ecips_common.identifiers import IdentifierError, validate_uscc
from ecips_common.problems import FieldError, InvalidInput, NotFound
from ecips_ledger.master_data import STATUS_CODES
from ecips_ledger.repository import LedgerRepository
from ecips_ledger.schemas import (
    AuditEntryOut,
    AuditPage,
    EnterpriseOut,
    FiledRecordOut,
    FiledRecordPage,
    RevisionOut,
)
from ecips_ledger.service import flags_of


def parse_uscc(raw: str) -> str:
    try:
        return validate_uscc(raw)
    except IdentifierError as exc:
        raise InvalidInput([FieldError(field="uscc", code=exc.code, message=exc.message)]) from exc


def encode_cursor(occurred_on: date, record_id: uuid.UUID) -> str:
    return f"{occurred_on.isoformat()}_{record_id}"


def decode_cursor(cursor: str) -> tuple[date, uuid.UUID]:
    try:
        day, record_id = cursor.split("_", 1)
        return date.fromisoformat(day), uuid.UUID(record_id)
    except ValueError as exc:
        raise InvalidInput(
            [
                FieldError(
                    field="after",
                    code="invalid_cursor",
                    message="not a cursor from a previous page's next_cursor",
                )
            ]
        ) from exc


class LedgerReader:
    def __init__(self, session: AsyncSession) -> None:
        self._repo = LedgerRepository(session)

    async def enterprise(self, raw_uscc: str) -> EnterpriseOut:
        uscc = parse_uscc(raw_uscc)
        enterprise = await self._repo.get_enterprise(uscc)
        if enterprise is None:
            raise NotFound("enterprise", f"No enterprise is registered under {uscc}.")
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
            status_code=STATUS_CODES.get(enterprise.status, "active"),
            status_since=enterprise.status_since,
            registered=enterprise.registered,
            flags=flags_of(enterprise),
            record_counts=enterprise.record_counts,
            version=enterprise.version,
            updated_at=enterprise.updated_at,
        )

    async def records(
        self,
        raw_uscc: str,
        *,
        category: str | None,
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
