"""The batch worker against the real database: progress while a batch runs, a
worker that dies mid-batch (its lease runs out, another worker resumes after
the last committed chunk, nothing applied twice), identical batches processed
at the same time, and a batch accepted before a restart finished after it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from ingest_support import (
    csv_bytes,
    eventually,
    finished_batch,
    private_database,
    random_uscc,
    settings,
    unique,
)
from sqlalchemy import text

from ecips.testkit import SigningKeys, new_signing_keys, running_app
from ecips_common.db import Database, create_engine
from ecips_ingest.batches import BatchWorker, WorkerSettings
from ecips_ingest.catalogue import load_catalogue
from ecips_ingest.main import create_app
from ecips_ingest.models import OUTBOX
from ecips_ingest.schemas import now_utc
from ecips_ingest.settings import CATALOGUE_DIR
from ecips_ingest.tabular import CategoryTable

SAMR = "CQ-SAMR"
CATALOGUE = load_catalogue(CATALOGUE_DIR)
TABLES = {k: CategoryTable.build(c) for k, c in CATALOGUE.categories.items()}
WORKER = WorkerSettings(chunk_rows=100, lease=timedelta(seconds=1), max_attempts=2)


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return new_signing_keys()


@pytest.fixture(scope="module")
async def own_url(database_url: str) -> AsyncIterator[str]:
    async with private_database(database_url) as url:
        yield url


@pytest.fixture(scope="module")
async def client(own_url: str, kafka_bootstrap: str, keys: SigningKeys) -> AsyncIterator[Any]:
    # This process only accepts uploads: the tests drive the workers themselves.
    app_settings = settings(own_url, kafka_bootstrap, keys, batch_workers=0)
    async with running_app(lambda: create_app(app_settings)) as http:
        yield http


@pytest.fixture(scope="module")
async def database(own_url: str, client: Any) -> AsyncIterator[Database]:
    db = Database(create_engine(own_url, application_name="ingest-test"), OUTBOX)
    yield db
    await db.dispose()


def worker(database: Database, name: str) -> BatchWorker:
    return BatchWorker(database, CATALOGUE, TABLES, None, now_utc, WORKER, name=name)


def licence_file(prefix: str, count: int) -> bytes:
    uscc = random_uscc()
    header = ["业务编号", "统一社会信用代码", "行政相对人名称", "行政许可决定文书号", "许可类别",
              "许可证书名称", "许可编号", "许可内容", "许可决定日期", "有效期自", "许可机关"]  # fmt: skip
    rows = [
        [
            f"{prefix}-{n:05d}",
            uscc,
            "重庆南滨悦榕酒店管理有限公司",
            f"渝卫公证字〔2025〕第{n:06d}号",
            "普通",
            "公共场所卫生许可证",
            f"WS{n:06d}",
            "住宿",
            "2025-07-15",
            "2025-07-15",
            "重庆市南岸区卫生健康委员会",
        ]
        for n in range(count)
    ]
    return csv_bytes([header, *rows])


async def upload(client: Any, keys: SigningKeys, content: bytes) -> str:
    response = await client.post(
        "/v1/batches",
        headers=keys.headers("CQ-HEALTH", "records:write"),
        files={"file": ("许可.csv", content)},
        data={"category": "administrative_license"},
    )
    assert response.status_code == 202, response.text
    batch_id: str = response.json()["batch_id"]
    return batch_id


async def events_for(database: Database, prefix: str) -> tuple[int, int, int]:
    """(events, records, highest revision) for the rows whose source_id starts with prefix."""
    async with database.read_only() as session:
        events = (
            await session.execute(
                text(
                    "SELECT count(*) FROM ingest.outbox WHERE data->>'source_id' LIKE :p "
                    "AND event_type = 'ecips.record.accepted'"
                ),
                {"p": f"{prefix}%"},
            )
        ).scalar_one()
        records, revision = (
            await session.execute(
                text(
                    "SELECT count(*), max(current_revision) FROM ingest.records "
                    "WHERE source_id LIKE :p"
                ),
                {"p": f"{prefix}%"},
            )
        ).one()
    return events, records, revision


async def test_progress_and_resume_after_a_worker_dies(
    client: Any, keys: SigningKeys, database: Database
) -> None:
    headers = keys.headers("CQ-HEALTH", "records:write")
    prefix = unique("RESUME")
    batch_id = await upload(client, keys, licence_file(prefix, 1000))
    queued = (await client.get(f"/v1/batches/{batch_id}", headers=headers)).json()
    assert (queued["status"], queued["total"], queued["processed"]) == ("queued", 1000, 0)

    doomed = worker(database, "doomed")
    assert str(await doomed.claim()) == batch_id
    # Three chunks, then the worker "dies": its lease is left to run out.
    assert await doomed.process(uuid.UUID(batch_id), max_chunks=3) is False
    running = (await client.get(f"/v1/batches/{batch_id}", headers=headers)).json()
    assert running["status"] == "processing"
    assert (running["processed"], running["total"], running["progress"]) == (300, 1000, 0.3)
    assert running["accepted"] == 300

    survivor = worker(database, "survivor")
    assert await survivor.claim() is None  # the lease still holds
    claimed = await eventually(survivor.claim, within=10, what="lease expired")
    assert str(claimed) == batch_id
    # The old worker, back from the dead, may no longer touch the batch.
    assert await doomed.process(claimed) is False
    assert await survivor.process(claimed) is True

    done = (await client.get(f"/v1/batches/{batch_id}", headers=headers)).json()
    assert (done["status"], done["processed"], done["accepted"], done["rejected"]) == (
        "done",
        1000,
        1000,
        0,
    )
    assert await events_for(database, prefix) == (1000, 1000, 1)


async def test_identical_batches_at_the_same_time_apply_each_row_once(
    client: Any, keys: SigningKeys, database: Database
) -> None:
    headers = keys.headers("CQ-HEALTH", "records:write")
    prefix = unique("TWIN")
    content = licence_file(prefix, 400)
    first, second = await upload(client, keys, content), await upload(client, keys, content)
    one, two = worker(database, "one"), worker(database, "two")
    claimed_by_one, claimed_by_two = await one.claim(), await two.claim()
    assert claimed_by_one is not None
    assert claimed_by_two is not None
    assert {str(claimed_by_one), str(claimed_by_two)} == {first, second}
    finished = await asyncio.gather(one.process(claimed_by_one), two.process(claimed_by_two))
    assert finished == [True, True]
    batches = [
        (await client.get(f"/v1/batches/{b}", headers=headers)).json() for b in (first, second)
    ]
    assert [b["accepted"] for b in batches] == [400, 400]
    assert sum(b["unchanged"] for b in batches) == 400
    assert await events_for(database, prefix) == (400, 400, 1)


async def test_a_batch_that_keeps_crashing_workers_fails(
    client: Any, keys: SigningKeys, database: Database
) -> None:
    headers = keys.headers("CQ-HEALTH", "records:write")
    batch_id = await upload(client, keys, licence_file(unique("POISON"), 10))
    for attempt in range(WORKER.max_attempts):
        claimer = worker(database, f"crash-{attempt}")
        assert str(await eventually(claimer.claim, within=10, what="claim")) == batch_id

    # One attempt too many: once the lease is out, the next claim gives it up.
    async def given_up() -> dict[str, Any] | None:
        assert await worker(database, "last").claim() is None
        body: dict[str, Any] = (await client.get(f"/v1/batches/{batch_id}", headers=headers)).json()
        return body if body["status"] == "failed" else None

    failed = await eventually(given_up, within=10, what="batch given up")
    assert failed["failure"]["code"] == "processing_failed"


async def test_a_batch_accepted_before_a_restart_is_finished_after_it(
    client: Any, keys: SigningKeys, own_url: str, kafka_bootstrap: str, database: Database
) -> None:
    headers = keys.headers("CQ-HEALTH", "records:write")
    prefix = unique("RESTART")
    batch_id = await upload(client, keys, licence_file(prefix, 250))
    # A fresh process on the same database, this time with its batch worker.
    restarted = settings(own_url, kafka_bootstrap, keys, batch_workers=1, batch_chunk_rows=100)
    async with running_app(lambda: create_app(restarted)) as fresh:
        done = await finished_batch(fresh, batch_id, headers)
    assert (done["status"], done["accepted"]) == ("done", 250)
    assert await events_for(database, prefix) == (250, 250, 1)
