from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Query, Request

from ecips_common.app import service_state
from ecips_common.identifiers import IdentifierError, validate_uscc
from ecips_common.problems import PROBLEM_RESPONSES, FieldError, InvalidInput
from ecips_rules.cache import CheckCache
from ecips_rules.catalogue import Catalogue
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.repository import check_rows
from ecips_rules.schemas import BatchCheckRequest, BatchCheckResult, CheckResult
from ecips_rules.service import CheckService

router = APIRouter(prefix="/v1/checks", tags=["credit checks"], responses=PROBLEM_RESPONSES)

_PUBLIC = (
    "Public, no token: the answer rests on public list information. Every restriction "
    "(and, for incentive scenarios, every benefit) names its rule, measure, department, "
    "legal basis and dates. An enterprise the rules service has never seen is allowed "
    "for restrictions, with `known: false`."
)


@dataclass(frozen=True, slots=True)
class Checking:
    catalogue: Catalogue
    clock: Callable[[], datetime]
    service: CheckService


async def checking(request: Request) -> Checking:
    """Everything a check needs, in one dependency (each costs on every check)."""
    extras = service_state(request).extras
    registry: CatalogueRegistry = extras["registry"]
    pool: asyncpg.Pool = extras["check_pool"]
    cache: CheckCache | None = extras.get("cache")
    catalogue = registry.current
    fetch = partial(check_rows, pool)
    return Checking(catalogue, extras["clock"], CheckService(fetch, catalogue, cache))


CheckingDep = Annotated[Checking, Depends(checking)]


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
    checks: CheckingDep,
    # Optional in the signature so a missing one is reported as field "scenario".
    scenario: Annotated[
        str | None, Query(description="Required: a scenario key from GET /v1/rules")
    ] = None,
) -> CheckResult:
    key = _scenario(scenario, checks.catalogue)
    try:
        normalized = validate_uscc(uscc)
    except IdentifierError as exc:
        raise InvalidInput([FieldError(field="uscc", code=exc.code, message=exc.message)]) from exc
    (result,) = await checks.service.check([normalized], key, now=checks.clock())
    return result


@router.post(
    "",
    response_model=BatchCheckResult,
    summary="Check up to 1,000 enterprises at once",
    description=_PUBLIC + " Results come in the order the USCCs were given.",
)
async def check_many(body: BatchCheckRequest, checks: CheckingDep) -> BatchCheckResult:
    key = _scenario(body.scenario, checks.catalogue)
    return BatchCheckResult(items=await checks.service.check(body.usccs, key, now=checks.clock()))
