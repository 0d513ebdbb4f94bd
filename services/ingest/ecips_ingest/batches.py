"""Batch submissions: storing an upload, and the worker that processes it.

An upload is stored in the database (the file in 1 MiB chunks, the batch row
``queued``) before the 202, so a batch accepted before a crash is finished
after the restart. A worker claims a batch with ``FOR UPDATE SKIP LOCKED`` and
a lease; it reads the file as a stream and handles its rows in chunks, each
chunk committed together with the batch's progress. After a crash another
worker (or this one, restarted) takes the batch over once the lease has
expired and resumes after the last committed row, so no row is applied twice
(rows are idempotent by department and source_id anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ecips_common.db import Database
from ecips_common.problems import FieldError, ProblemError, validation_problem
from ecips_common.text import storable_text
from ecips_ingest.batch_files import (
    FileFormat,
    MalformedFile,
    RawRow,
    UploadInfo,
    count_rows,
    data_rows,
)
from ecips_ingest.catalogue import Catalogue
from ecips_ingest.compliance import china_today
from ecips_ingest.ledger_client import LedgerDirectory
from ecips_ingest.models import Batch
from ecips_ingest.repository import BatchRepository, CountKey
from ecips_ingest.schemas import RecordSubmission
from ecips_ingest.service import (
    CheckedRecord,
    EnterpriseVerifier,
    RecordService,
    problem_errors,
    rejected_row_period,
    rejection_keys,
)
from ecips_ingest.tabular import CategoryTable, Column, cell_text
from ecips_ingest.validation import JsonRefused, check_submission, parse_json_strictly

logger = logging.getLogger("ecips.ingest.batches")

FILE_CHUNK_BYTES = 1024 * 1024
Clock = Callable[[], datetime]


def _real_now() -> datetime:
    # Leases are about processes, not business time: always the real clock.
    return datetime.now(UTC)


async def store_upload(
    database: Database,
    *,
    department: str,
    category: str | None,
    fmt: FileFormat,
    filename: str,
    file: IO[bytes],
    info: UploadInfo,
) -> Batch:
    """Write the batch and its file in one transaction; it is queued once this returns."""
    batch_id = uuid.uuid4()
    digest = hashlib.sha256()
    size = 0
    async with database.unit_of_work() as uow:
        repo = BatchRepository(uow.session)
        batch = Batch(
            batch_id=batch_id,
            department=department,
            category=category,
            file_format=fmt,
            filename=filename[:255],
            encoding=info.encoding,
            size_bytes=0,
            sha256="",
            header=info.header,
            status="queued",
            total=info.total,
            processed=0,
            accepted=0,
            unchanged=0,
            rejected=0,
            warnings=0,
            attempts=0,
        )
        await repo.add(batch)
        file.seek(0)
        seq = 0
        while block := await asyncio.to_thread(file.read, FILE_CHUNK_BYTES):
            digest.update(block)
            size += len(block)
            await repo.add_chunk(batch_id, seq, block)
            seq += 1
        batch.size_bytes = size
        batch.sha256 = digest.hexdigest()
    return batch


@dataclass(slots=True)
class PreparedRow:
    """One row after reading and checking, before the ledger and the database."""

    number: int
    cells: list[str]
    category: str
    source_id: str | None
    occurred_on: Any
    submission: RecordSubmission | None = None
    errors: list[FieldError] = field(default_factory=list)


class RowReader:
    """Turns raw rows of one batch into checked submissions (runs in a worker thread)."""

    def __init__(
        self, catalogue: Catalogue, batch: Batch, table: CategoryTable | None, today_fn: Clock
    ) -> None:
        self._catalogue = catalogue
        self._department = batch.department
        self._category = batch.category
        self._fmt = batch.file_format
        self._table = table
        self._now = today_fn
        self._columns: list[Column | None] = []
        if table is not None and batch.header is not None:
            self._columns, _ = table.resolve_header(batch.header)

    def prepare(self, raw: RawRow) -> PreparedRow:
        if self._fmt == "ndjson":
            line = str(raw.cells[0])
            prepared = PreparedRow(raw.number, [line], self._category or "", None, None)
            try:
                record = parse_json_strictly(line)
            except json.JSONDecodeError as exc:
                prepared.errors.append(
                    FieldError(field="line", code="invalid_json", message=f"not JSON: {exc.msg}")
                )
                return prepared
            except JsonRefused as exc:
                field = "line" if exc.field == "body" else exc.field
                prepared.errors.append(FieldError(field=field, code=exc.code, message=exc.message))
                return prepared
            if not isinstance(record, dict):
                prepared.errors.append(
                    FieldError(field="line", code="not_an_object", message="each line is a record")
                )
                return prepared
            if self._category and "category" not in record:
                record["category"] = self._category
            return self._check(prepared, record, [], None)
        assert self._table is not None
        cells = [cell_text(c) if c is not None else "" for c in raw.cells]
        prepared = PreparedRow(raw.number, cells, self._table.category.key, None, None)
        extra = [c for c in cells[len(self._columns) :] if c.strip()]
        if extra:
            prepared.errors.append(
                FieldError(
                    field="row",
                    code="too_many_cells",
                    message=f"the row has {len(cells)} cells; the header has {len(self._columns)}",
                )
            )
            return prepared
        record, cell_errors, derived = self._table.record_from_cells(self._columns, raw.cells)
        return self._check(prepared, record, cell_errors, derived)

    def _check(
        self,
        prepared: PreparedRow,
        record: dict[str, Any],
        cell_errors: list[FieldError],
        occurred_on_from: str | None,
    ) -> PreparedRow:
        source_id = record.get("source_id")
        prepared.source_id = str(source_id)[:200] if source_id is not None else None
        prepared.occurred_on = record.get("occurred_on")
        if isinstance(record.get("category"), str):
            prepared.category = record["category"][:50]
        errors = list(cell_errors)
        try:
            submission = RecordSubmission.model_validate(record)
        except ValidationError as exc:
            reported = {e.field for e in errors}
            problem = validation_problem(RequestValidationError(exc.errors()))
            for error in problem.errors or []:
                if error.field == "occurred_on" and occurred_on_from:
                    # The row gave no 发生日期: the date came from this data field.
                    error = error.model_copy(update={"field": f"data.{occurred_on_from}"})
                if error.field not in reported:
                    errors.append(error)
            prepared.errors = errors
            return prepared
        try:
            checked = check_submission(
                self._catalogue, self._department, submission, china_today(self._now())
            )
        except ProblemError as exc:
            # Cells that could not be read are absent from the record: not "required" again.
            reported = {e.field for e in errors}
            errors.extend(e for e in problem_errors(exc) if e.field not in reported)
        else:
            if not errors:
                prepared.submission = checked
        prepared.errors = errors
        return prepared


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    chunk_rows: int = 500
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 5
    poll_seconds: float = 1.0
    spool_bytes: int = 8 * 1024 * 1024


class BatchWorker:
    def __init__(
        self,
        database: Database,
        catalogue: Catalogue,
        tables: dict[str, CategoryTable],
        ledger: LedgerDirectory | None,
        clock: Clock,
        settings: WorkerSettings,
        name: str | None = None,
    ) -> None:
        self.name = name or f"worker-{uuid.uuid4().hex[:12]}"
        self._database = database
        self._catalogue = catalogue
        self._tables = tables
        self._ledger = ledger
        self._clock = clock
        self._settings = settings

    async def claim(self) -> uuid.UUID | None:
        """Take the next batch (failing those that crashed a worker too often)."""
        while True:
            async with self._database.unit_of_work() as uow:
                repo = BatchRepository(uow.session)
                batch = await repo.claim(self.name, self._settings.lease, _real_now())
                if batch is None:
                    return None
                if batch.attempts <= self._settings.max_attempts:
                    return batch.batch_id
                logger.error("batch %s failed %d times; giving up", batch.batch_id, batch.attempts)
                await repo.finish(
                    batch, _real_now(), failure=("processing_failed", "processing kept failing")
                )

    async def serve(self, wake: asyncio.Event) -> None:
        """Process batches until cancelled; sleep until woken or the poll interval passes."""
        while True:
            try:
                batch_id = await self.claim()
                if batch_id is not None:
                    await self.process(batch_id)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("batch worker error; retrying")
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self._settings.poll_seconds)

    async def process(self, batch_id: uuid.UUID, *, max_chunks: int | None = None) -> bool:
        """Process a claimed batch; True when it is finished (done or failed).

        ``max_chunks`` stops early (the lease stays until it expires), which is
        what a crash looks like to the next worker.
        """
        async with self._database.read_only() as session:
            batch = await BatchRepository(session).get(batch_id)
        if batch is None or batch.worker != self.name:
            return False
        table = self._tables.get(batch.category) if batch.category else None
        with tempfile.SpooledTemporaryFile(max_size=self._settings.spool_bytes) as spool:
            await self._materialise(batch_id, spool)
            try:
                if batch.total is None:
                    total = await self._count(batch, spool)
                    if not await self._update(batch_id, total=total):
                        return False
                return await self._rows(batch, table, spool, max_chunks)
            except MalformedFile as exc:
                async with self._database.unit_of_work() as uow:
                    repo = BatchRepository(uow.session)
                    held = await repo.lock_held(batch_id, self.name)
                    if held is not None:
                        await repo.finish(held, _real_now(), failure=(exc.code, exc.message))
                return True

    async def _materialise(self, batch_id: uuid.UUID, spool: IO[bytes]) -> None:
        seq = 0
        async with self._database.read_only() as session:
            repo = BatchRepository(session)
            while (content := await repo.chunk(batch_id, seq)) is not None:
                await asyncio.to_thread(spool.write, content)
                seq += 1
        spool.seek(0)

    async def _count(self, batch: Batch, spool: IO[bytes]) -> int:
        fmt: FileFormat = batch.file_format  # type: ignore[assignment]
        counting = asyncio.ensure_future(asyncio.to_thread(count_rows, spool, fmt, batch.encoding))
        while True:
            done, _ = await asyncio.wait(
                {counting}, timeout=self._settings.lease.total_seconds() / 3
            )
            if done:
                return counting.result()
            await self._update(batch.batch_id)  # renew the lease while counting a big file

    async def _update(self, batch_id: uuid.UUID, **values: Any) -> bool:
        async with self._database.unit_of_work() as uow:
            repo = BatchRepository(uow.session)
            held = await repo.lock_held(batch_id, self.name)
            if held is None:
                return False
            for key, value in values.items():
                setattr(held, key, value)
            held.lease_until = _real_now() + self._settings.lease
        return True

    async def _rows(
        self, batch: Batch, table: CategoryTable | None, spool: IO[bytes], max_chunks: int | None
    ) -> bool:
        reader = RowReader(self._catalogue, batch, table, self._clock)
        fmt: FileFormat = batch.file_format  # type: ignore[assignment]
        with data_rows(spool, fmt, batch.encoding) as rows:
            # Reading and checking the next chunk (a thread) overlaps committing this one.
            upcoming = asyncio.ensure_future(
                asyncio.to_thread(self._next_chunk, rows, reader, batch.processed)
            )
            chunks = 0
            try:
                while prepared := await upcoming:
                    upcoming = asyncio.ensure_future(
                        asyncio.to_thread(self._next_chunk, rows, reader, 0)
                    )
                    if not await self._commit_chunk(batch, prepared):
                        return False
                    chunks += 1
                    if max_chunks is not None and chunks >= max_chunks:
                        return False
            finally:
                # The reader thread must be done with the file before it is closed.
                with contextlib.suppress(Exception):
                    await upcoming
        async with self._database.unit_of_work() as uow:
            repo = BatchRepository(uow.session)
            held = await repo.lock_held(batch.batch_id, self.name)
            if held is None:
                return False
            await repo.finish(held, _real_now())
        return True

    def _next_chunk(
        self, rows: Iterator[RawRow], reader: RowReader, skip: int
    ) -> list[PreparedRow]:
        for _ in range(skip):
            if next(rows, None) is None:
                return []
        prepared: list[PreparedRow] = []
        for raw in rows:
            try:
                prepared.append(reader.prepare(raw))
            except MalformedFile:
                raise
            except Exception:
                # One unreadable row must not stop the batch: it is rejected, and logged.
                logger.exception("row %d could not be checked", raw.number)
                prepared.append(
                    PreparedRow(
                        raw.number,
                        [cell_text(c) for c in raw.cells if c is not None],
                        "",
                        None,
                        None,
                        errors=[
                            FieldError(
                                field="row", code="unreadable_row", message="the row cannot be read"
                            )
                        ],
                    )
                )
            if len(prepared) >= self._settings.chunk_rows:
                break
        return prepared

    async def _commit_chunk(self, batch: Batch, prepared: list[PreparedRow]) -> bool:
        """Ledger checks, then one transaction: records, events, issues, counts, progress."""
        now = self._clock()
        verifier = EnterpriseVerifier(self._catalogue, self._ledger)
        candidates = [p for p in prepared if p.submission is not None]
        verified = await verifier.verify_many([p.submission for p in candidates])  # type: ignore[misc]
        checked: list[tuple[PreparedRow, CheckedRecord]] = []
        for row, outcome in zip(candidates, verified, strict=True):
            if isinstance(outcome, ProblemError):
                row.errors = problem_errors(outcome)
            else:
                checked.append((row, outcome))
        rejected_counts: Counter[CountKey] = Counter()
        issues: list[dict[str, Any]] = []
        rejected = 0
        for row in prepared:
            if row.errors:
                rejected += 1
                period = rejected_row_period(row.occurred_on, now, self._catalogue)
                rejected_counts.update(
                    rejection_keys(batch.department, period, row.category, row.errors)
                )
                issues.append(self._issue(batch, row, "error", row.errors))
        async with self._database.unit_of_work() as uow:
            repo = BatchRepository(uow.session)
            held = await repo.lock_held(batch.batch_id, self.name)
            if held is None:
                logger.warning("lost the lease on batch %s; leaving it", batch.batch_id)
                return False
            service = RecordService(uow, self._catalogue, self._clock)
            results = await service.persist(
                batch.department,
                [c for _, c in checked],
                batch_id=batch.batch_id,
                extra_counts=rejected_counts,
            )
            accepted = unchanged = warned = 0
            for (row, item), result in zip(checked, results, strict=True):
                if result.outcome == "rejected":
                    rejected += 1
                    issues.append(self._issue(batch, row, "error", list(result.errors)))
                    continue
                accepted += 1
                unchanged += result.outcome == "unchanged"
                if item.warnings:
                    warned += 1
                    issues.append(self._issue(batch, row, "warning", item.warnings, cells=False))
            await repo.add_issues(issues)
            held.processed += len(prepared)
            held.accepted += accepted
            held.unchanged += unchanged
            held.rejected += rejected
            held.warnings += warned
            held.lease_until = _real_now() + self._settings.lease
        batch.processed += len(prepared)
        return True

    @staticmethod
    def _issue(
        batch: Batch,
        row: PreparedRow,
        severity: str,
        errors: list[FieldError],
        *,
        cells: bool = True,
    ) -> dict[str, Any]:
        # A rejected row is echoed as uploaded, except what PostgreSQL cannot store.
        return {
            "batch_id": batch.batch_id,
            "row_number": row.number,
            "severity": severity,
            "source_id": storable_text(row.source_id) if row.source_id is not None else None,
            "issues": [
                {key: storable_text(value) for key, value in e.model_dump().items()} for e in errors
            ],
            "cells": [storable_text(c) for c in row.cells] if cells else [],
        }
