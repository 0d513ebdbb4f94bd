from __future__ import annotations

from fastapi import APIRouter

from ecips_ingest.api.records import CatalogueDep
from ecips_ingest.schemas import CategoryList, CategoryOut, DepartmentList, DepartmentOut

router = APIRouter(prefix="/v1", tags=["catalogue"])


@router.get("/categories", response_model=CategoryList, summary="The record categories")
async def list_categories(cat: CatalogueDep) -> CategoryList:
    return CategoryList(
        version=cat.version,
        items=[
            CategoryOut(
                key=c.key,
                name=c.name,
                json_schema=c.json_schema,
                disclosure=c.disclosure,
                publicity_period=f"P{c.publicity_period_days}D"
                if c.publicity_period_days
                else None,
                publicity_period_days=c.publicity_period_days,
                legal_basis=c.legal_basis,
                submitters=list(cat.submitters[c.key]),
            )
            for c in cat.categories.values()
        ],
    )


@router.get("/departments", response_model=DepartmentList, summary="The department catalogue")
async def list_departments(cat: CatalogueDep) -> DepartmentList:
    return DepartmentList(
        version=cat.version,
        items=[
            DepartmentOut(code=d.code, name=d.name, kind=d.kind) for d in cat.departments.values()
        ],
    )
