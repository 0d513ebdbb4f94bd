"""Fixtures for the rules service's tests: a database per test module (the
catalogue in force is per database, and modules enact their own)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from ecips.runtime.postgres import (
    drop_database,
    ensure_database,
    to_asyncpg_dsn,
    to_sqlalchemy_url,
    with_database,
)


@pytest.fixture(scope="module")
def rules_database_url(database_url: str) -> Iterator[str]:
    name = f"ecips_rules_{secrets.token_hex(5)}"
    ensure_database(database_url, name)
    try:
        yield to_sqlalchemy_url(with_database(to_asyncpg_dsn(database_url), name))
    finally:
        drop_database(database_url, name)
