"""Accepting, correcting and revoking department records.

The same path serves a single submission and every chunk of a batch: check
(catalogue, schema, data quality), verify against the ledger (name, old
registration number), then persist many records in one transaction with
their events and the month's submission counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from ecips_common.auth import Principal
from ecips_common.contracts import RecordAccepted, RecordRevoked
from ecips_common.db import UnitOfWork
from ecips_common.problems import FieldError, NotFound, ProblemError
from ecips_common.text import storable_text
from ecips_ingest.catalogue import Catalogue
from ecips_ingest.compliance import china_today, period_of, submission_window_period
from ecips_ingest.ledger_client import LedgerDirectory, name_token
from ecips_ingest.models import Record
from ecips_ingest.repository import CountKey, CountRepository, RecordHead, RecordRepository
from ecips_ingest.schemas import (
    RecordOut,
    RecordReceipt,
    RecordRevisionOut,
    RecordSubmission,
)
from ecips_ingest.validation import check_submission
from ecips_ingest.validation import data_errors as schema_errors

Clock = Callable[[], datetime]


@dataclass(slots=True)
class CheckedRecord:
    """A submission that passed every check, ready to persist."""

    submission: RecordSubmission
    uscc: str | None
    warnings: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Persisted:
    outcome: Literal["created", "revised", "unchanged", "rejected"]
    receipt: RecordReceipt | None = None
    errors: tuple[FieldError, ...] = ()


def content_hash(submission: RecordSubmission) -> str:
    canonical = json.dumps(
        submission.model_dump(mode="json", exclude={"source_id"}),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def data_errors(catalogue: Catalogue, category: str, data: dict[str, Any]) -> list[FieldError]:
    """JSON Schema violations of ``data`` for a category key."""
    return schema_errors(catalogue, catalogue.categories[category], data)


def problem_errors(problem: ProblemError) -> list[FieldError]:
    """A problem as row errors (every rejection names a field and a code)."""
    if problem.errors:
        return list(problem.errors)
    return [FieldError(field="record", code=problem.code, message=problem.detail or problem.title)]


class EnterpriseVerifier:
    """Compares the record's enterprise with what the ledger knows; never blocks on it."""

    def __init__(self, catalogue: Catalogue, ledger: LedgerDirectory | None) -> None:
        self._catalogue = catalogue
        self._ledger = ledger

    async def verify(self, submission: RecordSubmission) -> CheckedRecord:
        """The record with its USCC resolved and warnings; 422 ``name_mismatch`` when
        the ledger knows the USCC under a different name."""
        checked = CheckedRecord(submission, submission.uscc)
        if self._ledger is None or not self._ledger.enabled:
            return checked
        if checked.uscc is None and submission.registration_number is not None:
            checked.uscc = await self._ledger.uscc_for_registration_number(
                submission.registration_number
            )
        category = self._catalogue.categories[submission.category]
        if checked.uscc is None or not category.check_enterprise_name:
            return checked
        known = await self._ledger.enterprise(checked.uscc)
        if known is None:
            return checked
        given = name_token(submission.enterprise_name)
        if given != name_token(known.name):
            former = next((f for f in known.former_names if name_token(f[0]) == given), None)
            if former is None:
                raise ProblemError(
                    422,
                    "name_mismatch",
                    "The enterprise name does not match the USCC",
                    f"{checked.uscc} is registered as {known.name!r}, "
                    f"not {submission.enterprise_name!r}.",
                    errors=[
                        FieldError(
                            field="enterprise_name",
                            code="name_mismatch",
                            message=f"{checked.uscc} is registered as {known.name!r}",
                        )
                    ],
                )
            until = f" until {former[1]}" if former[1] else ""
            checked.warnings.append(
                FieldError(
                    field="enterprise_name",
                    code="former_name",
                    message=f"{submission.enterprise_name!r} is a former name{until}; "
                    f"the enterprise is now {known.name!r}",
                )
            )
        if known.status_code not in (None, "active"):
            checked.warnings.append(
                FieldError(
                    field="uscc",
                    code="enterprise_not_active",
                    message=f"the ledger lists {checked.uscc} as {known.status_code}",
                )
            )
        return checked

    async def verify_many(
        self, submissions: Sequence[RecordSubmission]
    ) -> list[CheckedRecord | ProblemError]:
        if self._ledger is not None and self._ledger.enabled and len(submissions) > 1:
            await self._ledger.prefetch(
                [
                    s.uscc
                    for s in submissions
                    if s.uscc is not None
                    and self._catalogue.categories[s.category].check_enterprise_name
                ],
                [
                    s.registration_number
                    for s in submissions
                    if s.uscc is None and s.registration_number is not None
                ],
            )

        async def one(submission: RecordSubmission) -> CheckedRecord | ProblemError:
            try:
                return await self.verify(submission)
            except ProblemError as exc:
                return exc

        return list(await asyncio.gather(*(one(s) for s in submissions)))


class RecordService:
    def __init__(
        self,
        uow: UnitOfWork,
        catalogue: Catalogue,
        clock: Clock,
        ledger: LedgerDirectory | None = None,
    ) -> None:
        self._uow = uow
        self._catalogue = catalogue
        self._clock = clock
        self._records = RecordRepository(uow.session)
        self._counts = CountRepository(uow.session)
        self._verifier = EnterpriseVerifier(catalogue, ledger)

    def today(self) -> date:
        return china_today(self._clock())

    async def submit(
        self, principal: Principal, submission: RecordSubmission
    ) -> tuple[RecordReceipt, bool]:
        """One record: (receipt, created) — created is False for an exact repeat."""
        checked = check_submission(self._catalogue, principal.department, submission, self.today())
        verified = await self._verifier.verify(checked)
        # Counted only once accepted: a rejection is counted outside this transaction,
        # which is about to roll back.
        (result,) = await self.persist(principal.department, [verified], count=False)
        if result.outcome == "rejected":
            first = result.errors[0]
            status = 409 if first.code == "record_revoked" else 422
            raise ProblemError(
                status,
                first.code if status == 409 else "validation_failed",
                "Record revoked" if status == 409 else "The request is not valid",
                first.message,
                errors=list(result.errors),
            )
        assert result.receipt is not None
        outcome = "unchanged" if result.outcome == "unchanged" else "accepted"
        key = CountKey(
            principal.department,
            period_of(verified.submission.occurred_on),
            submission.category,
            outcome,
        )
        await self._counts.add({key: 1}, self._clock())
        return result.receipt, result.outcome != "unchanged"

    async def persist(
        self,
        department: str,
        items: Sequence[CheckedRecord],
        *,
        batch_id: uuid.UUID | None = None,
        extra_counts: Counter[CountKey] | None = None,
        count: bool = True,
    ) -> list[Persisted]:
        """Accept checked records in one go: new records, new revisions, exact repeats.

        Counts every outcome for the compliance report (plus ``extra_counts``,
        the rows a batch rejected before this point) in the same transaction.
        """
        now = self._clock()
        records = await self._records.lock_or_create_many(
            department, ((i.submission.source_id, i.submission.category) for i in items)
        )
        counts: Counter[CountKey] = Counter(extra_counts or {})
        revisions: list[dict[str, Any]] = []
        results: list[Persisted] = []
        for item in items:
            submission = item.submission
            record = records[submission.source_id]
            result = self._apply(record, item, now, revisions, batch_id)
            results.append(result)
            period = period_of(submission.occurred_on)
            if result.outcome == "rejected":
                counts.update(
                    rejection_keys(department, period, submission.category, result.errors)
                )
            else:
                outcome = "unchanged" if result.outcome == "unchanged" else "accepted"
                counts[CountKey(department, period, submission.category, outcome)] += 1
        await self._records.add_revisions(revisions)
        await self._records.save_heads(records.values(), now)
        if count:
            await self._counts.add(dict(counts), now)
        return results

    def _apply(
        self,
        record: RecordHead,
        item: CheckedRecord,
        now: datetime,
        revisions: list[dict[str, Any]],
        batch_id: uuid.UUID | None,
    ) -> Persisted:
        submission = item.submission
        if record.status == "revoked":
            return Persisted(
                "rejected",
                errors=(
                    FieldError(
                        field="source_id",
                        code="record_revoked",
                        message=f"record {record.record_id} was revoked; "
                        "submit under a new source_id",
                    ),
                ),
            )
        if record.category != submission.category:
            return Persisted(
                "rejected",
                errors=(
                    FieldError(
                        field="category",
                        code="category_mismatch",
                        message=f"{submission.source_id!r} was submitted as {record.category}",
                    ),
                ),
            )
        digest = content_hash(submission)
        if record.content_hash == digest:
            return Persisted(
                "unchanged", self._receipt(record, item.uscc, item.warnings, "accepted")
            )
        outcome: Literal["created", "revised"] = (
            "created" if record.current_revision == 0 else "revised"
        )
        record.current_revision += 1
        record.content_hash = digest
        record.changed = True
        revisions.append(
            {
                "record_id": record.record_id,
                "revision": record.current_revision,
                "uscc": item.uscc,
                "registration_number": submission.registration_number,
                "enterprise_name": submission.enterprise_name,
                "occurred_on": submission.occurred_on,
                "data": submission.data,
                "content_hash": digest,
                "catalogue_version": self._catalogue.version,
                "accepted_at": now,
                "batch_id": batch_id,
            }
        )
        category = self._catalogue.categories[submission.category]
        self._uow.emit(
            RecordAccepted(
                record_id=record.record_id,
                revision=record.current_revision,
                category=submission.category,
                department=record.department,
                source_id=submission.source_id,
                uscc=item.uscc,
                registration_number=submission.registration_number,
                enterprise_name=submission.enterprise_name,
                occurred_on=submission.occurred_on,
                data=submission.data,
                disclosure=category.disclosure,
                publicity_period_days=category.publicity_period_days,
                catalogue_version=self._catalogue.version,
                accepted_at=now,
            ),
            subject=item.uscc or submission.registration_number or "",
        )
        return Persisted(outcome, self._receipt(record, item.uscc, item.warnings, "accepted"))

    @staticmethod
    def _receipt(
        record: Record | RecordHead,
        uscc: str | None,
        warnings: list[FieldError],
        status: Literal["accepted", "revoked"],
    ) -> RecordReceipt:
        return RecordReceipt(
            record_id=record.record_id,
            revision=record.current_revision,
            status=status,
            uscc=uscc,
            warnings=list(warnings),
        )

    async def _own_record(
        self, principal: Principal, record_id: uuid.UUID, *, for_update: bool = False
    ) -> Record:
        record = await self._records.get(record_id, for_update=for_update)
        if record is None or record.current_revision == 0:
            raise NotFound("record", f"No record {record_id}.")
        if record.department != principal.department:
            raise ProblemError(
                403, "not_own_record", "Forbidden", "A department can only act on its own records."
            )
        return record

    async def revoke(
        self, principal: Principal, record_id: uuid.UUID, reason: str
    ) -> RecordReceipt:
        record = await self._own_record(principal, record_id, for_update=True)
        latest = await self._records.get_revision(record.record_id, record.current_revision)
        assert latest is not None
        if record.status != "revoked":
            record.status = "revoked"
            record.revocation_reason = reason
            record.revoked_at = self._clock()
            self._uow.emit(
                RecordRevoked(
                    record_id=record.record_id,
                    revision=record.current_revision,
                    category=record.category,
                    department=record.department,
                    source_id=record.source_id,
                    uscc=latest.uscc,
                    registration_number=latest.registration_number,
                    reason=reason,
                    revoked_at=record.revoked_at,
                ),
                subject=latest.uscc or latest.registration_number or "",
            )
        return RecordReceipt(
            record_id=record.record_id,
            revision=record.current_revision,
            status="revoked",
            uscc=latest.uscc,
        )

    async def describe(self, principal: Principal, record_id: uuid.UUID) -> RecordOut:
        record = await self._own_record(principal, record_id)
        revisions = await self._records.revisions(record_id)
        return RecordOut(
            record_id=record.record_id,
            department=record.department,
            source_id=record.source_id,
            category=record.category,
            status="revoked" if record.status == "revoked" else "accepted",
            current_revision=record.current_revision,
            revocation_reason=record.revocation_reason,
            revoked_at=record.revoked_at,
            revisions=[
                RecordRevisionOut.model_validate(r, from_attributes=True) for r in revisions
            ],
        )


def rejection_keys(
    department: str, period: str, category: str, errors: Sequence[FieldError]
) -> Counter[CountKey]:
    """A rejected row's counts: once as rejected, once under each distinct code."""
    # The category of a rejected row is as submitted: any text, even what no column holds.
    category = storable_text(category)
    counts: Counter[CountKey] = Counter({CountKey(department, period, category, "rejected"): 1})
    for code in dict.fromkeys(e.code for e in errors):
        counts[CountKey(department, period, category, "error", code[:64])] += 1
    return counts


def rejected_row_period(raw_occurred_on: Any, now: datetime, catalogue: Catalogue) -> str:
    """The month a rejected row counts for: its occurred_on if that is a usable date,
    else the month whose submission window the rejection fell in."""
    if isinstance(raw_occurred_on, str):
        try:
            day = date.fromisoformat(raw_occurred_on)
        except ValueError:
            day = None
        if day is not None and day <= china_today(now):
            return period_of(day)
    return submission_window_period(now, catalogue.compliance)


async def count_rejection(
    uow: UnitOfWork,
    catalogue: Catalogue,
    department: str,
    raw: dict[str, Any],
    errors: Sequence[FieldError],
    now: datetime,
) -> None:
    """Count one rejected single submission (in its own transaction: the request's rolled back)."""
    category = raw.get("category")
    category_key = category[:50] if isinstance(category, str) else ""
    period = rejected_row_period(raw.get("occurred_on"), now, catalogue)
    counts = rejection_keys(department, period, category_key, errors)
    await CountRepository(uow.session).add(dict(counts), now)
