from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ecips_common.app import Session
from ecips_common.identifiers import IdentifierError, validate_uscc
from ecips_common.problems import PROBLEM_RESPONSES, FieldError, InvalidInput
from ecips_rules.api.rules import CacheDep, CatalogueDep, ClockDep
from ecips_rules.catalogue import Catalogue
from ecips_rules.schemas import BatchCheckRequest, BatchCheckResult, CheckResult
from ecips_rules.service import CheckService

router = APIRouter(prefix="/v1/checks", tags=["credit checks"], responses=PROBLEM_RESPONSES)

_PUBLIC = (
    "Public, no token: the answer rests on public list information. Every restriction "
    "(and, for incentive scenarios, every benefit) names its rule, measure, department, "
    "legal basis and dates. An enterprise the rules service has never seen is allowed "
    "for restrictions, with `known: false`."
)


def _scenario(value: str | None, cat: Catalogue) -> str:
    if not value:
        raise InvalidInput([FieldError(field="scenario", code="required", message="required")])
    if not cat.knows_scenario(value):
        raise InvalidInput(
            [
                FieldError(
                    field="scenario",
                    code="unknown_scenario",
                    message=f"unknown scenario {value!r}; known: {', '.join(cat.scenarios)}",
                )
            ]
        )
    return value


@router.get(
    "/{uscc}",
    response_model=CheckResult,
    summary="May this enterprise take part in a scenario?",
    description=_PUBLIC,
)
async def check_one(
    uscc: str,
    session: Session,
    cat: CatalogueDep,
    cache: CacheDep,
    clock: ClockDep,
    # Optional in the signature so a missing one is reported as field "scenario".
    scenario: Annotated[
        str | None, Query(description="Required: a scenario key from GET /v1/rules")
    ] = None,
) -> CheckResult:
    key = _scenario(scenario, cat)
    try:
        normalized = validate_uscc(uscc)
    except IdentifierError as exc:
        raise InvalidInput([FieldError(field="uscc", code=exc.code, message=exc.message)]) from exc
    (result,) = await CheckService(session, cat, cache).check([normalized], key, now=clock())
    return result


@router.post(
    "",
    response_model=BatchCheckResult,
    summary="Check up to 1,000 enterprises at once",
    description=_PUBLIC + " Results come in the order the USCCs were given.",
)
async def check_many(
    body: BatchCheckRequest,
    session: Session,
    cat: CatalogueDep,
    cache: CacheDep,
    clock: ClockDep,
) -> BatchCheckResult:
    key = _scenario(body.scenario, cat)
    service = CheckService(session, cat, cache)
    return BatchCheckResult(items=await service.check(body.usccs, key, now=clock()))
