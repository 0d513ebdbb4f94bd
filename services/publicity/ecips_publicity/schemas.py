"""The public API's response models (with the examples OpenAPI shows)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_USCC = "91500103MA5U8DPE6W"
_NAME = "重庆渝信建材贸易有限公司"


class Flags(BaseModel):
    abnormal_operation: bool = False
    abnormal_operation_since: date | None = None
    abnormal_operation_reason: str | None = None
    serious_illegal: bool = False
    serious_illegal_since: date | None = None
    serious_illegal_reason: str | None = None


Match = Literal["name", "former_name", "uscc", "registration_number", "filter"]


class SearchHit(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "uscc": _USCC,
                "name": _NAME,
                "legal_representative": "李四",
                "status": "存续",
                "status_code": "active",
                "established_on": "2025-02-14",
                "enterprise_type": "有限责任公司",
                "division_code": "500103",
                "district": "渝中区",
                "flags": {"abnormal_operation": False, "serious_illegal": False},
                "matched_name": _NAME,
                "match": "name",
            }
        }
    )

    uscc: str
    name: str
    legal_representative: str | None
    status: str = Field(description="登记状态 as the register writes it: 存续, 吊销, 注销, 迁出")
    status_code: str = Field(description="active, revoked, deregistered or moved_out")
    established_on: date | None
    enterprise_type: str | None = None
    division_code: str
    district: str | None = Field(None, description="the district of the division code")
    flags: Flags
    matched_name: str | None = Field(
        None, description="the name (current or former) that matched; null for an identifier"
    )
    match: Match = Field(description="what matched: name, former_name, uscc, registration_number")


class SearchResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "items": [SearchHit.model_config["json_schema_extra"]["example"]],  # type: ignore[index]
                "total": 1,
                "total_exact": True,
                "page": 1,
                "limit": 10,
            }
        }
    )

    items: list[SearchHit]
    total: int = Field(description="matching enterprises, at most the cap (see total_exact)")
    total_exact: bool = Field(
        True, description="false when more enterprises match than `total` says"
    )
    page: int
    limit: int


class FormerNameOut(BaseModel):
    name: str
    until: date | None


class MeasureOut(BaseModel):
    measure: str
    title: str
    department: str
    department_name: str | None = None
    legal_basis: str


class JointMeasureOut(BaseModel):
    rule_id: str
    rule_title: str | None
    kind: str
    measures: list[MeasureOut]
    legal_basis: str | None
    since: date | None
    until: date | None


class SectionOut(BaseModel):
    key: str
    name: str
    count: int


class TabOut(BaseModel):
    key: str
    name: str
    count: int
    categories: list[str]
    master: bool = False
    measures: bool = False
    list_key: str | None = None


class EnterpriseProfile(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "uscc": _USCC,
                "name": _NAME,
                "former_names": [],
                "registration_number": None,
                "legal_representative": "李四",
                "enterprise_type": "有限责任公司",
                "registered_capital": "200万元人民币",
                "established_on": "2025-02-14",
                "address": "重庆市渝中区上清寺路9号",
                "business_scope": "一般项目：建筑材料销售",
                "registration_authority": "重庆市渝中区市场监督管理局",
                "division_code": "500103",
                "district": "渝中区",
                "status": "存续",
                "status_code": "active",
                "flags": {"abnormal_operation": False, "serious_illegal": False},
                "joint_measures": [],
                "sections": [{"key": "administrative_penalty", "name": "行政处罚", "count": 1}],
                "tabs": [
                    {
                        "key": "penalties",
                        "name": "行政处罚",
                        "count": 1,
                        "categories": ["administrative_penalty"],
                    }
                ],
                "as_of": "2026-12-02",
            }
        }
    )

    uscc: str
    name: str
    former_names: list[FormerNameOut]
    registration_number: str | None
    legal_representative: str | None
    enterprise_type: str | None
    registered_capital: str | None
    established_on: date | None
    address: str | None
    business_scope: str | None
    registration_authority: str | None
    division_code: str
    district: str | None = None
    status: str
    status_code: str
    flags: Flags
    joint_measures: list[JointMeasureOut]
    sections: list[SectionOut]
    """Public categories that have at least one visible item, in display order."""
    tabs: list[TabOut]
    """The enterprise page's tabs, each with its count of published items."""
    as_of: date


class FieldOut(BaseModel):
    key: str
    label: str
    value: str


class PublicItemOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "record_id": "0b5e8c1e-6d7a-4a55-9a1e-2f0c1c7e9d10",
                "category": "administrative_penalty",
                "category_name": "行政处罚",
                "department": "CQ-SAMR",
                "department_name": "重庆市市场监督管理局",
                "source_id": "渝市监罚〔2025〕77号",
                "decision_number": "渝市监罚〔2025〕77号",
                "decided_on": "2025-08-01",
                "occurred_on": "2025-08-01",
                "publish_until": "2028-07-31",
                "revision": 1,
                "data": {"decision_number": "渝市监罚〔2025〕77号", "content": "罚款人民币叁万元"},
                "fields": [{"key": "content", "label": "处罚内容", "value": "罚款人民币叁万元"}],
            }
        }
    )

    record_id: uuid.UUID
    category: str
    category_name: str
    department: str
    department_name: str | None = Field(None, description="null while unknown")
    source_id: str
    decision_number: str = Field(description="决定文书号 (or registration number), else source_id")
    decided_on: date = Field(description="the decision's date, else the record's date")
    occurred_on: date
    publish_until: date | None = Field(
        description="last day + 1 of publication (period end or credit repair); null: no end"
    )
    revision: int
    data: dict[str, Any]
    fields: list[FieldOut] = Field(description="data as labelled text, in the schema's order")


class PublicItemList(BaseModel):
    items: list[PublicItemOut]
    total: int
    page: int
    limit: int


class ListEntryOut(BaseModel):
    listing: PublicItemOut | None
    removal: PublicItemOut | None


class ListEntries(BaseModel):
    key: str
    name: str
    items: list[ListEntryOut]
    total: int
    page: int
    limit: int


class StatusOut(BaseModel):
    code: str
    name: str


class DistrictOut(BaseModel):
    code: str
    name: str


class ListOut(BaseModel):
    key: str
    name: str


class SearchLimits(BaseModel):
    min_length: int
    max_length: int
    result_cap: int
    broad_depth: int
    max_limit: int


class CatalogueOut(BaseModel):
    version: str
    statuses: list[StatusOut]
    districts: list[DistrictOut]
    lists: list[ListOut]
    sections: list[SectionOut]
    tabs: list[TabOut]
    search: SearchLimits


class Statistics(BaseModel):
    as_of: date
    enterprises: int
    abnormal_operation: int
    serious_illegal: int
    items: dict[str, int] = Field(description="published items per category")
