"""The coordination report: per department and workflow, for a month."""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from ecips_common.app import Session
from ecips_common.auth import Principal, require_scope
from ecips_common.problems import PROBLEM_RESPONSES, FieldError, InvalidInput
from ecips_coordination.api.deps import Env
from ecips_coordination.schemas import CoordinationReport, CoordinationReportRow
from ecips_coordination.service import ReportService

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=PROBLEM_RESPONSES)

Reader = Annotated[Principal, Depends(require_scope("reports:read"))]

PERIOD = re.compile(r"^(19|20)\d{2}-(0[1-9]|1[0-2])$")
COLUMNS = list(CoordinationReportRow.model_fields)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet must never read a cell as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(report: CoordinationReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["period", *COLUMNS])
    for row in report.items:
        values = row.model_dump()
        writer.writerow([report.period, *(_cell(values[c]) for c in COLUMNS)])
    return buffer.getvalue()


@router.get(
    "/coordination",
    response_model=CoordinationReport,
    summary="Coordination report: on time, late and open tasks per department and workflow",
    description=(
        "Tasks opened in the month `period` (YYYY-MM, China time), per department and "
        "workflow (double_notification, joint_punishment): on time (claimed by "
        "claim_due and reported by feedback_due, in working days of the calendar), late, "
        "still open, and of those overdue today. JSON, or CSV with `format=csv` or "
        "`Accept: text/csv`. Scope `reports:read`."
    ),
    responses={200: {"content": {"text/csv": {}}}},
)
async def coordination_report(
    _: Reader,
    request: Request,
    session: Session,
    env: Env,
    period: Annotated[str | None, Query(description="YYYY-MM")] = None,
    department: str | None = None,
    format: Annotated[str | None, Query(json_schema_extra={"enum": ["json", "csv"]})] = None,
) -> Response:
    errors: list[FieldError] = []
    if period is None:
        errors.append(FieldError(field="period", code="required", message="YYYY-MM"))
    elif not PERIOD.match(period):
        errors.append(FieldError(field="period", code="invalid_period", message="YYYY-MM"))
    if department is not None and not re.fullmatch(r"[A-Z][A-Z0-9-]{1,39}", department):
        errors.append(
            FieldError(field="department", code="invalid_department", message="a department code")
        )
    if format is not None and format not in ("json", "csv"):
        errors.append(FieldError(field="format", code="not_allowed", message="json or csv"))
    if errors:
        raise InvalidInput(errors)
    assert period is not None
    report = await ReportService(session, env).coordination(period, department)
    accept = request.headers.get("accept", "")
    if format == "csv" or (format is None and "text/csv" in accept):
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="coordination-{period}.csv"',
                "Cache-Control": "no-store",
            },
        )
    return JSONResponse(report.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
