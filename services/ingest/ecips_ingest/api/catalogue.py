from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Response

from ecips_common.problems import PROBLEM_RESPONSES, NotFound
from ecips_ingest.api.deps import CatalogueDep, Context
from ecips_ingest.batch_files import template_csv, template_xlsx
from ecips_ingest.catalogue import Catalogue, Category
from ecips_ingest.schemas import (
    CategoryDetail,
    CategoryList,
    CategoryOut,
    ColumnOut,
    DepartmentList,
    DepartmentOut,
    ExampleOut,
    MistakeOut,
    QualityOut,
)

router = APIRouter(prefix="/v1", tags=["catalogue"], responses=PROBLEM_RESPONSES)

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class CsvResponse(Response):
    media_type = "text/csv"


class XlsxResponse(Response):
    media_type = XLSX_MEDIA_TYPE


def _category_out(catalogue: Catalogue, c: Category) -> dict[str, object]:
    return {
        "key": c.key,
        "name": c.name,
        "description": c.description,
        "json_schema": c.json_schema,
        "disclosure": c.disclosure,
        "publicity_period": f"P{c.publicity_period_days}D" if c.publicity_period_days else None,
        "publicity_period_days": c.publicity_period_days,
        "legal_basis": c.legal_basis,
        "submitters": list(catalogue.submitters[c.key]),
    }


def _category(catalogue: Catalogue, key: str) -> Category:
    category = catalogue.categories.get(key)
    if category is None:
        raise NotFound("category", f"No category {key!r}; see GET /v1/categories.")
    return category


@router.get("/categories", response_model=CategoryList, summary="The record categories")
async def list_categories(cat: CatalogueDep) -> CategoryList:
    return CategoryList(
        version=cat.version,
        items=[CategoryOut(**_category_out(cat, c)) for c in cat.categories.values()],
    )


@router.get(
    "/categories/{key}",
    response_model=CategoryDetail,
    summary="One category: schema, quality rules, file columns, an example and its typical mistake",
)
async def get_category(key: str, ctx: Context) -> CategoryDetail:
    cat = ctx.catalogue
    category = _category(cat, key)
    table = ctx.tables[key]
    example = cat.examples[key]
    return CategoryDetail(
        **_category_out(cat, category),
        occurred_on_field=category.occurred_on_field,
        check_enterprise_name=category.check_enterprise_name,
        quality=QualityOut(
            future_allowed=list(category.quality.future_allowed),
            date_order=[list(pair) for pair in category.quality.date_order],
        ),
        columns=[
            ColumnOut(
                key=c.key,
                title=c.title,
                field=c.field,
                kind=c.kind,
                required=c.required,
                allowed=list(c.allowed),
                description=c.description,
            )
            for c in table.columns
        ],
        example=ExampleOut(
            department=example.department,
            record=example.record,
            mistake=MistakeOut(
                description=example.mistake.description,
                record=example.mistaken_record(),
                errors=[dict(e) for e in example.mistake.errors],
            ),
        ),
    )


def _disposition(category: Category, extension: str) -> dict[str, str]:
    name = f"{category.name}-{category.key}.{extension}"
    return {
        "Content-Disposition": (
            f"attachment; filename=\"{category.key}.{extension}\"; filename*=UTF-8''{quote(name)}"
        )
    }


@router.get(
    "/categories/{key}/template.csv",
    response_class=CsvResponse,
    summary="The category's CSV template (UTF-8 with BOM; headers are the field titles)",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def csv_template(key: str, ctx: Context) -> CsvResponse:
    category = _category(ctx.catalogue, key)
    return CsvResponse(template_csv(ctx.tables[key]), headers=_disposition(category, "csv"))


@router.get(
    "/categories/{key}/template.xlsx",
    response_class=XlsxResponse,
    summary="The category's XLSX template: sheet 数据 to fill in, 字段说明, and 示例",
    responses={
        200: {"content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def xlsx_template(key: str, ctx: Context) -> XlsxResponse:
    category = _category(ctx.catalogue, key)
    body = template_xlsx(ctx.tables[key], ctx.catalogue.examples[key])
    return XlsxResponse(body, headers=_disposition(category, "xlsx"))


@router.get("/departments", response_model=DepartmentList, summary="The department catalogue")
async def list_departments(cat: CatalogueDep) -> DepartmentList:
    return DepartmentList(
        version=cat.version,
        items=[
            DepartmentOut(
                code=d.code,
                name=d.name,
                kind=d.kind,
                notice_name=d.notice_name,
                expected_monthly=list(d.expected_monthly),
            )
            for d in cat.departments.values()
        ],
    )
