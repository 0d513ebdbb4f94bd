"""Coordination's API models."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
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
    if any((ord(c) < 32 and c not in "\t\n\r") or ord(c) == 127 for c in value):
        raise PydanticCustomError("control_character", "the text contains control characters")
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


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null when this is the last page"
    )
