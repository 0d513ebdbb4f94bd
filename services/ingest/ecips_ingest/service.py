"""Accepting, correcting and revoking department records."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from jsonschema import ValidationError as SchemaViolation

from ecips_common.auth import Principal
from ecips_common.contracts import RecordAccepted, RecordRevoked
from ecips_common.db import UnitOfWork
from ecips_common.problems import FieldError, InvalidInput, NotFound, ProblemError
from ecips_ingest.catalogue import Catalogue
from ecips_ingest.models import Record, RecordRevision
from ecips_ingest.repository import RecordRepository
from ecips_ingest.schemas import (
    RecordOut,
    RecordReceipt,
    RecordRevisionOut,
    RecordSubmission,
    now_utc,
)

_SCHEMA_CODES = {
    "required": "required",
    "additionalProperties": "unknown_field",
    "type": "invalid_type",
    "enum": "not_allowed",
    "const": "not_allowed",
    "format": "invalid_format",
    "pattern": "invalid_format",
    "minLength": "too_short",
    "maxLength": "too_long",
    "minItems": "too_few_items",
    "maxItems": "too_many_items",
    "minimum": "too_small",
    "maximum": "too_large",
}


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    receipt: RecordReceipt
    created: bool


def data_errors(catalogue: Catalogue, category: str, data: dict[str, Any]) -> list[FieldError]:
    """JSON Schema violations of a record's ``data``, one per offending field."""
    errors: list[FieldError] = []
    for violation in sorted(
        catalogue.validators[category].iter_errors(data), key=lambda e: list(e.absolute_path)
    ):
        errors.extend(_field_errors(violation))
    return errors


def _field_errors(violation: SchemaViolation) -> list[FieldError]:
    base = "data" + "".join(
        f"[{p}]" if isinstance(p, int) else f".{p}" for p in violation.absolute_path
    )
    code = _SCHEMA_CODES.get(str(violation.validator), "invalid")
    if violation.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", violation.message)
        return [
            FieldError(field=f"{base}.{m}", code=code, message="this field is required")
            for m in missing
        ]
    if violation.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", violation.message.split("(")[-1])
        return [
            FieldError(field=f"{base}.{name}", code=code, message="unknown field") for name in extra
        ]
    return [FieldError(field=base, code=code, message=violation.message)]


def content_hash(submission: RecordSubmission) -> str:
    canonical = json.dumps(
        submission.model_dump(mode="json", exclude={"source_id"}),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class RecordService:
    def __init__(self, uow: UnitOfWork, catalogue: Catalogue) -> None:
        self._uow = uow
        self._catalogue = catalogue
        self._records = RecordRepository(uow.session)

    def check_submission(self, principal: Principal, submission: RecordSubmission) -> None:
        category = self._catalogue.categories.get(submission.category)
        if category is None:
            raise InvalidInput(
                [
                    FieldError(
                        field="category",
                        code="unknown_category",
                        message=f"unknown category {submission.category!r}; see GET /v1/categories",
                    )
                ]
            )
        if not self._catalogue.may_submit(principal.department, submission.category):
            raise ProblemError(
                403,
                "category_not_permitted",
                "Forbidden",
                f"Department {principal.department} may not submit {submission.category} records.",
            )
        errors = data_errors(self._catalogue, submission.category, submission.data)
        if errors:
            raise InvalidInput(errors)

    async def submit(self, principal: Principal, submission: RecordSubmission) -> SubmitOutcome:
        self.check_submission(principal, submission)
        digest = content_hash(submission)
        record = await self._records.lock_or_create(
            principal.department, submission.source_id, submission.category
        )
        if record.status == "revoked":
            raise ProblemError(
                409,
                "record_revoked",
                "Record revoked",
                f"Record {record.record_id} was revoked; submit under a new source_id.",
            )
        if record.category != submission.category:
            raise InvalidInput(
                [
                    FieldError(
                        field="category",
                        code="category_mismatch",
                        message=f"{submission.source_id!r} was submitted as {record.category}",
                    )
                ]
            )
        if record.content_hash == digest:
            return SubmitOutcome(
                RecordReceipt(
                    record_id=record.record_id, revision=record.current_revision, status="accepted"
                ),
                created=False,
            )
        record.current_revision += 1
        record.content_hash = digest
        record.updated_at = now_utc()
        accepted_at = now_utc()
        await self._records.add_revision(
            RecordRevision(
                record_id=record.record_id,
                revision=record.current_revision,
                uscc=submission.uscc,
                registration_number=submission.registration_number,
                enterprise_name=submission.enterprise_name,
                occurred_on=submission.occurred_on,
                data=submission.data,
                content_hash=digest,
                catalogue_version=self._catalogue.version,
                accepted_at=accepted_at,
            )
        )
        category = self._catalogue.categories[submission.category]
        self._uow.emit(
            RecordAccepted(
                record_id=record.record_id,
                revision=record.current_revision,
                category=submission.category,
                department=principal.department,
                source_id=submission.source_id,
                uscc=submission.uscc,
                registration_number=submission.registration_number,
                enterprise_name=submission.enterprise_name,
                occurred_on=submission.occurred_on,
                data=submission.data,
                disclosure=category.disclosure,
                publicity_period_days=category.publicity_period_days,
                catalogue_version=self._catalogue.version,
                accepted_at=accepted_at,
            ),
            subject=submission.uscc or submission.registration_number or "",
        )
        return SubmitOutcome(
            RecordReceipt(
                record_id=record.record_id, revision=record.current_revision, status="accepted"
            ),
            created=True,
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
        if record.status != "revoked":
            record.status = "revoked"
            record.revocation_reason = reason
            record.revoked_at = now_utc()
            latest = await self._records.get_revision(record.record_id, record.current_revision)
            assert latest is not None
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
            record_id=record.record_id, revision=record.current_revision, status="revoked"
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
