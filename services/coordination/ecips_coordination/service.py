"""Opening, claiming and closing coordination tasks."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecips_common.auth import Principal
from ecips_common.contracts import MeasureRef, PunishmentLifted, PunishmentTriggered, TaskChanged
from ecips_common.db import UnitOfWork
from ecips_common.problems import FieldError, InvalidInput, NotFound, ProblemError
from ecips_coordination.models import Task
from ecips_coordination.repository import TaskFilter, TaskRepository
from ecips_coordination.schemas import (
    OUTCOMES,
    OUTCOMES_NEEDING_LICENSE_NUMBER,
    FeedbackSubmission,
    TaskOut,
    TaskPage,
)
from ecips_coordination.working_days import add_working_days, china_date, china_today

logger = logging.getLogger("ecips.coordination")


@dataclass(frozen=True, slots=True)
class Deadlines:
    claim_working_days: int = 3
    feedback_working_days: int = 10


def apply_key(event: PunishmentTriggered, measure: MeasureRef) -> str:
    """What makes an ``apply`` task unique: the punishment (enterprise, rule,
    start day) and the (department, measure) that must carry it out.

    Neither the event id nor the rule version is part of it: a redelivery, a
    re-announcement under a new event id, or a new rule version restating the
    same punishment all land on the same task.
    """
    return ":".join(
        ("joint_punishment", "apply", event.uscc, event.rule_id, event.since.isoformat(),
         measure.department, measure.measure)
    )  # fmt: skip


def release_key(event: PunishmentLifted, measure: MeasureRef) -> str:
    """A lifting is identified by (enterprise, rule, day lifted, department, measure)."""
    return ":".join(
        ("joint_punishment", "release", event.uscc, event.rule_id, event.lifted_on.isoformat(),
         measure.department, measure.measure)
    )  # fmt: skip


def per_department_measure(measures: list[MeasureRef]) -> list[MeasureRef]:
    """One entry per (department, measure), first occurrence wins."""
    seen: dict[tuple[str, str], MeasureRef] = {}
    for measure in measures:
        seen.setdefault((measure.department, measure.measure), measure)
    return list(seen.values())


def is_overdue(task: Task, now: datetime) -> bool:
    if task.status == "done":
        return False
    today = china_today(now)
    if today > task.feedback_due:
        return True
    return task.status == "open" and today > task.claim_due


def task_out(task: Task, now: datetime) -> TaskOut:
    return TaskOut(
        task_id=task.task_id,
        type=task.type,
        action=task.action,
        status=task.status,
        department=task.department,
        uscc=task.uscc,
        enterprise_name=task.enterprise_name,
        rule_id=task.rule_id,
        rule_version=task.rule_version,
        rule_title=task.rule_title,
        kind=task.kind,
        measure=task.measure,
        measure_title=task.measure_title,
        scenarios=list(task.scenarios or []),
        legal_basis=task.legal_basis,
        effective_on=task.effective_on,
        effective_until=task.effective_until,
        reason=task.reason,
        opened_at=task.opened_at,
        claim_due=task.claim_due,
        feedback_due=task.feedback_due,
        claimed_at=task.claimed_at,
        claimed_by=task.claimed_by,
        done_at=task.done_at,
        feedback=task.feedback,
        overdue=is_overdue(task, now),
    )


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    task: TaskOut
    changed: bool


class TaskService:
    def __init__(self, uow: UnitOfWork, deadlines: Deadlines | None = None) -> None:
        self._uow = uow
        self._tasks = TaskRepository(uow.session)
        self._deadlines = deadlines or Deadlines()

    # --- opening tasks from events --------------------------------------

    def _base_values(self, *, event_id: str, now: datetime) -> dict[str, Any]:
        opened_on = china_date(now)
        return {
            "task_id": uuid.uuid4(),
            "source_event_id": event_id,
            "type": "joint_punishment",
            "status": "open",
            "opened_at": now,
            "claim_due": add_working_days(opened_on, self._deadlines.claim_working_days),
            "feedback_due": add_working_days(opened_on, self._deadlines.feedback_working_days),
        }

    async def on_punishment_triggered(self, event_id: str, event: PunishmentTriggered) -> int:
        now = datetime.now(UTC)
        opened = 0
        for measure in per_department_measure(event.measures):
            if await self._tasks.release_on_or_after(
                uscc=event.uscc,
                rule_id=event.rule_id,
                department=measure.department,
                measure=measure.measure,
                since=event.since,
            ):
                logger.info(
                    "trigger arrived after its lifting; no apply task",
                    extra={"event_id": event_id, "rule_id": event.rule_id},
                )
                continue
            task = await self._tasks.open_if_new(
                self._base_values(event_id=event_id, now=now)
                | {
                    "idempotency_key": apply_key(event, measure),
                    "action": "apply",
                    "department": measure.department,
                    "uscc": event.uscc,
                    "enterprise_name": event.enterprise_name,
                    "rule_id": event.rule_id,
                    "rule_version": event.rule_version,
                    "rule_title": event.rule_title,
                    "kind": event.kind,
                    "measure": measure.measure,
                    "measure_title": measure.title,
                    "scenarios": list(measure.scenarios),
                    "legal_basis": measure.legal_basis or event.legal_basis,
                    "effective_on": event.since,
                    "effective_until": event.until,
                }
            )
            if task is not None:
                self._emit(task, now)
                opened += 1
        return opened

    async def on_punishment_lifted(self, event_id: str, event: PunishmentLifted) -> int:
        now = datetime.now(UTC)
        opened = 0
        for measure in per_department_measure(event.measures):
            task = await self._tasks.open_if_new(
                self._base_values(event_id=event_id, now=now)
                | {
                    "idempotency_key": release_key(event, measure),
                    "action": "release",
                    "department": measure.department,
                    "uscc": event.uscc,
                    "enterprise_name": event.enterprise_name,
                    "rule_id": event.rule_id,
                    "rule_version": event.rule_version,
                    "kind": event.kind,
                    "measure": measure.measure,
                    "measure_title": measure.title,
                    "scenarios": list(measure.scenarios),
                    "legal_basis": measure.legal_basis,
                    "effective_on": event.lifted_on,
                    "reason": event.reason,
                }
            )
            if task is not None:
                self._emit(task, now)
                opened += 1
        return opened

    # --- department actions ---------------------------------------------

    async def list(self, query: TaskFilter) -> TaskPage:
        tasks = await self._tasks.list(query)
        now = datetime.now(UTC)
        full = len(tasks) == query.limit
        return TaskPage(
            items=[task_out(t, now) for t in tasks],
            next_cursor=str(tasks[-1].seq) if full else None,
        )

    async def describe(self, principal: Principal, task_id: uuid.UUID) -> TaskOut:
        task = await self._own_task(principal, task_id)
        return task_out(task, datetime.now(UTC))

    async def claim(self, principal: Principal, task_id: uuid.UUID) -> ClaimOutcome:
        task = await self._own_task(principal, task_id, for_update=True)
        now = datetime.now(UTC)
        if task.status == "done":
            raise ProblemError(
                409, "task_done", "Task already done", f"Task {task_id} already has feedback."
            )
        if task.status == "claimed":
            return ClaimOutcome(task_out(task, now), changed=False)
        self._mark_claimed(task, principal, now)
        return ClaimOutcome(task_out(task, now), changed=True)

    async def feedback(
        self, principal: Principal, task_id: uuid.UUID, submission: FeedbackSubmission
    ) -> TaskOut:
        task = await self._own_task(principal, task_id, for_update=True)
        check_feedback(task, submission)
        record = submission.model_dump(mode="json", exclude_none=True)
        now = datetime.now(UTC)
        if task.status == "done":
            if _same_feedback(task.feedback, record):
                return task_out(task, now)  # a retried submission
            raise ProblemError(
                409,
                "task_done",
                "Task already done",
                f"Task {task_id} already has different feedback.",
            )
        if task.status == "open":
            self._mark_claimed(task, principal, now)  # feedback implies a claim
        record["submitted_by"] = principal.subject
        record["submitted_at"] = now.isoformat()
        task.feedback = record
        task.status = "done"
        task.done_at = now
        await self._uow.session.flush()
        self._emit(task, now)
        return task_out(task, now)

    # --- helpers --------------------------------------------------------

    def _mark_claimed(self, task: Task, principal: Principal, now: datetime) -> None:
        task.status = "claimed"
        task.claimed_at = now
        task.claimed_by = principal.subject
        self._emit(task, now)

    async def _own_task(
        self, principal: Principal, task_id: uuid.UUID, *, for_update: bool = False
    ) -> Task:
        task = await self._tasks.get(task_id, for_update=for_update)
        if task is None:
            raise NotFound("task", f"No task {task_id}.")
        if task.department != principal.department:
            raise ProblemError(
                403,
                "not_own_task",
                "Forbidden",
                f"Task {task_id} belongs to another department.",
            )
        return task

    def _emit(self, task: Task, now: datetime) -> None:
        self._uow.emit(
            TaskChanged(
                task_id=task.task_id,
                type=task.type,
                action=task.action,
                status=task.status,
                department=task.department,
                uscc=task.uscc,
                changed_at=now,
            ),
            subject=task.uscc,
        )


def check_feedback(task: Task, submission: FeedbackSubmission) -> None:
    allowed = OUTCOMES.get((task.type, task.action), ())
    errors: list[FieldError] = []
    if submission.outcome not in allowed:
        errors.append(
            FieldError(
                field="outcome",
                code="not_allowed",
                message=(
                    f"{submission.outcome!r} is not an outcome of a {task.type} {task.action} "
                    f"task; use one of: {', '.join(allowed)}"
                ),
            )
        )
    elif submission.outcome in OUTCOMES_NEEDING_LICENSE_NUMBER:
        if submission.license_number is None:
            errors.append(
                FieldError(
                    field="license_number",
                    code="required",
                    message=f"{submission.outcome} needs the licence number",
                )
            )
    elif submission.license_number is not None:
        errors.append(
            FieldError(
                field="license_number",
                code="not_allowed",
                message=f"a licence number does not belong to a {submission.outcome} report",
            )
        )
    if errors:
        raise InvalidInput(errors)


def _same_feedback(stored: dict[str, Any] | None, submitted: dict[str, Any]) -> bool:
    if stored is None:
        return False
    kept = {k: v for k, v in stored.items() if k not in ("submitted_by", "submitted_at")}
    return kept == submitted
