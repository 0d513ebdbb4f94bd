"""Who a token speaks for, and that department's own compliance: what the workbench
shows at sign-in and on its dashboard."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import jwt
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ecips_common.app import Session
from ecips_common.auth import SCOPES, Principal, current_principal
from ecips_common.problems import PROBLEM_RESPONSES, ProblemError
from ecips_ingest.api import reports
from ecips_ingest.api.deps import Context, Writer
from ecips_ingest.schemas import ComplianceReport

router = APIRouter(prefix="/v1/me", tags=["me"], responses=PROBLEM_RESPONSES)

AnyToken = Annotated[Principal, Depends(current_principal)]


class ScopeOut(BaseModel):
    key: str
    description: str


class MeOut(BaseModel):
    department: str
    department_name: str | None = Field(description="null when not in the department catalogue")
    department_kind: str | None
    subject: str
    scopes: list[ScopeOut]
    issued_at: datetime | None
    expires_at: datetime | None
    categories: list[str] = Field(description="The record categories the department may submit")


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None


@router.get(
    "",
    response_model=MeOut,
    summary="Who the bearer token speaks for: department, scopes, expiry",
    description=(
        "Any valid token, whatever its scopes: a client checks a token with it before use "
        "(401 `token_expired` or `invalid_token` otherwise)."
    ),
)
async def who_am_i(principal: AnyToken, request: Request, ctx: Context) -> MeOut:
    # current_principal has verified the token; its times are read again for display.
    token = request.headers["authorization"].partition(" ")[2].strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    department = ctx.catalogue.departments.get(principal.department)
    return MeOut(
        department=principal.department,
        department_name=department.name if department else None,
        department_kind=department.kind if department else None,
        subject=principal.subject,
        scopes=[
            ScopeOut(key=scope, description=SCOPES.get(scope, ""))
            for scope in sorted(principal.scopes)
        ],
        issued_at=_timestamp(claims.get("iat")),
        expires_at=_timestamp(claims.get("exp")),
        categories=[
            key
            for key in ctx.catalogue.categories
            if ctx.catalogue.may_submit(principal.department, key)
        ],
    )


@router.get(
    "/compliance",
    response_model=ComplianceReport,
    summary="The department's own line of the monthly compliance report (JSON or CSV)",
    description=(
        "The compliance report of `GET /v1/reports/compliance`, for the caller's department "
        "only: a department reads its own figures with `records:write`; every department's "
        "needs `reports:read`."
    ),
    responses={
        200: {
            "content": {
                "application/json": {},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
)
async def own_compliance(
    principal: Writer,
    session: Session,
    ctx: Context,
    period: reports.PeriodQuery,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> ComplianceReport | Response:
    if principal.department not in ctx.catalogue.departments:
        raise ProblemError(
            403,
            "unknown_department",
            "Forbidden",
            f"{principal.department!r} is not in the department catalogue.",
        )
    return await reports.compliance_report(
        principal, session, ctx, period, department=principal.department, format=format
    )
