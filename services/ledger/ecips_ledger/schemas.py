"""The ledger's API models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ecips_common.contracts import Encumbrance, EnterpriseFlags, EnterpriseStatusCode, FormerName


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
    status_code: EnterpriseStatusCode
    status_since: date | None
    registered: bool = Field(description="False once every registration record was revoked")
    flags: EnterpriseFlags
    equity_freezes: list[Encumbrance] = Field(description="Equity freezes in force")
    chattel_mortgages: list[Encumbrance] = Field(description="Chattel mortgages in force")
    equity_pledges: list[Encumbrance] = Field(description="Equity pledges in force")
    record_counts: dict[str, int] = Field(description="Active records per category")
    penalty_counts_by_year: dict[str, int] = Field(
        default_factory=dict,
        description="Active administrative penalties by the year they were decided",
    )
    version: int = Field(description="Grows with every change; equals the latest snapshot event's")
    updated_at: datetime


class EnterpriseList(BaseModel):
    items: list[EnterpriseOut]


LOOKUP_LIMIT = 1000


class EnterpriseLookup(BaseModel):
    """Many enterprises at once (a department system checking a day's records)."""

    model_config = ConfigDict(extra="forbid")

    usccs: list[str] = Field(default_factory=list, max_length=LOOKUP_LIMIT)
    registration_numbers: list[str] = Field(default_factory=list, max_length=LOOKUP_LIMIT)


class EnterpriseLookupResult(BaseModel):
    items: list[EnterpriseOut] = Field(description="The enterprises found among `usccs`")
    registration_numbers: dict[str, str] = Field(
        description="Each old number that maps to an enterprise → its USCC"
    )


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


class WaitOut(BaseModel):
    """A record that waited, or still waits, for its enterprise's registration."""

    record_id: uuid.UUID
    department: str
    source_id: str
    category: str
    uscc: str | None
    registration_number: str | None
    enterprise_name: str
    received_at: datetime = Field(description="When the ledger received it (and began waiting)")
    filed_at: datetime | None = Field(description="When it was filed; null while it waits")
    waiting: bool
    waited_days: int = Field(description="Whole days waited, until filed or until now")
    waited_seconds: int


class WaitPage(BaseModel):
    items: list[WaitOut]
    counts: dict[str, int] = Field(description="Matching records per department (all pages)")
    total: int
    next_cursor: str | None
    as_of: datetime


QualityCheck = Literal[
    "missing_registration",
    "unmatched_overdue",
    "registration_revoked",
    "name_mismatch",
    "duplicate_source_id",
    "abnormal_over_three_years",
]


class QualityFinding(BaseModel):
    check: QualityCheck
    detail: str
    uscc: str | None = None
    registration_number: str | None = None
    record_id: uuid.UUID | None = None
    department: str | None = None
    source_id: str | None = None
    category: str | None = None
    enterprise_name: str | None = None
    departments: list[str] | None = None
    record_ids: list[uuid.UUID] | None = None
    records: int | None = None
    since: datetime | date | None = None
    waited_days: int | None = None


class QualityReport(BaseModel):
    as_of: datetime
    older_than_days: int = Field(description="The threshold of `unmatched_overdue`")
    counts: dict[str, int] = Field(description="Findings per check (all of them, not just listed)")
    unmatched_by_department: dict[str, int] = Field(
        description="Records waiting for their enterprise, per submitting department"
    )
    items: list[QualityFinding] = Field(description="Up to `limit` findings per check")
