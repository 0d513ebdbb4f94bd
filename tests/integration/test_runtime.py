"""The embedded PostgreSQL server and Kafka broker, with real processes (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ecips.runtime.broker import BrokerError, EmbeddedBroker, create_topics
from ecips.runtime.ports import free_port, port_is_free, wait_for_port
from ecips.runtime.postgres import (
    EmbeddedPostgres,
    PostgresAlreadyRunningError,
    PostgresError,
    drop_database,
    ensure_database,
    to_asyncpg_dsn,
)
from ecips.testing import DATABASE_URL_ENV, KAFKA_BOOTSTRAP_ENV

# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def pg_base() -> Iterator[Path]:
    # Not pytest's tmp_path: as root the server runs as another user, which cannot enter
    # pytest's private base directory.
    base = Path(tempfile.mkdtemp(prefix="ecips-runtime-test-"))
    base.chmod(0o711)  # let that user pass through (mkdtemp makes it 0700)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres(pg_base: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(pg_base / "data", free_port())
    yield server
    server.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    server = EmbeddedBroker(free_port(), log_path=tmp_path / "tansu.log")
    yield server
    server.stop()


@asynccontextmanager
async def connect(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def produce(bootstrap: str, topic: str, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


async def consume_one(bootstrap: str, topic: str, group: str) -> tuple[bytes, int, int]:
    """First message of *topic* for *group*, committed manually; (value, partition, offset)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # tansu holds a group join for about half the session timeout (5 s by default).
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=30)
        await consumer.commit()
        tp = TopicPartition(topic, msg.partition)
        assert await consumer.committed(tp) == msg.offset + 1
        assert msg.value is not None
        return msg.value, msg.partition, msg.offset
    finally:
        await consumer.stop()


def wait_until_dead(pid: int, timeout: float = 10) -> None:
    """Wait until *pid* is gone or a zombie (init may take seconds to reap orphans)."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(psutil.NoSuchProcess):
        while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, f"process {pid} did not die"
            time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# ports


def test_ports() -> None:
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free("127.0.0.1", port)
        wait_for_port("127.0.0.1", port, timeout=1)
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        wait_for_port("127.0.0.1", port, timeout=0.3)


# --------------------------------------------------------------------------------------------
# PostgreSQL


async def test_postgres_starts_with_database_and_pg_trgm(postgres: EmbeddedPostgres) -> None:
    # Called from inside the running event loop on purpose: start() must cope with that.
    postgres.start()
    assert postgres.is_running()
    assert postgres.url == f"postgresql+asyncpg://postgres@127.0.0.1:{postgres.port}/ecips"
    assert postgres.dsn == f"postgresql://postgres@127.0.0.1:{postgres.port}/ecips"

    async with connect(postgres.dsn) as conn:
        assert await conn.fetchval("select current_database()") == "ecips"
        assert await conn.fetchval("select extname from pg_extension where extname = 'pg_trgm'")
        assert await conn.fetchval("show server_version_num") >= "180000"
        assert await conn.fetchval("show max_connections") == "200"
        similarity = await conn.fetchval("select similarity('重庆市渝中区', '渝中')")
        assert similarity is not None
        # A UTF-8 LC_CTYPE is what makes pg_trgm see Chinese words at all.
        assert await conn.fetchval("select show_trgm('渝中')") != []
        assert await conn.fetchval("select similarity('重庆市渝中区', '重庆市')") > 0


async def test_postgres_keeps_data_across_stop_and_start(postgres: EmbeddedPostgres) -> None:
    postgres.start()
    async with connect(postgres.dsn) as conn:
        await conn.execute("create table enterprise (id int primary key, name text not null)")
        await conn.executemany(
            "insert into enterprise values ($1, $2)", [(1, "重庆某某有限公司"), (2, "acme")]
        )
    postgres.stop()
    assert not postgres.is_running()
    assert not (postgres.data_dir / "postmaster.pid").exists()

    postgres.start()
    async with connect(postgres.dsn) as conn:
        rows = await conn.fetch("select id, name from enterprise order by id")
    assert [tuple(r) for r in rows] == [(1, "重庆某某有限公司"), (2, "acme")]


async def test_postgres_recovers_from_kill_and_stale_pid_file(postgres: EmbeddedPostgres) -> None:
    postgres.start()
    async with connect(postgres.dsn) as conn:
        await conn.execute("create table t (v int)")
        await conn.execute("insert into t values (42)")
    postgres.kill()
    assert not postgres.is_running()
    pid_file = postgres.data_dir / "postmaster.pid"
    assert pid_file.exists(), "SIGKILL should leave postmaster.pid behind"

    # Make it look like the pid was recycled by an unrelated live process (as happens in
    # containers), which PostgreSQL on its own takes for a running postmaster.
    sleeper = await asyncio.create_subprocess_exec("sleep", "120")
    try:
        lines = pid_file.read_text().splitlines(keepends=True)
        pid_file.write_text(f"{sleeper.pid}\n" + "".join(lines[1:]))

        postgres.start()
        async with connect(postgres.dsn) as conn:
            assert await conn.fetchval("select v from t") == 42
    finally:
        sleeper.kill()
        await sleeper.wait()


async def test_postgres_refuses_to_start_while_crashed_backends_survive(
    postgres: EmbeddedPostgres,
) -> None:
    postgres.start()
    async with connect(postgres.dsn) as conn:
        backend_pid = await conn.fetchval("select pg_backend_pid()")
        # Freeze one backend so it outlives its postmaster, as after a real crash.
        os.kill(backend_pid, signal.SIGSTOP)
        postmaster = postgres.pid
        assert postmaster is not None
        os.kill(postmaster, signal.SIGKILL)
        wait_until_dead(postmaster)
        postgres.kill()  # reap the dead postmaster; the frozen backend is no child of it now
        try:
            with pytest.raises(PostgresAlreadyRunningError, match=str(backend_pid)):
                postgres.start()
            assert not postgres.is_running()
        finally:
            os.kill(backend_pid, signal.SIGKILL)
        conn.terminate()
    wait_until_dead(backend_pid)
    postgres.start()
    async with connect(postgres.dsn) as conn:
        assert await conn.fetchval("select 1") == 1


def test_postgres_refuses_a_second_server_on_the_same_data_dir(
    postgres: EmbeddedPostgres,
) -> None:
    postgres.start()
    intruder = EmbeddedPostgres(postgres.data_dir, free_port())
    with pytest.raises(PostgresAlreadyRunningError, match=r"already running on data directory"):
        intruder.start()
    assert postgres.is_running()
    assert (postgres.data_dir / "postmaster.pid").exists()


def test_postgres_reports_busy_port(pg_base: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        server = EmbeddedPostgres(pg_base / "data", port)
        with pytest.raises(PostgresError, match="already in use"):
            server.start()
        assert not server.is_running()


async def test_ensure_and_drop_database(postgres: EmbeddedPostgres) -> None:
    postgres.start()
    name = "ecips_test_Mixed-Case"
    ensure_database(postgres.admin_dsn, name)
    ensure_database(postgres.admin_dsn, name)  # idempotent
    async with connect(postgres.dsn_for(name)) as conn:
        assert await conn.fetchval("select similarity('abc', 'abd')") > 0
        # An open session must not block the drop.
        drop_database(postgres.admin_dsn, name)
    async with connect(postgres.admin_dsn) as conn:
        assert await conn.fetchval("select 1 from pg_database where datname = $1", name) is None


# --------------------------------------------------------------------------------------------
# broker


async def test_broker_topics_and_consumer_group(broker: EmbeddedBroker) -> None:
    topic = unique("runtime")
    broker.start({topic: 3})
    assert broker.is_running()
    assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
    create_topics(broker.bootstrap_servers, {topic: 3})  # already exists: tolerated

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        assert topic in await admin.list_topics()
        [description] = await admin.describe_topics([topic])
        assert len(description["partitions"]) == 3
    finally:
        await admin.close()

    await produce(broker.bootstrap_servers, topic, b"hello")
    group = unique("group")
    value, partition, offset = await consume_one(broker.bootstrap_servers, topic, group)
    assert (value, offset) == (b"hello", 0)

    # The committed offset is visible to the next member of the group.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        assert await consumer.committed(TopicPartition(topic, partition)) == 1
    finally:
        await consumer.stop()


async def test_broker_restart_loses_messages_but_works(broker: EmbeddedBroker) -> None:
    topic = unique("restart")
    broker.start({topic: 1})
    first_pid = broker.pid
    await produce(broker.bootstrap_servers, topic, b"before")

    broker.restart()
    assert broker.is_running()
    assert broker.pid != first_pid

    await produce(broker.bootstrap_servers, topic, b"after")
    value, _, offset = await consume_one(broker.bootstrap_servers, topic, unique("group"))
    # Memory storage: "before" is gone and offsets start over.
    assert (value, offset) == (b"after", 0)


async def test_broker_kill(broker: EmbeddedBroker) -> None:
    broker.start()
    port = broker.port
    broker.kill()
    assert not broker.is_running()
    assert port_is_free("127.0.0.1", port)
    broker.start()
    await produce(broker.bootstrap_servers, unique("after-kill"), b"x")


def test_broker_reports_busy_port() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        broker = EmbeddedBroker(listener.getsockname()[1])
        with pytest.raises(BrokerError, match="already in use"):
            broker.start()
        assert not broker.is_running()


# --------------------------------------------------------------------------------------------
# pytest plugin fixtures


async def test_session_fixtures(
    database_url: str, kafka_bootstrap: str, embedded_broker: EmbeddedBroker | None
) -> None:
    assert database_url.startswith("postgresql+asyncpg://")
    async with connect(to_asyncpg_dsn(database_url)) as conn:
        assert (await conn.fetchval("select current_database()")).startswith("ecips_test_")
        assert await conn.fetchval("select similarity('重庆市渝中区', '重庆')") is not None

    if os.environ.get(KAFKA_BOOTSTRAP_ENV):
        assert embedded_broker is None
    else:
        assert embedded_broker is not None
        assert embedded_broker.is_running()
        assert kafka_bootstrap == embedded_broker.bootstrap_servers
    if not os.environ.get(DATABASE_URL_ENV):
        assert "127.0.0.1" in database_url

    topic = unique("fixtures")
    create_topics(kafka_bootstrap, {topic: 2})
    await produce(kafka_bootstrap, topic, b"payload")
    value, _, _ = await consume_one(kafka_bootstrap, topic, unique("group"))
    assert value == b"payload"
