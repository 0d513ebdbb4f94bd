"""The ledger service: the legal-person database and every record filed under it."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from ecips_common.app import ServiceDefinition, ServiceState, create_service_app
from ecips_common.consumer import Upstream
from ecips_common.contracts import LEDGER_TOPIC, RECORDS_TOPIC, TOPIC_PARTITIONS
from ecips_common.settings import ServiceSettings
from ecips_ledger.api import enterprises, feed, quality
from ecips_ledger.consumers import HANDLERS
from ecips_ledger.feed import listen_for_outbox_commits
from ecips_ledger.models import OUTBOX, Base
from ecips_ledger.service import refold_outdated
from ecips_ledger.settings import LedgerSettings

logger = logging.getLogger("ecips.ledger")


async def refold_after_upgrade(state: ServiceState) -> None:
    """Enterprises derived by older rules are derived again, once, at start."""
    count = await refold_outdated(state.database)
    if count:
        logger.info("re-derived enterprises folded by older rules", extra={"count": count})


def upstreams(settings: ServiceSettings) -> list[Upstream]:
    return [
        Upstream(name="ingest", topic=RECORDS_TOPIC, feed_url=f"{settings.ingest_url}/v1/changes")
    ]


def create_app(settings: LedgerSettings | None = None) -> FastAPI:
    settings = settings or LedgerSettings.load()
    definition = ServiceDefinition(
        name="ledger",
        package="ecips_ledger",
        title="ECIPS ledger",
        description=(
            "The legal-person database: enterprise master data, name history, status, "
            "list flags, and every record filed under each enterprise with every revision. "
            "Government only (`ledger:read`); every read is audited."
        ),
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[enterprises.router, quality.router, feed.router],
        produces={LEDGER_TOPIC: TOPIC_PARTITIONS[LEDGER_TOPIC]},
        handlers=HANDLERS,
        upstreams=upstreams,
        background=[listen_for_outbox_commits, refold_after_upgrade],
        changes_scopes=("ledger:read", "changes:read"),
    )
    return create_service_app(definition, settings)
