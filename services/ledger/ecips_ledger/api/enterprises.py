from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ecips_common.app import Session, service_state
from ecips_common.auth import Principal, require_any_scope, require_scope
from ecips_common.problems import PROBLEM_RESPONSES
from ecips_ledger.queries import LedgerReader
from ecips_ledger.schemas import AuditPage, EnterpriseOut, FiledRecordPage
from ecips_ledger.service import AuditLog

router = APIRouter(tags=["ledger"], responses=PROBLEM_RESPONSES)


async def _audit(request: Request, principal: Principal) -> Principal:
    # Its own transaction: the read is on record even when it then fails (a 404, say).
    async with service_state(request).database.unit_of_work() as uow:
        await AuditLog(uow).record_read(
            principal,
            method=request.method,
            path=request.url.path,
            query=request.url.query or None,
            uscc=request.path_params.get("uscc"),
        )
    return principal


async def audited_reader(
    request: Request, principal: Annotated[Principal, Depends(require_scope("ledger:read"))]
) -> Principal:
    return await _audit(request, principal)


async def audited_auditor(
    request: Request,
    principal: Annotated[Principal, Depends(require_any_scope("ledger:read", "reports:read"))],
) -> Principal:
    return await _audit(request, principal)


Reader = Annotated[Principal, Depends(audited_reader)]
Auditor = Annotated[Principal, Depends(audited_auditor)]


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
    description="Newest first. Resume with `after=next_cursor`.",
)
async def list_records(
    uscc: str,
    _: Reader,
    session: Session,
    category: Annotated[str | None, Query(max_length=50)] = None,
    occurred_from: Annotated[date | None, Query(alias="from")] = None,
    occurred_to: Annotated[date | None, Query(alias="to")] = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FiledRecordPage:
    return await LedgerReader(session).records(
        uscc,
        category=category,
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
    principal: Auditor,
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
