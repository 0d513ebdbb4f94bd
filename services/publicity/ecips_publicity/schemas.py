"""The public API's response models."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from pydantic import BaseModel


class Flags(BaseModel):
    abnormal_operation: bool = False
    abnormal_operation_since: date | None = None
    abnormal_operation_reason: str | None = None
    serious_illegal: bool = False
    serious_illegal_since: date | None = None
    serious_illegal_reason: str | None = None


class SearchHit(BaseModel):
    uscc: str
    name: str
    legal_representative: str | None
    status: str
    established_on: date | None
    flags: Flags
    matched_name: str | None = None
    """The name (current or former) that matched; null for a match by identifier."""


class SearchResult(BaseModel):
    items: list[SearchHit]
    total: int
    page: int
    limit: int


class FormerNameOut(BaseModel):
    name: str
    until: date | None


class MeasureOut(BaseModel):
    measure: str
    title: str
    department: str
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


class EnterpriseProfile(BaseModel):
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
    status: str
    flags: Flags
    joint_measures: list[JointMeasureOut]
    sections: list[SectionOut]
    """Public categories that have at least one visible item, in display order."""


class PublicItemOut(BaseModel):
    record_id: uuid.UUID
    category: str
    department: str
    source_id: str
    occurred_on: date
    publish_until: date | None
    revision: int
    data: dict[str, Any]


class PublicItemList(BaseModel):
    items: list[PublicItemOut]
    total: int
    page: int
    limit: int
