"""Coordination's business: opening tasks from events (joint punishment,
double notification), the departments' claims and feedback, the notice to
the applicant, webhook subscriptions and the coordination report."""

from __future__ import annotations

import calendar as month_calendar
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.auth import Principal
from ecips_common.contracts import (
    EnterpriseChanged,
    MeasureRef,
    PunishmentLifted,
    PunishmentTriggered,
    RecordFiled,
    TaskChanged,
)
from ecips_common.db import UnitOfWork
from ecips_common.problems import FieldError, InvalidInput, NotFound, ProblemError
from ecips_coordination.catalogue import ApprovalCatalogue, Match
from ecips_coordination.models import Delivery, Registration, Subscription, Task
from ecips_coordination.repository import (
    DeliveryFilter,
    DeliveryRepository,
    RegistrationRepository,
    ReportRepository,
    SubscriptionRepository,
    TaskFilter,
    TaskRepository,
)
from ecips_coordination.schemas import (
    OUTCOMES,
    OUTCOMES_NEEDING_LICENSE_NUMBER,
    CoordinationReport,
    CoordinationReportRow,
    DeliveryOut,
    DeliveryPage,
    FeedbackSubmission,
    NoticeDepartment,
    NoticeItem,
    RegistrationNotice,
    SubscriptionCreated,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionRequest,
    TaskOut,
    TaskPage,
)
from ecips_coordination.webhooks import UnsafeTarget, check_target, delivery_row, new_secret
from ecips_coordination.working_days import (
    CHINA,
    WorkingCalendar,
    china_date,
    china_today,
    default_calendar,
)

logger = logging.getLogger("ecips.coordination")

Clock = Callable[[], datetime]

REGISTRATION_CATEGORIES = ("registration", "registration_change")
ACTIVE_STATUS = "存续"

# A ledger event with the id of the message that carried it (the tasks a
# snapshot opens keep it; a filing's is not needed).
LedgerEvent = tuple[str, EnterpriseChanged | RecordFiled]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Deadlines:
    claim_working_days: int = 3
    feedback_working_days: int = 10


@dataclass(frozen=True)
class Environment:
    """What the business rules depend on besides the database: deadlines and
    the calendar they count in, the approval catalogue, and the clock."""

    deadlines: Deadlines = field(default_factory=Deadlines)
    calendar: WorkingCalendar = field(default_factory=default_calendar)
    approvals: ApprovalCatalogue | None = None
    clock: Clock = utc_now

    def catalogue(self) -> ApprovalCatalogue:
        if self.approvals is None:
            raise RuntimeError("no approval catalogue loaded")
        return self.approvals


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


def notify_key(uscc: str, item: str, department: str, ledger_version: int) -> str:
    """A double notification is about (enterprise, approval item, department),
    opened by one version of the enterprise's data: a redelivered snapshot never
    opens a second task, while an item that leaves the scope and comes back
    later is notified again."""
    return ":".join(("double_notification", "notify", uscc, item, department, str(ledger_version)))


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
        trigger=task.trigger,
        scope_excerpt=task.scope_excerpt,
        catalogue_version=task.catalogue_version,
    )


def is_active(event: EnterpriseChanged) -> bool:
    if event.status_code is not None:
        return event.status_code == "active"
    return event.status == ACTIVE_STATUS


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    task: TaskOut
    changed: bool


class IngestForwarder:
    """Files a granted licence at ingest (``POST /v1/records``) with the
    department's own token: coordination holds no right to write records."""

    def __init__(self, http: httpx.AsyncClient, ingest_url: str) -> None:
        self._http = http
        self._url = f"{ingest_url.rstrip('/')}/v1/records"

    async def submit(self, record: dict[str, Any], token: str) -> dict[str, Any]:
        try:
            response = await self._http.post(
                self._url, json=record, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError as exc:
            raise ProblemError(
                503,
                "ingest_unavailable",
                "Ingest is unavailable",
                f"The licence could not be forwarded ({exc.__class__.__name__}); nothing "
                "was saved, send the feedback again.",
                headers={"Retry-After": "5"},
            ) from exc
        body = _json_or_empty(response)
        if response.status_code in (200, 202):
            return {k: body.get(k) for k in ("record_id", "revision", "status")}
        detail = str(body.get("detail") or body.get("title") or response.text[:300])
        if response.status_code == 422:
            errors = [
                FieldError(
                    field=_ingest_field(str(e.get("field", ""))),
                    code=str(e.get("code", "invalid")),
                    message=str(e.get("message", "")),
                )
                for e in body.get("errors") or []
                if isinstance(e, dict)
            ]
            raise ProblemError(
                422,
                "forwarding_rejected",
                "Ingest rejected the licence record",
                detail,
                errors=errors or [FieldError(field="license", code="rejected", message=detail)],
            )
        if response.status_code in (401, 403):
            raise ProblemError(
                403, "forwarding_refused", "Ingest refused the department's token", detail
            )
        raise ProblemError(
            502,
            "ingest_error",
            "Ingest failed",
            f"Ingest answered {response.status_code}; nothing was saved, send the feedback again.",
        )


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _ingest_field(field_path: str) -> str:
    """Name ingest's record field as the feedback field the department sent."""
    if field_path.startswith("data."):
        name = field_path.removeprefix("data.")
        return "license_number" if name == "license_number" else f"license.{name}"
    return f"forwarded_record.{field_path}" if field_path else "license"


class TaskService:
    def __init__(self, uow: UnitOfWork, env: Environment | None = None) -> None:
        self._uow = uow
        self._env = env or Environment()
        self._tasks = TaskRepository(uow.session)
        self._registrations = RegistrationRepository(uow.session)
        self._subscriptions = SubscriptionRepository(uow.session)
        self._deliveries = DeliveryRepository(uow.session)

    # --- opening tasks from events --------------------------------------

    def _base_values(self, *, event_id: str, now: datetime, type: str) -> dict[str, Any]:
        opened_on = china_date(now)
        deadlines = self._env.deadlines
        calendar = self._env.calendar
        return {
            "task_id": uuid.uuid4(),
            "source_event_id": event_id,
            "type": type,
            "status": "open",
            "opened_at": now,
            "claim_due": calendar.add_working_days(opened_on, deadlines.claim_working_days),
            "feedback_due": calendar.add_working_days(opened_on, deadlines.feedback_working_days),
        }

    async def on_punishment_triggered(self, event_id: str, event: PunishmentTriggered) -> int:
        now = self._env.clock()
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
                self._base_values(event_id=event_id, now=now, type="joint_punishment")
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
                await self._announce(task, now)
                opened += 1
        return opened

    async def on_punishment_lifted(self, event_id: str, event: PunishmentLifted) -> int:
        now = self._env.clock()
        opened = 0
        # A revised rule that keeps a measure keeps it in force: nothing to release.
        continued = {(m.department, m.measure) for m in event.continued_measures}
        for measure in per_department_measure(event.measures):
            if (measure.department, measure.measure) in continued:
                continue
            task = await self._tasks.open_if_new(
                self._base_values(event_id=event_id, now=now, type="joint_punishment")
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
                await self._announce(task, now)
                opened += 1
        return opened

    async def on_record_filed(self, event: RecordFiled) -> None:
        """One filing: a run of one."""
        await self.on_ledger_events([("", event)])

    async def on_enterprise_changed(self, event_id: str, event: EnterpriseChanged) -> int:
        """One snapshot: a run of one."""
        return await self.on_ledger_events([(event_id, event)])

    async def on_ledger_events(self, events: Sequence[LedgerEvent]) -> int:
        """Apply a run of the ledger's snapshots and filings in delivery order,
        against the enterprises' rows locked together: the state and tasks of
        applying them one by one, with a few statements for the whole run.
        Returns how many tasks were opened."""
        relevant = [
            (event_id, event)
            for event_id, event in events
            if isinstance(event, EnterpriseChanged) or is_registration_filing(event)
        ]
        if not relevant:
            return 0
        # A new enterprise's row is created under the name its first event gives.
        names: dict[str, str] = {}
        for _, event in relevant:
            names.setdefault(event.uscc, _name_of(event))
        registrations = await self._registrations.lock_all(names)
        now = self._env.clock()
        opened = 0
        for event_id, event in relevant:
            registration = registrations[event.uscc]
            if isinstance(event, EnterpriseChanged):
                opened += await self._apply_snapshot(registration, event_id, event, now)
            else:
                _apply_filing(registration, event, now)
        return opened

    async def _apply_snapshot(
        self, registration: Registration, event_id: str, event: EnterpriseChanged, now: datetime
    ) -> int:
        """Double notification: tasks for the approval items the business scope
        newly needs. Snapshots older than the one applied are ignored."""
        catalogue = self._env.catalogue()
        if event.version <= registration.ledger_version:
            return 0
        # Most snapshots only change counts. With the scope, registration,
        # status and catalogue as stored, the stored match stands and opens
        # nothing new, so the scope is not matched again.
        same_match = (
            registration.business_scope == event.business_scope
            and registration.registered == event.registered
            and registration.status == event.status
            and registration.catalogue_version == catalogue.version
        )
        previous = {entry["item"] for entry in registration.matched or []}
        first_notification = not registration.notified
        active = event.registered and is_active(event)
        registration.enterprise_name = event.name
        registration.registered = event.registered
        registration.status = event.status
        registration.business_scope = event.business_scope
        registration.registration_authority = event.registration_authority
        registration.established_on = event.established_on
        registration.ledger_version = event.version
        registration.catalogue_version = catalogue.version
        registration.updated_at = now
        if active:
            registration.notified = True
        if same_match:
            return 0
        matches = catalogue.match(event.business_scope) if active else []
        registration.matched = [{"item": m.item.key, "clauses": list(m.clauses)} for m in matches]
        if not active:
            return 0
        trigger = "registration" if first_notification else "scope_change"
        opened = 0
        for match in matches:
            if match.item.key in previous:
                continue  # told already; only newly needed approvals open tasks
            for department in match.item.departments:
                task = await self._tasks.open_if_new(
                    self._base_values(event_id=event_id, now=now, type="double_notification")
                    | self._notification_values(
                        registration, event, match, department, trigger, catalogue.version
                    )
                )
                if task is not None:
                    await self._announce(task, now)
                    opened += 1
        return opened

    @staticmethod
    def _notification_values(
        registration: Registration,
        event: EnterpriseChanged,
        match: Match,
        department: str,
        trigger: str,
        catalogue_version: str,
    ) -> dict[str, Any]:
        filing = registration.filing or {}
        reference = f"（{filing['source_id']}）" if filing.get("source_id") else ""
        if trigger == "registration":
            reason = f"新设立登记{reference}：经营范围含后置审批事项“{match.item.activity}”"
            effective_on = event.established_on
        else:
            reason = f"经营范围变更{reference}：新增后置审批事项“{match.item.activity}”"
            occurred = filing.get("occurred_on")
            effective_on = (
                date.fromisoformat(occurred)
                if filing.get("category") == "registration_change" and occurred
                else china_date(event.changed_at)
            )
        return {
            "idempotency_key": notify_key(event.uscc, match.item.key, department, event.version),
            "action": "notify",
            "department": department,
            "uscc": event.uscc,
            "enterprise_name": event.name,
            "measure": match.item.key,
            "measure_title": match.item.approval,
            "scenarios": [],
            "legal_basis": match.item.legal_basis,
            "effective_on": effective_on,
            "reason": reason,
            "trigger": trigger,
            "scope_excerpt": "；".join(match.clauses),
            "catalogue_version": catalogue_version,
        }

    # --- department actions ---------------------------------------------

    async def list(self, query: TaskFilter) -> TaskPage:
        tasks = await self._tasks.list(query)
        now = self._env.clock()
        full = len(tasks) == query.limit
        return TaskPage(
            items=[task_out(t, now) for t in tasks],
            next_cursor=str(tasks[-1].seq) if full else None,
        )

    async def describe(self, principal: Principal, task_id: uuid.UUID) -> TaskOut:
        task = await self._own_task(principal, task_id)
        return task_out(task, self._env.clock())

    async def claim(self, principal: Principal, task_id: uuid.UUID) -> ClaimOutcome:
        task = await self._own_task(principal, task_id, for_update=True)
        now = self._env.clock()
        if task.status == "done":
            raise ProblemError(
                409, "task_done", "Task already done", f"Task {task_id} already has feedback."
            )
        if task.status == "claimed":
            return ClaimOutcome(task_out(task, now), changed=False)
        await self._mark_claimed(task, principal, now)
        return ClaimOutcome(task_out(task, now), changed=True)

    async def feedback(
        self,
        principal: Principal,
        task_id: uuid.UUID,
        submission: FeedbackSubmission,
        *,
        forwarder: IngestForwarder | None = None,
        token: str | None = None,
    ) -> TaskOut:
        task = await self._own_task(principal, task_id, for_update=True)
        check_feedback(task, submission)
        record = submission.model_dump(mode="json", exclude_none=True)
        now = self._env.clock()
        if task.status == "done":
            if _same_feedback(task.feedback, record):
                return task_out(task, now)  # a retried submission
            raise ProblemError(
                409,
                "task_done",
                "Task already done",
                f"Task {task_id} already has different feedback.",
            )
        forwarded: dict[str, Any] | None = None
        if submission.forward_to_ingest:
            if not principal.has("records:write"):
                raise ProblemError(
                    403,
                    "insufficient_scope",
                    "Forbidden",
                    "Forwarding the licence to ingest files a record in the department's "
                    "name: the token needs the 'records:write' scope as well.",
                )
            if forwarder is None or token is None:
                raise ProblemError(503, "forwarding_unavailable", "Forwarding is not configured")
            # The task row stays locked meanwhile, so two concurrent submissions
            # cannot both forward; ingest is idempotent on a retry after a crash.
            forwarded = await forwarder.submit(self._license_record(task, submission), token)
        if task.status == "open":
            await self._mark_claimed(task, principal, now)  # feedback implies a claim
        record["submitted_by"] = principal.subject
        record["submitted_at"] = now.isoformat()
        if forwarded is not None:
            record["forwarded"] = forwarded
        task.feedback = record
        task.status = "done"
        task.done_at = now
        await self._uow.session.flush()
        await self._announce(task, now)
        return task_out(task, now)

    def _license_record(self, task: Task, submission: FeedbackSubmission) -> dict[str, Any]:
        """The ``administrative_license`` record ingest expects (双公示 fields)."""
        license = submission.license
        assert license is not None
        assert submission.license_number is not None
        catalogue = self._env.approvals
        item = catalogue.items.get(task.measure) if catalogue is not None else None
        authority = license.authority or (
            catalogue.department_name(task.department) if catalogue else task.department
        )
        data: dict[str, Any] = {
            "decision_number": license.decision_number,
            "authority": authority,
            "decided_on": license.decided_on.isoformat(),
            "legal_basis": task.legal_basis[:1000],
            "license_kind": license.license_kind,
            "license_name": license.license_name
            or (item.certificate if item else task.measure_title),
            "license_number": submission.license_number,
            "content": license.content or (item.activity if item else task.measure_title),
            "valid_from": (license.valid_from or license.decided_on).isoformat(),
            "state": "有效",
        }
        if license.valid_to is not None:
            data["valid_to"] = license.valid_to.isoformat()
        return {
            "category": "administrative_license",
            "source_id": license.decision_number,
            "uscc": task.uscc,
            "enterprise_name": task.enterprise_name,
            "occurred_on": license.decided_on.isoformat(),
            "data": data,
        }

    # --- helpers --------------------------------------------------------

    async def _mark_claimed(self, task: Task, principal: Principal, now: datetime) -> None:
        task.status = "claimed"
        task.claimed_at = now
        task.claimed_by = principal.subject
        await self._announce(task, now)

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

    async def _announce(self, task: Task, now: datetime) -> None:
        """A task changed: tell the topic (outbox) and the department's webhooks,
        both in this transaction."""
        change = TaskChanged(
            task_id=task.task_id,
            type=task.type,
            action=task.action,
            status=task.status,
            department=task.department,
            uscc=task.uscc,
            changed_at=now,
            measure=task.measure,
        )
        self._uow.emit(change, subject=task.uscc)
        subscriptions = [
            s
            for s in await self._subscriptions.active_for(task.department)
            if not s.types or task.type in s.types
        ]
        if not subscriptions:
            return
        payload = {
            "type": TaskChanged.event_type,
            "time": now.isoformat(),
            "subject": task.uscc,
            "data": {
                "status": task.status,
                "task": task_out(task, now).model_dump(mode="json"),
            },
        }
        await self._deliveries.add_many(
            [
                delivery_row(
                    subscription=s,
                    uscc=task.uscc,
                    task_id=task.task_id,
                    event_type=TaskChanged.event_type,
                    payload=payload,
                    now=now,
                )
                for s in subscriptions
            ]
        )


def is_registration_filing(event: RecordFiled) -> bool:
    """Only the registration document behind the enterprise's data is kept
    (for the tasks' reason); every other filing leaves coordination alone."""
    return event.category in REGISTRATION_CATEGORIES and event.status == "active"


def _name_of(event: EnterpriseChanged | RecordFiled) -> str:
    if isinstance(event, EnterpriseChanged):
        return event.name
    name = event.data.get("name")
    return name if isinstance(name, str) else ""


def _apply_filing(registration: Registration, event: RecordFiled, now: datetime) -> None:
    """Remember the latest registration filing (the master data itself comes
    from EnterpriseChanged); on the same day a change outranks the founding."""
    filing = {
        "record_id": str(event.record_id),
        "category": event.category,
        "source_id": event.source_id,
        "department": event.department,
        "occurred_on": event.occurred_on.isoformat(),
        "changes": _changed_items(event.data),
    }
    current = registration.filing
    if current is None or (
        current.get("occurred_on", ""),
        current.get("category") == "registration_change",
    ) <= (filing["occurred_on"], filing["category"] == "registration_change"):
        registration.filing = filing
        registration.updated_at = now


def _changed_items(data: dict[str, Any]) -> list[str]:
    changes = data.get("changes")
    if not isinstance(changes, list):
        return []
    return [str(c.get("item")) for c in changes if isinstance(c, dict) and c.get("item")]


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
        if submission.forward_to_ingest and submission.license is None:
            errors.append(
                FieldError(
                    field="license",
                    code="required",
                    message="forwarding to ingest needs the licence decision (license)",
                )
            )
    else:
        for name, present in (
            ("license_number", submission.license_number is not None),
            ("license", submission.license is not None),
            ("forward_to_ingest", submission.forward_to_ingest),
        ):
            if present:
                errors.append(
                    FieldError(
                        field=name,
                        code="not_allowed",
                        message=f"{name} belongs only to a license_granted report",
                    )
                )
    if errors:
        raise InvalidInput(errors)


def _same_feedback(stored: dict[str, Any] | None, submitted: dict[str, Any]) -> bool:
    if stored is None:
        return False
    kept = {
        k: v for k, v in stored.items() if k not in ("submitted_by", "submitted_at", "forwarded")
    }
    return kept == submitted


# --- the notice to the applicant ---------------------------------------------


class NoticeService:
    def __init__(self, session: AsyncSession, env: Environment) -> None:
        self._registrations = RegistrationRepository(session)
        self._env = env

    async def notice(self, uscc: str) -> RegistrationNotice:
        catalogue = self._env.catalogue()
        registration = await self._registrations.get(uscc)
        if registration is None or not registration.registered:
            raise NotFound(
                "registration",
                f"No registration of {uscc} has reached coordination (yet).",
            )
        items: list[NoticeItem] = []
        departments: dict[str, list[str]] = {}
        for entry in registration.matched or []:
            item = catalogue.items.get(entry["item"])
            if item is None:
                logger.warning(
                    "approval item no longer in the catalogue",
                    extra={"item": entry["item"], "uscc": uscc},
                )
                continue
            items.append(
                NoticeItem(
                    item=item.key,
                    activity=item.activity,
                    approval=item.approval,
                    certificate=item.certificate,
                    departments=list(item.departments),
                    department_names=[catalogue.department_name(d) for d in item.departments],
                    legal_basis=item.legal_basis,
                    matched_text=list(entry.get("clauses") or []),
                )
            )
            for code in item.departments:
                departments.setdefault(code, []).append(item.key)
        return RegistrationNotice(
            uscc=registration.uscc,
            enterprise_name=registration.enterprise_name,
            registration_authority=registration.registration_authority,
            established_on=registration.established_on,
            business_scope=registration.business_scope,
            title=catalogue.notice.title,
            text=catalogue.notice.text,
            legal_basis=catalogue.notice.legal_basis,
            items=items,
            departments=[
                NoticeDepartment(code=code, name=catalogue.department_name(code), items=keys)
                for code, keys in departments.items()
            ],
            catalogue_version=registration.catalogue_version or catalogue.version,
            as_of=registration.updated_at,
        )


# --- webhook subscriptions ----------------------------------------------------


class SubscriptionService:
    def __init__(self, uow: UnitOfWork, *, allow_private_targets: bool, clock: Clock) -> None:
        self._uow = uow
        self._subscriptions = SubscriptionRepository(uow.session)
        self._deliveries = DeliveryRepository(uow.session)
        self._allow_private = allow_private_targets
        self._clock = clock

    async def create(
        self, principal: Principal, request: SubscriptionRequest
    ) -> SubscriptionCreated:
        try:
            url = check_target(request.url, allow_private=self._allow_private)
        except UnsafeTarget as exc:
            raise InvalidInput(
                [FieldError(field="url", code="unsafe_url", message=str(exc))]
            ) from None
        subscription = Subscription(
            subscription_id=uuid.uuid4(),
            department=principal.department,
            url=url,
            secret=new_secret(),
            types=list(dict.fromkeys(request.types)),
            description=request.description,
            created_at=self._clock(),
            created_by=principal.subject,
        )
        self._subscriptions.add(subscription)
        await self._uow.session.flush()
        out = _subscription_out(subscription, {})
        return SubscriptionCreated(**out.model_dump(), secret=subscription.secret)

    async def list(self, principal: Principal) -> SubscriptionPage:
        subscriptions = await self._subscriptions.active_for(principal.department)
        counts = await self._subscriptions.delivery_counts(
            [s.subscription_id for s in subscriptions]
        )
        return SubscriptionPage(items=[_subscription_out(s, counts) for s in subscriptions])

    async def delete(self, principal: Principal, subscription_id: uuid.UUID) -> None:
        subscription = await self._own(principal, subscription_id)
        if subscription.deleted_at is not None:
            return
        now = self._clock()
        subscription.deleted_at = now
        await self._deliveries.cancel_pending(subscription_id, now)

    async def deliveries(self, principal: Principal, query: DeliveryFilter) -> DeliveryPage:
        if query.subscription_id is not None:
            await self._own(principal, query.subscription_id)
        rows = await self._deliveries.list(query)
        full = len(rows) == query.limit
        return DeliveryPage(
            items=[_delivery_out(d) for d in rows],
            next_cursor=str(rows[-1].seq) if full else None,
        )

    async def redeliver(self, principal: Principal, delivery_id: uuid.UUID) -> DeliveryOut:
        delivery = await self._deliveries.get(delivery_id, for_update=True)
        if delivery is None:
            raise NotFound("delivery", f"No delivery {delivery_id}.")
        if delivery.department != principal.department:
            raise ProblemError(
                403, "not_own_delivery", "Forbidden", "The delivery is another department's."
            )
        if delivery.status == "pending":
            return _delivery_out(delivery)
        if delivery.status == "cancelled":
            raise ProblemError(
                409,
                "subscription_deleted",
                "Subscription deleted",
                "The delivery's subscription was deleted; subscribe again.",
            )
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = datetime.now(UTC)
        delivery.leased_until = None
        delivery.dead_at = None
        delivery.delivered_at = None
        await self._uow.session.flush()
        return _delivery_out(delivery)

    async def _own(self, principal: Principal, subscription_id: uuid.UUID) -> Subscription:
        subscription = await self._subscriptions.get(subscription_id)
        if subscription is None:
            raise NotFound("subscription", f"No subscription {subscription_id}.")
        if subscription.department != principal.department:
            raise ProblemError(
                403,
                "not_own_subscription",
                "Forbidden",
                f"Subscription {subscription_id} belongs to another department.",
            )
        return subscription


def _subscription_out(
    subscription: Subscription, counts: dict[tuple[uuid.UUID, str], int]
) -> SubscriptionOut:
    return SubscriptionOut(
        subscription_id=subscription.subscription_id,
        department=subscription.department,
        url=subscription.url,
        types=list(subscription.types or []),
        description=subscription.description,
        created_at=subscription.created_at,
        created_by=subscription.created_by,
        pending=counts.get((subscription.subscription_id, "pending"), 0),
        dead=counts.get((subscription.subscription_id, "dead"), 0),
    )


def _delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=delivery.delivery_id,
        subscription_id=delivery.subscription_id,
        uscc=delivery.uscc,
        task_id=delivery.task_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
        dead_at=delivery.dead_at,
        payload=delivery.payload,
    )


# --- the coordination report ----------------------------------------------------


def month_bounds(period: str) -> tuple[date, date]:
    """First and last day of a ``YYYY-MM`` period."""
    year, month = (int(part) for part in period.split("-"))
    return date(year, month, 1), date(year, month, month_calendar.monthrange(year, month)[1])


class ReportService:
    def __init__(self, session: AsyncSession, env: Environment) -> None:
        self._reports = ReportRepository(session)
        self._env = env

    async def coordination(self, period: str, department: str | None) -> CoordinationReport:
        first, last = month_bounds(period)
        start = datetime.combine(first, datetime.min.time(), CHINA)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), CHINA)
        now = self._env.clock()
        rows = await self._reports.coordination(
            start=start, end=end, today=china_today(now), department=department
        )
        catalogue = self._env.approvals
        items = []
        for row in rows:
            judged = row.on_time + row.late + row.overdue
            items.append(
                CoordinationReportRow(
                    department=row.department,
                    name=(
                        catalogue.department_name(row.department) if catalogue else row.department
                    ),
                    workflow=row.workflow,
                    opened=row.opened,
                    on_time=row.on_time,
                    late=row.late,
                    open=row.open,
                    overdue=row.overdue,
                    claimed_late=row.claimed_late,
                    on_time_rate=round(row.on_time / judged, 4) if judged else None,
                )
            )
        return CoordinationReport(
            period=period,
            period_start=first,
            period_end=last,
            as_of=now,
            calendar_version=self._env.calendar.version,
            items=items,
            total=len(items),
        )
