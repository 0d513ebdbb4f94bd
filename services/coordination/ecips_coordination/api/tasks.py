from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ecips_common.app import UoW
from ecips_common.auth import Principal, require_scope
from ecips_common.identifiers import IdentifierError, validate_uscc
from ecips_common.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_RESPONSES,
    FieldError,
    InvalidInput,
    Problem,
)
from ecips_coordination.api.deps import (
    Env,
    Forwarder,
    Settings,
    bearer_token,
    parse_cursor,
    parse_limit,
    parse_uuid,
)
from ecips_coordination.models import TASK_STATUSES, TASK_TYPES
from ecips_coordination.repository import TaskFilter
from ecips_coordination.schemas import FeedbackSubmission, TaskOut, TaskPage
from ecips_coordination.service import TaskService

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=PROBLEM_RESPONSES)

Handler = Annotated[Principal, Depends(require_scope("tasks:handle"))]


def _service(uow: UoW, env: Env) -> TaskService:
    return TaskService(uow, env)


Service = Annotated[TaskService, Depends(_service)]


def _task_id(task_id: str) -> uuid.UUID:
    return parse_uuid(task_id, "task_id")


TaskId = Annotated[uuid.UUID, Depends(_task_id)]


def _filter(
    principal: Handler,
    settings: Settings,
    status: Annotated[str | None, Query(json_schema_extra={"enum": list(TASK_STATUSES)})] = None,
    type: Annotated[str | None, Query(json_schema_extra={"enum": list(TASK_TYPES)})] = None,
    uscc: str | None = None,
    limit: Annotated[str | None, Query(description="1 to 500, default 100")] = None,
    after: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> TaskFilter:
    # Validated by hand so each error names the query field exactly.
    errors: list[FieldError] = []
    if status is not None and status not in TASK_STATUSES:
        errors.append(
            FieldError(
                field="status",
                code="not_allowed",
                message=f"use one of: {', '.join(TASK_STATUSES)}",
            )
        )
    if type is not None and type not in TASK_TYPES:
        errors.append(
            FieldError(
                field="type", code="not_allowed", message=f"use one of: {', '.join(TASK_TYPES)}"
            )
        )
    if uscc is not None:
        try:
            uscc = validate_uscc(uscc)
        except IdentifierError as exc:
            errors.append(FieldError(field="uscc", code=exc.code, message=exc.message))
    page_size = parse_limit(limit, settings.tasks_page_max, errors)
    cursor = parse_cursor(after, errors)
    if errors:
        raise InvalidInput(errors)
    return TaskFilter(
        department=principal.department,
        status=status,
        type=type,
        uscc=uscc,
        after=cursor,
        limit=page_size,
    )


@router.get(
    "",
    response_model=TaskPage,
    summary="The department's tasks",
    description="Oldest first. Page with `after=next_cursor` until `next_cursor` is null.",
)
async def list_tasks(query: Annotated[TaskFilter, Depends(_filter)], service: Service) -> TaskPage:
    return await service.list(query)


@router.get("/{task_id}", response_model=TaskOut, summary="One of the department's tasks")
async def get_task(task_id: TaskId, principal: Handler, service: Service) -> TaskOut:
    return await service.describe(principal, task_id)


@router.post(
    "/{task_id}/claim",
    response_model=TaskOut,
    summary="Claim a task (签收)",
    description=(
        "open → claimed. Claiming a claimed task again changes nothing; a done task is 409."
    ),
)
async def claim_task(task_id: TaskId, principal: Handler, service: Service) -> TaskOut:
    outcome = await service.claim(principal, task_id)
    return outcome.task


@router.post(
    "/{task_id}/feedback",
    response_model=TaskOut,
    responses={
        502: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}},
        503: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}},
    },
    summary="Report back on a task (反馈); closes it",
    description=(
        "Claims the task first if it is still open. The outcome must fit the task: "
        "joint_punishment apply → measure_applied | not_applicable | no_matching_case; "
        "joint_punishment release → restriction_lifted; double_notification → "
        "license_granted (with license_number) | license_refused | not_engaged | "
        "under_supervision. Sending the same feedback again returns the task unchanged; "
        "different feedback on a done task is 409.\n\n"
        "Forwarding a granted licence: with `forward_to_ingest: true` and `license` "
        "(the decision), coordination files an `administrative_license` record at ingest "
        "in the department's name, passing the caller's own bearer token on to ingest — "
        "so the token needs `records:write` as well as `tasks:handle`. The feedback is "
        "saved only if ingest accepted the record (its receipt is kept under "
        "`feedback.forwarded`); ingest's 422 comes back as 422 `forwarding_rejected`, an "
        "unreachable ingest as 503 `ingest_unavailable`: send the same feedback again."
    ),
)
async def submit_feedback(
    task_id: TaskId,
    body: FeedbackSubmission,
    principal: Handler,
    service: Service,
    forwarder: Forwarder,
    request: Request,
) -> TaskOut:
    return await service.feedback(
        principal, task_id, body, forwarder=forwarder, token=bearer_token(request)
    )
