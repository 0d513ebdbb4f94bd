from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ecips_common.app import service_state
from ecips_common.problems import PROBLEM_RESPONSES
from ecips_rules.catalogue import Catalogue, Rule
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.schemas import (
    DepartmentOut,
    DurationOut,
    MeasureOut,
    PeriodOut,
    RuleList,
    RuleOut,
    ScenarioOut,
)

router = APIRouter(prefix="/v1", tags=["catalogue"], responses=PROBLEM_RESPONSES)


# A coroutine: FastAPI runs a plain function dependency in a thread pool.
async def catalogue(request: Request) -> Catalogue:
    found: CatalogueRegistry = service_state(request).extras["registry"]
    return found.current


CatalogueDep = Annotated[Catalogue, Depends(catalogue)]


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        version=rule.version,
        title=rule.title,
        kind=rule.kind,
        condition=rule.condition,
        since_from=rule.since_from,
        delay=PeriodOut(**rule.delay.model_dump()) if rule.delay else None,
        duration=DurationOut(**rule.duration.model_dump()),
        measures=[
            MeasureOut(
                key=m.key,
                title=m.title,
                scenarios=list(m.scenarios),
                department=m.department,
                legal_basis=m.legal_basis,
            )
            for m in rule.measures
        ],
        legal_basis=rule.legal_basis,
    )


@router.get(
    "/rules",
    response_model=RuleList,
    summary="The joint punishment catalogue in force",
    description="Public. Every rule with its condition, measures, departments and legal basis.",
)
async def list_rules(cat: CatalogueDep) -> RuleList:
    return RuleList(
        version=cat.version,
        scenarios=[
            ScenarioOut(key=s.key, title=s.title, kind=s.kind) for s in cat.scenarios.values()
        ],
        departments=[DepartmentOut(code=d.code, name=d.name) for d in cat.departments.values()],
        items=[rule_out(compiled.rule) for compiled in cat.rules.values()],
    )
