"""The ledger's API models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ecips_common.contracts import EnterpriseFlags, FormerName


class EnterpriseOut(BaseModel):
    uscc: str
    registration_number: str | None = Field(description="The pre-2015 15-digit number, if any")
    name: str
    former_names: list[FormerName]
    legal_representative: str | None
    enterprise_type: str | None
    registered_capital: str | None
    established_on: date | None
    address: str | None
    business_scope: str | None
    registration_authority: str | None
    division_code: str
    status: str = Field(description="存续, 吊销, 注销 or 迁出")
    status_code: Literal["active", "revoked", "deregistered", "moved_out"]
    status_since: date | None
    registered: bool
    flags: EnterpriseFlags
    record_counts: dict[str, int] = Field(description="Active records per category")
    version: int
    updated_at: datetime


class RevisionOut(BaseModel):
    revision: int
    uscc: str | None
    registration_number: str | None
    enterprise_name: str
    occurred_on: date
    data: dict[str, Any]
    disclosure: str
    publicity_period_days: int | None
    catalogue_version: str
    accepted_at: datetime
    received_at: datetime


class FiledRecordOut(BaseModel):
    record_id: uuid.UUID
    uscc: str
    registration_number: str | None
    category: str
    department: str
    source_id: str
    enterprise_name: str
    revision: int = Field(description="The head revision")
    status: Literal["active", "revoked"]
    occurred_on: date
    data: dict[str, Any]
    disclosure: str
    publicity_period_days: int | None
    revocation_reason: str | None
    revoked_at: datetime | None
    version: int
    filed_at: datetime | None
    revisions: list[RevisionOut] = Field(description="Every revision received, oldest first")


class FiledRecordPage(BaseModel):
    items: list[FiledRecordOut]
    next_cursor: str | None
    total: int


class AuditEntryOut(BaseModel):
    id: int
    subject: str
    department: str
    method: str
    path: str
    query: str | None
    uscc: str | None
    at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: int | None
