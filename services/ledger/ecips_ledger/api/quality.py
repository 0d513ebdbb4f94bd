from __future__ import annotations

from typing import Annotated, Literal, get_args

from fastapi import APIRouter, Query

from ecips_common.app import Session, State
from ecips_common.problems import PROBLEM_RESPONSES, FieldError, InvalidInput
from ecips_ledger.api.access import Reporter
from ecips_ledger.queries import LedgerReader
from ecips_ledger.schemas import QualityCheck, QualityReport, WaitPage
from ecips_ledger.settings import LedgerSettings

router = APIRouter(tags=["data quality"], responses=PROBLEM_RESPONSES)

ALL_CHECKS: tuple[QualityCheck, ...] = get_args(QualityCheck)


@router.get(
    "/v1/unmatched",
    response_model=WaitPage,
    summary="Records waiting for their enterprise's registration",
    description=(
        "`state=waiting` (default): records no registered enterprise answers to yet; "
        "`filed`: records that waited and were filed when the registration came; `all`. "
        "`period=YYYY-MM` keeps those received in that month (China Standard Time), "
        "`occurred_period=YYYY-MM` those whose `occurred_on` falls in it (the month a "
        "department's compliance report counts them in). "
        "Longest wait first; resume with `after=next_cursor`. `counts` has the matching "
        "records per department over all pages. Needs `ledger:read` or `reports:read`."
    ),
)
async def list_unmatched(
    _: Reporter,
    session: Session,
    department: Annotated[str | None, Query(max_length=40)] = None,
    period: Annotated[str | None, Query(max_length=7, description="YYYY-MM")] = None,
    occurred_period: Annotated[str | None, Query(max_length=7, description="YYYY-MM")] = None,
    state: Literal["waiting", "filed", "all"] = "waiting",
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> WaitPage:
    return await LedgerReader(session).waits(
        state=state,
        department=department,
        period=period,
        occurred_period=occurred_period,
        after=after,
        limit=limit,
    )


@router.get(
    "/v1/quality",
    response_model=QualityReport,
    summary="Data-quality checks over the legal-person base",
    description=(
        "Checks (repeat `check=` to choose; all by default): `missing_registration` "
        "(records wait for an enterprise with no registration), `unmatched_overdue` "
        "(a record waited more than `older_than_days`), `registration_revoked`, "
        "`name_mismatch` (a record names the enterprise by neither its name nor a former "
        "name), `duplicate_source_id` (one source id used by several departments), "
        "`abnormal_over_three_years` (due for the serious-illegal list). `counts` covers all "
        "findings; `items` lists up to `limit` per check. Needs `ledger:read` or `reports:read`."
    ),
)
async def quality_report(
    _: Reporter,
    session: Session,
    state: State,
    check: Annotated[list[str] | None, Query()] = None,
    older_than_days: Annotated[int | None, Query(ge=0, le=3650)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> QualityReport:
    chosen: set[QualityCheck] = set(ALL_CHECKS)
    if check:
        unknown = [c for c in check if c not in ALL_CHECKS]
        if unknown:
            raise InvalidInput(
                [
                    FieldError(
                        field="check",
                        code="not_allowed",
                        message=f"unknown check {unknown[0]!r}; one of {', '.join(ALL_CHECKS)}",
                    )
                ]
            )
        chosen = {c for c in ALL_CHECKS if c in check}
    settings = state.settings
    assert isinstance(settings, LedgerSettings)
    return await LedgerReader(session).quality(
        checks=chosen,
        older_than_days=(
            settings.unmatched_alert_days if older_than_days is None else older_than_days
        ),
        limit=limit,
    )
