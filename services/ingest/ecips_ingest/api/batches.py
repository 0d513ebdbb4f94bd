from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.types import Message

from ecips_common.app import Session, State
from ecips_common.auth import Principal
from ecips_common.problems import (
    PROBLEM_RESPONSES,
    FieldError,
    InvalidInput,
    NotFound,
    Problem,
    ProblemError,
)
from ecips_common.text import CONTROL_CHARACTERS, storable_text
from ecips_ingest.api.deps import Context, IngestContext, Writer
from ecips_ingest.batch_files import (
    UTF8_BOM,
    MalformedFile,
    csv_line,
    detect_format,
    inspect_upload,
)
from ecips_ingest.batches import store_upload
from ecips_ingest.models import Batch, BatchRowIssue
from ecips_ingest.repository import BatchRepository
from ecips_ingest.schemas import (
    BatchAccepted,
    BatchFailure,
    BatchList,
    BatchOut,
    BatchRowIssueOut,
    BatchSummary,
)
from ecips_ingest.tabular import ERRORS_HEADER, ROW_NUMBER_HEADER

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=PROBLEM_RESPONSES)

# Multipart framing around the file: headers, boundaries, the small form fields.
_FORM_OVERHEAD = 64 * 1024
_LISTED_ISSUES = 1000
_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}


class CsvStream(StreamingResponse):
    media_type = "text/csv"


def _too_large(limit: int) -> ProblemError:
    return ProblemError(
        413,
        "payload_too_large",
        "Payload too large",
        f"A batch file may be at most {limit} bytes; split it into several batches.",
    )


async def _read_form(request: Request, limit: int) -> Any:
    """The multipart form, read as a stream: the file is spooled to disk past 1 MiB and
    the upload is cut off (413) as soon as it passes the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise _too_large(limit)
    received = 0
    upstream = request.receive

    async def receive() -> Message:
        nonlocal received
        message = await upstream()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit + _FORM_OVERHEAD:
                raise _too_large(limit)
        return message

    try:
        return await Request(request.scope, receive).form(
            max_files=1, max_fields=10, max_part_size=64 * 1024
        )
    except MultiPartException as exc:
        raise ProblemError(400, "malformed_multipart", "Bad request", exc.message) from exc


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAccepted,
    summary="Submit a file of records (CSV, XLSX or NDJSON)",
    description=(
        "Multipart form: `file`, plus `category` for CSV and XLSX (NDJSON lines carry their "
        "own `category`; a given `category` is their default). Headers are the field titles of "
        "the category's template (`GET /v1/categories/{key}/template.csv`) or their keys. "
        "The file is checked (format, encoding, header) and stored, then processed in the "
        "background: follow `GET /v1/batches/{batch_id}`; rejected rows come back in "
        "`errors.csv` with their row numbers, to fix and upload again."
    ),
    responses={
        413: {**_PROBLEM, "description": "The file is larger than the limit"},
        415: {**_PROBLEM, "description": "Not a multipart/form-data request"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "category": {"type": "string", "examples": ["administrative_penalty"]},
                            "format": {"type": "string", "enum": ["csv", "xlsx", "ndjson"]},
                        },
                    }
                }
            },
        }
    },
)
async def submit_batch(
    request: Request, principal: Writer, ctx: Context, state: State
) -> BatchAccepted:
    if principal.department not in ctx.catalogue.departments:
        raise ProblemError(
            403,
            "unknown_department",
            "Forbidden",
            f"{principal.department!r} is not in the department catalogue.",
        )
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ProblemError(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "Upload the file as multipart/form-data (field `file`).",
        )
    form = await _read_form(request, ctx.settings.max_batch_bytes)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput(
                [FieldError(field="file", code="required", message="attach the file as `file`")]
            )
        if upload.size is not None and upload.size > ctx.settings.max_batch_bytes:
            raise _too_large(ctx.settings.max_batch_bytes)
        category = _text_field(form, "category")
        declared = _text_field(form, "format")
        head = await upload.read(8)
        fmt = detect_format(upload.filename or "", declared, head)
        if fmt != "ndjson" or category is not None:
            category = _check_category(ctx, principal, category)
        try:
            info = await asyncio.to_thread(inspect_upload, upload.file, fmt)
        except MalformedFile as exc:
            raise InvalidInput(
                [FieldError(field="file", code=exc.code, message=exc.message)],
                detail=f"The file cannot be read: {exc.message}",
            ) from exc
        if fmt != "ndjson":
            assert category is not None
            assert info.header is not None
            _, errors = ctx.tables[category].resolve_header(info.header)
            if errors:
                raise InvalidInput(errors, detail="The header row does not fit the category.")
        batch = await store_upload(
            state.database,
            department=principal.department,
            category=category,
            fmt=fmt,
            filename=display_filename(upload.filename, fmt),
            file=upload.file,
            info=info,
        )
    finally:
        await form.close()
    ctx.batch_wake.set()
    return BatchAccepted(
        batch_id=batch.batch_id, status="queued", status_url=f"/v1/batches/{batch.batch_id}"
    )


def display_filename(name: str | None, fmt: str) -> str:
    """The uploaded file's name, only ever shown, never used as a path: its last path
    component, without control characters, at most 255 characters."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = storable_text(CONTROL_CHARACTERS.sub("", base)).strip()
    if base in ("", ".", ".."):
        return f"upload.{fmt}"
    return base[:255]


def _text_field(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput([FieldError(field=name, code="not_a_string", message="not text")])
    return value.strip() or None


def _check_category(ctx: IngestContext, principal: Principal, category: str | None) -> str:
    if category is None:
        raise InvalidInput(
            [
                FieldError(
                    field="category",
                    code="required",
                    message="CSV and XLSX files hold one category: give it as `category`",
                )
            ]
        )
    if category not in ctx.catalogue.categories:
        raise InvalidInput(
            [
                FieldError(
                    field="category",
                    code="unknown_category",
                    message=f"unknown category {category!r}; see GET /v1/categories",
                )
            ]
        )
    if not ctx.catalogue.may_submit(principal.department, category):
        raise ProblemError(
            403,
            "category_not_permitted",
            "Forbidden",
            f"Department {principal.department} may not submit {category} records.",
        )
    return category


def _summary(batch: Batch) -> dict[str, Any]:
    return {
        "batch_id": batch.batch_id,
        "department": batch.department,
        "category": batch.category,
        "format": batch.file_format,
        "filename": batch.filename,
        "size_bytes": batch.size_bytes,
        "status": batch.status,
        "total": batch.total,
        "processed": batch.processed,
        "accepted": batch.accepted,
        "unchanged": batch.unchanged,
        "rejected": batch.rejected,
        "warnings": batch.warnings,
        "progress": round(batch.processed / batch.total, 4) if batch.total else None,
        "failure": BatchFailure(code=batch.failure_code, detail=batch.failure_detail or "")
        if batch.failure_code
        else None,
        "created_at": batch.created_at,
        "started_at": batch.started_at,
        "finished_at": batch.finished_at,
    }


def _flatten(issues: Any) -> list[BatchRowIssueOut]:
    return [
        BatchRowIssueOut(
            row=issue.row_number,
            source_id=issue.source_id,
            field=e["field"],
            code=e["code"],
            message=e["message"],
        )
        for issue in issues
        for e in issue.issues
    ]


async def _own_batch(session: Any, principal: Principal, batch_id: uuid.UUID) -> Batch:
    batch = await BatchRepository(session).get(batch_id)
    if batch is None:
        raise NotFound("batch", f"No batch {batch_id}.")
    if batch.department != principal.department:
        raise ProblemError(
            403, "not_own_batch", "Forbidden", "A department can only see its own batches."
        )
    return batch


@router.get("", response_model=BatchList, summary="The department's batches, newest first")
async def list_batches(
    principal: Writer,
    session: Session,
    after: Annotated[str | None, Query(max_length=100, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchList:
    before = _cursor(after) if after else None
    batches = await BatchRepository(session).page(principal.department, before=before, limit=limit)
    last = batches[-1] if len(batches) == limit else None
    return BatchList(
        items=[BatchSummary(**_summary(b)) for b in batches],
        next_cursor=f"{last.created_at.isoformat()}~{last.batch_id}" if last else None,
    )


def _cursor(text: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, batch_id = text.split("~")
        return datetime.fromisoformat(at), uuid.UUID(batch_id)
    except ValueError:
        raise InvalidInput(
            [FieldError(field="after", code="invalid_cursor", message="not a next_cursor")]
        ) from None


@router.get(
    "/{batch_id}",
    response_model=BatchOut,
    summary="A batch's status, progress and rejected rows",
)
async def get_batch(batch_id: uuid.UUID, principal: Writer, session: Session) -> BatchOut:
    batch = await _own_batch(session, principal, batch_id)
    repo = BatchRepository(session)
    errors = _flatten(await repo.issues(batch_id, "error", _LISTED_ISSUES + 1))
    warnings = _flatten(await repo.issues(batch_id, "warning", _LISTED_ISSUES))
    return BatchOut(
        **_summary(batch),
        errors=errors[:_LISTED_ISSUES],
        errors_truncated=len(errors) > _LISTED_ISSUES or batch.rejected > _LISTED_ISSUES,
        row_warnings=warnings[:_LISTED_ISSUES],
        errors_csv=f"/v1/batches/{batch_id}/errors.csv",
    )


@router.get(
    "/{batch_id}/errors.csv",
    response_class=CsvStream,
    summary="The rejected rows, with their errors, to fix and upload again",
    description=(
        "One line per rejected row: `原行号` (its row number in the uploaded file), `错误说明`, "
        "then the row's cells as uploaded. A corrected file can be uploaded as it is (those "
        "two columns are ignored). Cells that a spreadsheet would run as a formula "
        "(starting with = + - @, tab or CR) are quoted with a leading apostrophe."
    ),
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def batch_errors_csv(
    batch_id: uuid.UUID, principal: Writer, session: Session, state: State
) -> CsvStream:
    batch = await _own_batch(session, principal, batch_id)
    header = list(batch.header) if batch.header is not None else ["原始内容"]
    database = state.database

    async def lines() -> AsyncIterator[bytes]:
        yield UTF8_BOM + csv_line([ROW_NUMBER_HEADER, ERRORS_HEADER, *header])
        # Its own session: the request's is gone once the response starts streaming.
        async with database.read_only() as stream_session:
            issue: BatchRowIssue
            async for issue in BatchRepository(stream_session).stream_issues(batch_id, "error"):
                cells = list(issue.cells) + [""] * (len(header) - len(issue.cells))
                described = "；".join(
                    f"{e['field']} {e['code']}: {e['message']}" for e in issue.issues
                )
                yield csv_line([str(issue.row_number), described, *cells])

    filename = f"{batch.category or 'batch'}-{batch_id}-errors.csv"
    return CsvStream(
        lines(),
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"},
    )
