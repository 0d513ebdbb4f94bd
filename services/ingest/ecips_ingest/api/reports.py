from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from ecips_common.app import Session, UoW
from ecips_common.problems import PROBLEM_RESPONSES, FieldError, InvalidInput, ProblemError
from ecips_ingest.api.deps import Context, Reporter, Writer
from ecips_ingest.batch_files import UTF8_BOM, csv_line
from ecips_ingest.compliance import ComplianceReporter, china_today, period_bounds
from ecips_ingest.repository import ComplianceRepository
from ecips_ingest.schemas import (
    PERIOD_PATTERN,
    ComplianceReport,
    NilReturnList,
    NilReturnOut,
    NilReturnRequest,
)

router = APIRouter(prefix="/v1", tags=["compliance"], responses=PROBLEM_RESPONSES)

PeriodQuery = Annotated[
    str, Query(pattern=PERIOD_PATTERN, description="The month, YYYY-MM", examples=["2025-10"])
]

CSV_COLUMNS = (
    "department",
    "name",
    "kind",
    "on_time",
    "complete",
    "accurate",
    "findings",
    "expected_categories",
    "received_categories",
    "missing_categories",
    "nil_returns",
    "records",
    "late_records",
    "rows_received",
    "rows_accepted",
    "rows_unchanged",
    "rows_rejected",
    "rejected_share",
    "top_rejection_codes",
    "unmatched_records",
    "last_submission_at",
)


@router.get(
    "/reports/compliance",
    response_model=ComplianceReport,
    summary="Per department: on time, complete and accurate for a month (JSON or CSV)",
    description=(
        "Records count for the month of their `occurred_on` and are on time when first "
        "submitted by the deadline (the 5th of the next month, Beijing time; the rule is data). "
        "Expected categories come from the department catalogue; a nil return counts as "
        "received. `unmatched_records` comes from the ledger and is null (with a note) when "
        "the ledger cannot say. `?format=csv` gives the same as a CSV table."
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
async def compliance_report(
    _: Reporter,
    session: Session,
    ctx: Context,
    period: PeriodQuery,
    department: Annotated[str | None, Query(max_length=40)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> ComplianceReport | Response:
    reporter = ComplianceReporter(session, ctx.catalogue, ctx.ledger, ctx.clock())
    report = await reporter.report(period, department)
    if format == "json":
        return report
    lines = [UTF8_BOM + csv_line(CSV_COLUMNS)]
    for item in report.items:
        row = item.model_dump(mode="json")
        row["findings"] = "、".join(item.findings)
        for key in ("expected_categories", "received_categories", "missing_categories"):
            row[key] = "、".join(row[key])
        row["nil_returns"] = "、".join(item.nil_returns)
        row["top_rejection_codes"] = "；".join(
            f"{c.code}×{c.rows}" for c in item.top_rejection_codes
        )
        lines.append(csv_line("" if row[c] is None else str(row[c]) for c in CSV_COLUMNS))
    return Response(
        b"".join(lines),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="compliance-{period}.csv"',
        },
    )


@router.post(
    "/nil-returns",
    response_model=NilReturnList,
    summary="Declare no records of some categories for a month (零报告)",
    description=(
        "Counts as receiving those categories in the compliance report; declaring again "
        "changes nothing. The categories must be ones the department may submit."
    ),
)
async def declare_nil_returns(
    body: NilReturnRequest, principal: Writer, uow: UoW, ctx: Context
) -> NilReturnList:
    start, _ = period_bounds(body.period)
    now = ctx.clock()
    if start > china_today(now):
        raise InvalidInput(
            [FieldError(field="period", code="period_in_future", message="the month has not begun")]
        )
    errors = []
    for index, key in enumerate(body.categories):
        if key not in ctx.catalogue.categories:
            errors.append(
                FieldError(field=f"categories[{index}]", code="unknown_category", message=repr(key))
            )
    if errors:
        raise InvalidInput(errors)
    refused = [k for k in body.categories if not ctx.catalogue.may_submit(principal.department, k)]
    if refused:
        raise ProblemError(
            403,
            "category_not_permitted",
            "Forbidden",
            f"Department {principal.department} may not submit {', '.join(refused)} records.",
        )
    repo = ComplianceRepository(uow.session)
    await repo.declare_nil(principal.department, body.period, body.categories, now)
    declared = await repo.nil_returns(body.period, principal.department)
    return NilReturnList(
        items=[NilReturnOut.model_validate(d, from_attributes=True) for d in declared]
    )


@router.get(
    "/nil-returns",
    response_model=NilReturnList,
    summary="The department's nil returns for a month",
)
async def list_nil_returns(
    principal: Writer, session: Session, period: PeriodQuery
) -> NilReturnList:
    declared = await ComplianceRepository(session).nil_returns(period, principal.department)
    return NilReturnList(
        items=[NilReturnOut.model_validate(d, from_attributes=True) for d in declared]
    )
