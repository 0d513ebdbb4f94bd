from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from ecips_common.app import Session, service_state
from ecips_common.problems import PROBLEM_RESPONSES
from ecips_ledger.api.access import ManyReader, Reader, Reporter
from ecips_ledger.queries import LedgerReader
from ecips_ledger.schemas import (
    LOOKUP_LIMIT,
    AuditPage,
    EnterpriseList,
    EnterpriseLookup,
    EnterpriseLookupResult,
    EnterpriseOut,
    FiledRecordPage,
)
from ecips_ledger.service import AuditLog

router = APIRouter(tags=["ledger"], responses=PROBLEM_RESPONSES)


@router.get(
    "/v1/enterprises",
    response_model=EnterpriseList,
    summary="Find the enterprise an old 15-digit registration number maps to",
    description="`items` holds the enterprise (full master data), or nothing if none maps.",
)
async def find_enterprises(
    _: Reader,
    session: Session,
    registration_number: Annotated[str, Query(min_length=1, max_length=32)],
) -> EnterpriseList:
    return await LedgerReader(session).enterprises_by_number(registration_number)


@router.post(
    "/v1/enterprises/lookup",
    response_model=EnterpriseLookupResult,
    summary="Many enterprises at once, by USCC and by old registration number",
    description=(
        f"Up to {LOOKUP_LIMIT} USCCs and {LOOKUP_LIMIT} old numbers per request. USCCs the "
        "ledger does not know are simply absent from `items`; numbers that map to no "
        "enterprise are absent from `registration_numbers`. Every identifier asked leaves "
        "an audit entry, as a single read would."
    ),
)
async def lookup_enterprises(
    body: EnterpriseLookup, principal: ManyReader, session: Session, request: Request
) -> EnterpriseLookupResult:
    # Its own transaction: the read is on record even when it then fails.
    async with service_state(request).database.unit_of_work() as uow:
        await AuditLog(uow).record_lookup(
            principal,
            path=request.url.path,
            usccs=body.usccs,
            numbers=body.registration_numbers,
        )
    return await LedgerReader(session).lookup(body)


@router.get(
    "/v1/enterprises/{uscc}",
    response_model=EnterpriseOut,
    summary="An enterprise's master data, name history, status, flags and record counts",
)
async def get_enterprise(uscc: str, _: Reader, session: Session) -> EnterpriseOut:
    return await LedgerReader(session).enterprise(uscc)


@router.get(
    "/v1/enterprises/{uscc}/records",
    response_model=FiledRecordPage,
    summary="Every record filed under an enterprise, every revision, revoked ones included",
    description="Newest first (by `occurred_on`). Resume with `after=next_cursor`.",
)
async def list_records(
    uscc: str,
    _: Reader,
    session: Session,
    category: Annotated[str | None, Query(max_length=50)] = None,
    status: Annotated[Literal["active", "revoked"] | None, Query()] = None,
    department: Annotated[str | None, Query(max_length=40)] = None,
    occurred_from: Annotated[date | None, Query(alias="from")] = None,
    occurred_to: Annotated[date | None, Query(alias="to")] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FiledRecordPage:
    return await LedgerReader(session).records(
        uscc,
        category=category,
        status=status,
        department=department,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        after=after,
        limit=limit,
    )


@router.get(
    "/v1/audit",
    response_model=AuditPage,
    summary="Recent reads of non-public ledger data",
    description=(
        "Newest first; the caller's own department only, unless the token has `reports:read` "
        "(then `department` filters). Resume with `after=next_cursor`."
    ),
)
async def list_audit(
    principal: Reporter,
    session: Session,
    department: Annotated[str | None, Query(max_length=40)] = None,
    uscc: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[
        int | None, Query(ge=1, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    return await LedgerReader(session).audit(
        principal, department=department, uscc=uscc, before=after, limit=limit
    )
