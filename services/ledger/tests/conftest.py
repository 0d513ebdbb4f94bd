"""Fixtures for the ledger's tests: one ledger app per session served over
real HTTP (the change stream needs a real socket), the ingest app for the
end-to-end path, and a producer onto the records topic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from aiokafka import AIOKafkaProducer

from ecips.runtime.ports import free_port
from ecips.testkit import SigningKeys, new_signing_keys, running_app, service_settings_kwargs
from ecips_common.contracts import RECORDS_TOPIC, TOPIC_PARTITIONS
from ecips_common.outbox import ensure_topics
from ecips_ingest.main import create_app as create_ingest_app
from ecips_ingest.settings import IngestSettings
from ecips_ledger.main import create_app as create_ledger_app
from ecips_ledger.settings import LedgerSettings

# Nothing listens here: the change-feed follower stays idle instead of
# reading whatever ingest may run on the default port.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def ledger_keys() -> SigningKeys:
    return new_signing_keys()


@pytest.fixture(scope="session")
def ledger_settings_kwargs(
    database_url: str, kafka_bootstrap: str, ledger_keys: SigningKeys
) -> dict[str, Any]:
    return service_settings_kwargs(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        keys=ledger_keys,
        ingest_url=UNREACHABLE,
        feed_follow_interval_seconds=60.0,
        stream_heartbeat_seconds=1.0,
    )


@pytest.fixture(scope="session")
async def records_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(kafka_bootstrap, {RECORDS_TOPIC: TOPIC_PARTITIONS[RECORDS_TOPIC]})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """pytest keeps its own signal handlers."""
        yield


@pytest.fixture(scope="session")
async def ledger(
    ledger_settings_kwargs: dict[str, Any], records_producer: AIOKafkaProducer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = LedgerSettings(**ledger_settings_kwargs)
    port = free_port()
    server = _Server(
        uvicorn.Config(
            create_ledger_app(settings),
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=3,
        )
    )
    serving = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 60
    while not server.started:
        if serving.done():
            serving.result()  # raises what made it fail
        assert asyncio.get_running_loop().time() < deadline, "the ledger did not start"
        await asyncio.sleep(0.05)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await serving


@pytest.fixture(scope="session")
async def ingest(
    database_url: str, kafka_bootstrap: str, ledger_keys: SigningKeys
) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(
        **service_settings_kwargs(
            database_url=database_url, kafka_bootstrap=kafka_bootstrap, keys=ledger_keys
        )
    )
    async with running_app(lambda: create_ingest_app(settings)) as client:
        yield client
