"""Ingest's API models."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ecips_common.identifiers import IdentifierError, validate_registration_number, validate_uscc

CHINA = timezone(timedelta(hours=8))


def _uscc(value: str) -> str:
    try:
        return validate_uscc(value)
    except IdentifierError as exc:
        raise PydanticCustomError(exc.code, exc.message) from exc


def _registration_number(value: str) -> str:
    try:
        return validate_registration_number(value)
    except IdentifierError as exc:
        raise PydanticCustomError(exc.code, exc.message) from exc


def _not_in_future(value: date) -> date:
    # Departments work in China time; a record dated "today" there is fine.
    if value > datetime.now(CHINA).date():
        raise PydanticCustomError(
            "date_in_future", "the date {value} is in the future", {"value": value}
        )
    return value


def _clean_text(value: str) -> str:
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in value):
        raise PydanticCustomError("control_character", "the text contains control characters")
    stripped = value.strip()
    if not stripped:
        raise PydanticCustomError("blank", "the text is blank")
    return stripped


Uscc = Annotated[
    str, Field(min_length=1, max_length=40, examples=["91500000MA5U0F8X2K"]), AfterValidator(_uscc)
]
RegistrationNumber = Annotated[
    str, Field(min_length=1, max_length=40), AfterValidator(_registration_number)
]
Text = Annotated[str, AfterValidator(_clean_text)]


class RecordSubmission(BaseModel):
    """One record as a department submits it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "category": "administrative_penalty",
                    "source_id": "渝市监罚〔2026〕118号",
                    "uscc": "91500103MA5U8DPE6W",
                    "enterprise_name": "重庆山城火锅餐饮有限公司",
                    "occurred_on": "2026-11-02",
                    "data": {
                        "decision_number": "渝市监罚〔2026〕118号",
                        "authority": "重庆市市场监督管理局",
                        "violation_type": "食品安全",
                        "facts": "经营超过保质期的食品原料",
                        "penalty_kinds": ["警告", "罚款"],
                        "content": "警告，并处罚款人民币伍万元",
                        "fine": {"value": "50000", "currency": "CNY"},
                        "decided_on": "2026-11-02",
                    },
                }
            ]
        },
    )

    category: Annotated[str, Field(min_length=1, max_length=50)]
    source_id: Annotated[Text, Field(min_length=1, max_length=128)]
    uscc: Uscc | None = None
    registration_number: RegistrationNumber | None = None
    enterprise_name: Annotated[Text, Field(min_length=2, max_length=200)]
    occurred_on: Annotated[date, AfterValidator(_not_in_future)]
    data: dict[str, Any]

    @model_validator(mode="after")
    def _identified(self) -> RecordSubmission:
        if self.uscc is None and self.registration_number is None:
            raise PydanticCustomError(
                "required", "give the enterprise's uscc or its registration_number"
            )
        return self


class RecordReceipt(BaseModel):
    record_id: uuid.UUID
    revision: int
    status: Literal["accepted", "revoked"]


class RevocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[Text, Field(min_length=2, max_length=1000)]


class RecordRevisionOut(BaseModel):
    revision: int
    uscc: str | None
    registration_number: str | None
    enterprise_name: str
    occurred_on: date
    data: dict[str, Any]
    accepted_at: datetime


class RecordOut(BaseModel):
    record_id: uuid.UUID
    department: str
    source_id: str
    category: str
    status: Literal["accepted", "revoked"]
    current_revision: int
    revocation_reason: str | None
    revoked_at: datetime | None
    revisions: list[RecordRevisionOut]


class CategoryOut(BaseModel):
    key: str
    name: str
    json_schema: dict[str, Any]
    disclosure: Literal["public", "authorized", "government"]
    publicity_period: str | None = Field(
        description="ISO 8601 duration the item stays public (null: while the record stands)"
    )
    publicity_period_days: int | None
    legal_basis: str
    submitters: list[str]


class CategoryList(BaseModel):
    items: list[CategoryOut]
    version: str


class DepartmentOut(BaseModel):
    code: str
    name: str
    kind: str


class DepartmentList(BaseModel):
    items: list[DepartmentOut]
    version: str


def now_utc() -> datetime:
    return datetime.now(UTC)
