"""Ingest's API models."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ecips_common.identifiers import IdentifierError, validate_registration_number, validate_uscc
from ecips_common.problems import FieldError
from ecips_common.text import text_fault

CHINA = timezone(timedelta(hours=8))
PERIOD_PATTERN = r"^(19|20)[0-9]{2}-(0[1-9]|1[0-2])$"


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
    fault = text_fault(value)
    if fault is not None:
        raise PydanticCustomError(*fault)
    stripped = value.strip()
    if not stripped:
        raise PydanticCustomError("blank", "the text is blank")
    return stripped


Uscc = Annotated[
    str, Field(min_length=1, max_length=40, examples=["91500103MA5U8DPE6W"]), AfterValidator(_uscc)
]
RegistrationNumber = Annotated[
    str, Field(min_length=1, max_length=40), AfterValidator(_registration_number)
]
Text = Annotated[str, AfterValidator(_clean_text)]
Period = Annotated[str, Field(pattern=PERIOD_PATTERN, examples=["2025-10"])]


class RecordSubmission(BaseModel):
    """One record as a department submits it (give `uscc`, `registration_number` or both)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "category": "administrative_penalty",
                    "source_id": "渝中市监处罚〔2025〕118号",
                    "uscc": "91500103MA5U8DPE6W",
                    "enterprise_name": "重庆渝信建材贸易有限公司",
                    "occurred_on": "2025-06-10",
                    "data": {
                        "decision_number": "渝中市监处罚〔2025〕118号",
                        "authority": "重庆市渝中区市场监督管理局",
                        "violation_type": "产品质量",
                        "facts": "销售不合格的建筑用钢筋",
                        "penalty_kinds": ["警告", "罚款"],
                        "content": "警告；罚款人民币伍万元",
                        "fine": {"value": "50000", "currency": "CNY"},
                        "decided_on": "2025-06-10",
                    },
                }
            ]
        },
    )

    category: Annotated[str, Field(min_length=1, max_length=50, title="记录类别")]
    source_id: Annotated[Text, Field(min_length=1, max_length=128, title="业务编号")]
    uscc: Annotated[Uscc | None, Field(title="统一社会信用代码")] = None
    registration_number: Annotated[RegistrationNumber | None, Field(title="工商注册号")] = None
    enterprise_name: Annotated[Text, Field(min_length=2, max_length=200, title="行政相对人名称")]
    occurred_on: Annotated[date, AfterValidator(_not_in_future), Field(title="发生日期")]
    data: dict[str, Any]


class RecordReceipt(BaseModel):
    record_id: uuid.UUID
    revision: int
    status: Literal["accepted", "revoked"]
    uscc: str | None = Field(
        default=None,
        description="The USCC the record is filed under (resolved from the registration "
        "number through the ledger when the submission gave only that)",
    )
    warnings: list[FieldError] = Field(
        default_factory=list,
        description="Accepted, but worth a look: e.g. `former_name` when enterprise_name is "
        "the enterprise's old name",
    )


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
    batch_id: uuid.UUID | None = None


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


# --- catalogue ---------------------------------------------------------------


class CategoryOut(BaseModel):
    key: str
    name: str
    description: str = ""
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


class ColumnOut(BaseModel):
    key: str = Field(description="Header key (accepted as a header, like the title)")
    title: str = Field(description="Chinese header, as in the template")
    field: str = Field(description="Where the value goes in the record (errors name it)")
    kind: str
    required: bool
    allowed: list[str]
    description: str


class QualityOut(BaseModel):
    future_allowed: list[str]
    date_order: list[list[str]]


class MistakeOut(BaseModel):
    description: str
    record: dict[str, Any]
    errors: list[dict[str, str]]


class ExampleOut(BaseModel):
    department: str
    record: dict[str, Any]
    mistake: MistakeOut


class CategoryDetail(CategoryOut):
    occurred_on_field: str | None
    check_enterprise_name: bool
    quality: QualityOut
    columns: list[ColumnOut] = Field(description="The columns of this category's CSV/XLSX files")
    example: ExampleOut


class DepartmentOut(BaseModel):
    code: str
    name: str
    kind: str
    notice_name: str | None = None
    expected_monthly: list[str] = Field(default_factory=list)


class DepartmentList(BaseModel):
    items: list[DepartmentOut]
    version: str


# --- batches -----------------------------------------------------------------

BatchStatus = Literal["queued", "processing", "done", "failed"]
BatchFormat = Literal["csv", "xlsx", "ndjson"]


class BatchAccepted(BaseModel):
    batch_id: uuid.UUID
    status: BatchStatus
    status_url: str


class BatchRowIssueOut(BaseModel):
    row: int = Field(description="Row number in the file (the header is row 1; NDJSON: line)")
    source_id: str | None
    field: str
    code: str
    message: str


class BatchFailure(BaseModel):
    code: str
    detail: str


class BatchSummary(BaseModel):
    batch_id: uuid.UUID
    department: str
    category: str | None
    format: BatchFormat
    filename: str
    size_bytes: int
    status: BatchStatus
    total: int | None = Field(description="Data rows in the file; null until counted")
    processed: int
    accepted: int = Field(description="Rows accepted (new records, corrections and repeats)")
    unchanged: int = Field(description="Accepted rows that repeated an accepted record exactly")
    rejected: int
    warnings: int
    progress: float | None = Field(description="processed / total")
    failure: BatchFailure | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BatchOut(BatchSummary):
    errors: list[BatchRowIssueOut] = Field(description="Rejected rows' errors, first ones")
    errors_truncated: bool
    row_warnings: list[BatchRowIssueOut]
    errors_csv: str = Field(description="Every rejected row with its errors, to fix and re-upload")


class BatchList(BaseModel):
    items: list[BatchSummary]
    next_cursor: str | None


# --- nil returns and compliance ---------------------------------------------


class NilReturnRequest(BaseModel):
    """A department declares it has no records of these categories for a month (零报告)."""

    model_config = ConfigDict(extra="forbid")

    period: Period
    categories: Annotated[list[str], Field(min_length=1, max_length=30)]


class NilReturnOut(BaseModel):
    department: str
    period: str
    category: str
    declared_at: datetime


class NilReturnList(BaseModel):
    items: list[NilReturnOut]


class RejectionCount(BaseModel):
    code: str
    rows: int


Finding = Literal["late", "incomplete", "inaccurate"]


class DepartmentCompliance(BaseModel):
    department: str
    name: str
    kind: str
    expected_categories: list[str]
    received_categories: list[str] = Field(description="Records or a nil return, at any time")
    received_by_deadline: list[str]
    missing_categories: list[str] = Field(description="Expected but not received (as of now)")
    nil_returns: list[str]
    records: int = Field(description="Records of the month (by occurred_on), first submissions")
    late_records: int = Field(description="Of those, first submitted after the deadline")
    rows_received: int = Field(description="Rows submitted for the month, any outcome")
    rows_accepted: int
    rows_unchanged: int
    rows_rejected: int
    rejected_share: float | None
    top_rejection_codes: list[RejectionCount]
    unmatched_records: int | None = Field(
        description="Records the ledger could not match to an enterprise (null: ledger unknown)"
    )
    last_submission_at: datetime | None
    on_time: bool | None = Field(description="null while the deadline has not passed")
    complete: bool
    accurate: bool
    findings: list[Finding]


class ComplianceRulesOut(BaseModel):
    deadline_day_of_next_month: int
    utc_offset_hours: int
    max_rejected_share: float
    unmatched_counts_as_inaccurate: bool
    source: str
    version: str


class ComplianceReport(BaseModel):
    period: str
    deadline: datetime
    deadline_passed: bool
    as_of: datetime
    rules: ComplianceRulesOut
    notes: list[str]
    items: list[DepartmentCompliance]
    total: int


def now_utc() -> datetime:
    return datetime.now(UTC)
