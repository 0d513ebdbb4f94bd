"""The ingest service: department systems submit records here."""

from __future__ import annotations

from fastapi import FastAPI

from ecips_common.app import ServiceDefinition, ServiceState, create_service_app
from ecips_common.contracts import RECORDS_TOPIC, TOPIC_PARTITIONS
from ecips_ingest.api import catalogue, records
from ecips_ingest.catalogue import load_catalogue
from ecips_ingest.consumers import HANDLERS
from ecips_ingest.models import OUTBOX, Base
from ecips_ingest.settings import IngestSettings


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings.load()
    # Validate the catalogue before serving anything: a bad file stops startup.
    loaded = load_catalogue(settings.catalogue_dir)

    async def on_startup(state: ServiceState) -> None:
        state.extras["catalogue"] = loaded

    definition = ServiceDefinition(
        name="ingest",
        package="ecips_ingest",
        title="ECIPS ingest",
        description="Department systems submit enterprise records: one at a time or in batches.",
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[records.router, catalogue.router],
        produces={RECORDS_TOPIC: TOPIC_PARTITIONS[RECORDS_TOPIC]},
        handlers=HANDLERS,
        on_startup=on_startup,
    )
    return create_service_app(definition, settings)
