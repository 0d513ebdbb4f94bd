"""Coordination's API models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ecips_coordination.working_days import china_today

TaskType = Literal["double_notification", "joint_punishment"]
TaskStatus = Literal["open", "claimed", "done"]
TaskAction = Literal["apply", "release", "notify"]

# Which feedback outcomes fit which task: (type, action) -> outcomes.
OUTCOMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("joint_punishment", "apply"): ("measure_applied", "not_applicable", "no_matching_case"),
    ("joint_punishment", "release"): ("restriction_lifted",),
    ("double_notification", "notify"): (
        "license_granted",
        "license_refused",
        "not_engaged",
        "under_supervision",
    ),
}
OUTCOMES_NEEDING_LICENSE_NUMBER = frozenset({"license_granted"})


def _clean_text(value: str) -> str:
    # As ingest: C0 controls but tab and line breaks, DEL and C1 are refused, and so is
    # half a UTF-16 surrogate pair ("\ud800" in JSON), which no database can store.
    if any((ord(c) < 32 and c not in "\t\n\r") or 127 <= ord(c) <= 159 for c in value):
        raise PydanticCustomError("control_character", "the text contains control characters")
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise PydanticCustomError(
            "unpaired_surrogate",
            "the text contains half of a UTF-16 surrogate pair, which is not a character",
        )
    stripped = value.strip()
    if not stripped:
        raise PydanticCustomError("blank", "the text is blank")
    return stripped


def _not_in_future(value: date) -> date:
    if value > china_today():
        raise PydanticCustomError(
            "date_in_future", "the date {value} is in the future", {"value": value}
        )
    return value


Text = Annotated[str, AfterValidator(_clean_text)]


LicenseKind = Literal["普通", "特许", "认可", "核准", "登记", "其他"]


class LicenseDetails(BaseModel):
    """The licence decision, as ingest's ``administrative_license`` record needs it
    (行政许可 in the 双公示 data standard). Only with ``license_granted``."""

    model_config = ConfigDict(extra="forbid")

    decision_number: Annotated[Text, Field(min_length=1, max_length=100)] = Field(
        description="行政许可决定文书号; also the record's source_id at ingest"
    )
    decided_on: Annotated[date, AfterValidator(_not_in_future)] = Field(description="许可决定日期")
    valid_from: date | None = Field(default=None, description="有效期自; default decided_on")
    valid_to: date | None = Field(default=None, description="有效期至")
    license_kind: LicenseKind = Field(default="普通", description="许可类别")
    license_name: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="许可证书名称; default the catalogue's certificate name"
    )
    content: Annotated[Text, Field(min_length=1, max_length=4000)] | None = Field(
        default=None, description="许可内容; default the approval item's activity"
    )
    authority: Annotated[Text, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="许可机关; default the department's name"
    )

    @model_validator(mode="after")
    def _dates_in_order(self) -> LicenseDetails:
        start = self.valid_from or self.decided_on
        if self.valid_to is not None and self.valid_to < start:
            raise PydanticCustomError(
                "dates_out_of_order", "valid_to is before valid_from (or decided_on)"
            )
        return self


class FeedbackSubmission(BaseModel):
    """A department's report on a task; it closes the task."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "outcome": "measure_applied",
                    "note": "已在政府采购供应商库中标记限制",
                    "applied_on": "2026-03-02",
                    "case_reference": "渝财采〔2026〕12号",
                }
            ]
        },
    )

    outcome: Annotated[
        str,
        Field(
            min_length=1,
            max_length=40,
            description=(
                "joint_punishment apply: measure_applied, not_applicable, no_matching_case; "
                "joint_punishment release: restriction_lifted; double_notification: "
                "license_granted (with license_number), license_refused, not_engaged, "
                "under_supervision"
            ),
        ),
    ]
    note: Annotated[Text, Field(min_length=1, max_length=2000)]
    applied_on: Annotated[date, AfterValidator(_not_in_future)] | None = None
    case_reference: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    license_number: Annotated[Text, Field(min_length=1, max_length=100)] | None = None
    license: LicenseDetails | None = Field(
        default=None, description="license_granted only: the decision, for forwarding"
    )
    forward_to_ingest: bool = Field(
        default=False,
        description=(
            "license_granted only: also file the licence at ingest as an "
            "administrative_license record on the department's behalf. Needs `license` "
            "and a token with records:write (the caller's token is passed on to ingest)."
        ),
    )


class TaskOut(BaseModel):
    task_id: uuid.UUID
    type: TaskType
    action: TaskAction
    status: TaskStatus
    department: str
    uscc: str
    enterprise_name: str
    rule_id: str | None
    rule_version: int | None
    rule_title: str | None
    kind: str | None
    measure: str
    measure_title: str
    scenarios: list[str]
    legal_basis: str
    effective_on: date | None = Field(
        description="apply: the day the punishment started; release: the day it was lifted"
    )
    effective_until: date | None
    reason: str | None
    opened_at: datetime
    claim_due: date = Field(description="Last working day (China time) to claim the task")
    feedback_due: date = Field(description="Last working day (China time) to report back")
    claimed_at: datetime | None
    claimed_by: str | None
    done_at: datetime | None
    feedback: dict[str, Any] | None
    overdue: bool = Field(
        description="Not done and past the deadline that applies now (claim or feedback)"
    )
    trigger: Literal["registration", "scope_change"] | None = Field(
        default=None, description="double_notification: what opened the task"
    )
    scope_excerpt: str | None = Field(
        default=None, description="double_notification: the business-scope clauses that matched"
    )
    catalogue_version: str | None = Field(
        default=None, description="double_notification: the approval catalogue version used"
    )


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null when this is the last page"
    )


# --- the double-notification notice -------------------------------------------


class NoticeItem(BaseModel):
    item: str = Field(description="Approval item key in the catalogue")
    activity: str
    approval: str
    certificate: str
    departments: list[str] = Field(description="Approving department codes")
    department_names: list[str]
    legal_basis: str
    matched_text: list[str] = Field(description="The business-scope clauses that need it")


class NoticeDepartment(BaseModel):
    code: str
    name: str
    items: list[str]


class RegistrationNotice(BaseModel):
    uscc: str
    enterprise_name: str
    registration_authority: str | None
    established_on: date | None
    business_scope: str | None
    title: str
    text: str
    legal_basis: str
    items: list[NoticeItem]
    departments: list[NoticeDepartment]
    catalogue_version: str
    as_of: datetime


# --- webhooks ---------------------------------------------------------------------


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://dept.example.gov.cn/ecips/hooks", "types": ["joint_punishment"]}
            ]
        },
    )

    url: Annotated[str, Field(min_length=8, max_length=2000)]
    types: list[TaskType] = Field(
        default_factory=list, description="Task types to push; empty = all", max_length=2
    )
    description: Annotated[Text, Field(min_length=1, max_length=200)] | None = None


class SubscriptionOut(BaseModel):
    subscription_id: uuid.UUID
    department: str
    url: str
    types: list[str]
    description: str | None
    created_at: datetime
    created_by: str
    pending: int = Field(description="Deliveries waiting or retrying")
    dead: int = Field(description="Dead-lettered deliveries")


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="HMAC-SHA256 signing secret; shown only this once")


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]


class DeliveryOut(BaseModel):
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    uscc: str
    task_id: uuid.UUID
    event_type: str
    status: Literal["pending", "delivered", "dead", "cancelled"]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None
    payload: dict[str, Any]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


# --- reports ------------------------------------------------------------------


class CoordinationReportRow(BaseModel):
    department: str
    name: str = Field(description="The department's name")
    workflow: TaskType
    opened: int = Field(description="Tasks opened in the period")
    on_time: int = Field(description="Done, claimed by claim_due and reported by feedback_due")
    late: int = Field(description="Done, but claimed or reported after its deadline")
    open: int = Field(description="Not done yet")
    overdue: int = Field(description="Of the open ones, past the deadline that applies today")
    claimed_late: int = Field(
        description="Claimed (received) after claim_due, or still unclaimed past it"
    )
    on_time_rate: float | None = Field(description="on_time / (on_time + late + overdue)")


class CoordinationReport(BaseModel):
    report: Literal["coordination"] = "coordination"
    period: str
    period_start: date
    period_end: date
    as_of: datetime
    calendar_version: str
    items: list[CoordinationReportRow]
    total: int = Field(description="Number of items")
