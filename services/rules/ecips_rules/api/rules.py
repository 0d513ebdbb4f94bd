from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ecips_common.app import service_state
from ecips_common.problems import PROBLEM_RESPONSES
from ecips_rules.catalogue import Catalogue
from ecips_rules.schemas import DurationOut, MeasureOut, RuleList, RuleOut, ScenarioOut

router = APIRouter(prefix="/v1", tags=["catalogue"], responses=PROBLEM_RESPONSES)


def catalogue(request: Request) -> Catalogue:
    loaded: Catalogue = service_state(request).extras["catalogue"]
    return loaded


CatalogueDep = Annotated[Catalogue, Depends(catalogue)]


@router.get("/rules", response_model=RuleList, summary="The joint punishment catalogue")
async def list_rules(cat: CatalogueDep) -> RuleList:
    return RuleList(
        version=cat.version,
        scenarios=[ScenarioOut(key=s.key, title=s.title) for s in cat.scenarios.values()],
        items=[
            RuleOut(
                id=r.id,
                version=r.version,
                title=r.title,
                kind=r.kind,
                condition=r.condition,
                since_from=r.since_from,
                duration=DurationOut(type=r.duration.type, days=r.duration.days),
                measures=[
                    MeasureOut(
                        key=m.key,
                        title=m.title,
                        scenarios=list(m.scenarios),
                        department=m.department,
                        legal_basis=m.legal_basis,
                    )
                    for m in r.measures
                ],
                legal_basis=r.legal_basis,
            )
            for r in (compiled.rule for compiled in cat.rules.values())
        ],
    )
