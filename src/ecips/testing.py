"""pytest plugin: a PostgreSQL database and a Kafka broker for the test session.

Activated by ``pytest_plugins = ["ecips.testing"]`` in the root ``conftest.py``.

* ``database_url``: URL (``postgresql+asyncpg://``) of a fresh database ``ecips_test_<random>``
  with pg_trgm, dropped at the end of the session. The server is ``$ECIPS_TEST_DATABASE_URL``
  (any database on an existing server) or an embedded PostgreSQL started for the session.
* ``kafka_bootstrap``: ``$ECIPS_TEST_KAFKA_BOOTSTRAP_SERVERS`` or an embedded broker started for
  the session. No topics are pre-created; tests create their own with unique names.
* ``embedded_broker``: that embedded broker (None when external), for fault tests.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .runtime.broker import EmbeddedBroker
from .runtime.ports import free_port
from .runtime.postgres import (
    EmbeddedPostgres,
    drop_database,
    ensure_database,
    to_asyncpg_dsn,
    to_sqlalchemy_url,
    with_database,
)

__all__ = ["DATABASE_URL_ENV", "KAFKA_BOOTSTRAP_ENV"]

DATABASE_URL_ENV = "ECIPS_TEST_DATABASE_URL"
KAFKA_BOOTSTRAP_ENV = "ECIPS_TEST_KAFKA_BOOTSTRAP_SERVERS"

logger = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def _ecips_postgres_server_dsn() -> Iterator[str]:
    """DSN of some database on the session's PostgreSQL server (for CREATE/DROP DATABASE)."""
    external = os.environ.get(DATABASE_URL_ENV)
    if external:
        yield to_asyncpg_dsn(external)
        return
    # A fresh directory directly under $TMPDIR rather than pytest's tmp_path: when we are
    # root the server runs as another user, and pytest's private (0700) base dir would have
    # to be opened up for it.
    base = Path(tempfile.mkdtemp(prefix="ecips-test-pg-"))
    base.chmod(0o711)  # mkdtemp makes it 0700; the server user only needs to pass through
    server = EmbeddedPostgres(base / "data", free_port())
    try:
        server.start()
        yield server.admin_dsn
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(_ecips_postgres_server_dsn: str) -> Iterator[str]:
    """``postgresql+asyncpg://`` URL of a fresh, session-private database with pg_trgm."""
    name = f"ecips_test_{secrets.token_hex(6)}"
    ensure_database(_ecips_postgres_server_dsn, name)
    logger.info("test database %s created", name)
    try:
        yield to_sqlalchemy_url(with_database(_ecips_postgres_server_dsn, name))
    finally:
        drop_database(_ecips_postgres_server_dsn, name)


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker | None]:
    """The session's embedded broker, or None when ``$ECIPS_TEST_KAFKA_BOOTSTRAP_SERVERS`` is set.

    Memory-only: a test that restarts or kills it loses every topic and message, including
    other tests' topics, so such tests should create their topics afterwards.
    """
    if os.environ.get(KAFKA_BOOTSTRAP_ENV):
        yield None
        return
    broker = EmbeddedBroker(free_port(), log_path=tmp_path_factory.mktemp("kafka") / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(embedded_broker: EmbeddedBroker | None) -> str:
    """Kafka bootstrap servers string, e.g. ``127.0.0.1:40123``."""
    if embedded_broker is None:
        return os.environ[KAFKA_BOOTSTRAP_ENV]
    return embedded_broker.bootstrap_servers
