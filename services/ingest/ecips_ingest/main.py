"""The ingest service: department systems submit records here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from ecips_common.app import BackgroundJob, ServiceDefinition, ServiceState, create_service_app
from ecips_common.contracts import RECORDS_TOPIC, TOPIC_PARTITIONS
from ecips_ingest.api import batches, catalogue, me, records, reports, workbench
from ecips_ingest.api.deps import IngestContext
from ecips_ingest.batches import BatchWorker, WorkerSettings
from ecips_ingest.catalogue import load_catalogue
from ecips_ingest.compliance import china_today
from ecips_ingest.consumers import HANDLERS
from ecips_ingest.ledger_client import LedgerDirectory
from ecips_ingest.models import OUTBOX, Base
from ecips_ingest.settings import IngestSettings
from ecips_ingest.tabular import CategoryTable
from ecips_ingest.validation import check_examples


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: IngestSettings | None = None, *, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """The app; ``clock`` (tests) sets the business time: acceptance and submission times."""
    settings = settings or IngestSettings.load()
    clock = clock or _now
    # Validate the catalogues before serving anything: a bad file stops startup.
    loaded = load_catalogue(settings.catalogue_dir)
    # The examples are checked against the real date, whatever clock the app is given.
    check_examples(loaded, china_today(_now()))
    tables = {key: CategoryTable.build(c) for key, c in loaded.categories.items()}
    worker_settings = WorkerSettings(
        chunk_rows=settings.batch_chunk_rows,
        lease=timedelta(seconds=settings.batch_lease_seconds),
        max_attempts=settings.batch_max_attempts,
        poll_seconds=settings.batch_poll_seconds,
    )

    async def on_startup(state: ServiceState) -> None:
        ledger = LedgerDirectory(
            state.http,
            settings.ledger_url,
            settings.service_token,
            cache_seconds=settings.ledger_cache_seconds,
            timeout_seconds=settings.ledger_timeout_seconds,
            pause_after_failure_seconds=settings.ledger_pause_after_failure_seconds,
        )
        state.extras["catalogue"] = loaded
        state.extras["context"] = IngestContext(
            catalogue=loaded,
            tables=tables,
            ledger=ledger,
            clock=clock,
            settings=settings,
            batch_wake=asyncio.Event(),
            worker_settings=worker_settings,
        )

    async def batch_worker(state: ServiceState) -> None:
        context: IngestContext = state.extras["context"]
        worker = BatchWorker(state.database, loaded, tables, context.ledger, clock, worker_settings)
        await worker.serve(context.batch_wake)

    background: list[BackgroundJob] = [batch_worker] * settings.batch_workers
    definition = ServiceDefinition(
        name="ingest",
        package="ecips_ingest",
        title="ECIPS ingest",
        description=(
            "Department systems submit enterprise records: one at a time, or in CSV, XLSX "
            "or NDJSON batches; supervisors read the monthly compliance report."
        ),
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[
            records.submit_router,
            records.router,
            batches.router,
            catalogue.router,
            reports.router,
            me.router,
            workbench.router,
        ],
        produces={RECORDS_TOPIC: TOPIC_PARTITIONS[RECORDS_TOPIC]},
        handlers=HANDLERS,
        on_startup=on_startup,
        background=background,
    )
    return create_service_app(definition, settings)
