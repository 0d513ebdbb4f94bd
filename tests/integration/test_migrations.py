"""Every service's migrations build exactly the schema its models declare,
and step down again: a model changed without a migration fails here."""

from __future__ import annotations

import asyncio
import importlib
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from ecips.runtime.postgres import drop_database, ensure_database, to_sqlalchemy_url, with_database
from ecips_common.migrations import alembic_config, upgrade_to_head

SERVICES = ("ingest", "ledger", "publicity", "coordination", "rules")


@pytest.fixture
def fresh_database(_ecips_postgres_server_dsn: str) -> Iterator[str]:
    name = f"ecips_migrations_{secrets.token_hex(4)}"
    ensure_database(_ecips_postgres_server_dsn, name)
    try:
        yield to_sqlalchemy_url(with_database(_ecips_postgres_server_dsn, name))
    finally:
        drop_database(_ecips_postgres_server_dsn, name)


def _expression_index(difference: Any) -> bool:
    """Search indexes on expressions (lower(name), trigram operator classes)
    live in the migrations only: reflection cannot express them as models."""
    if not isinstance(difference, tuple) or difference[0] not in ("add_index", "remove_index"):
        return False
    index = difference[1]
    return any(not isinstance(e, Column) for e in index.expressions)


def _differences(url: str, metadata: MetaData) -> list[Any]:
    schema = metadata.schema

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _parent: type_ != "schema" or name == schema,
                "version_table_schema": schema,
                "compare_type": True,
            },
        )
        return [d for d in compare_metadata(context, metadata) if not _expression_index(d)]

    async def run() -> list[Any]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str, schema: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}
                )
                return {row[0] for row in rows}
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_the_models_schema_and_step_down(
    service: str, fresh_database: str
) -> None:
    package = f"ecips_{service}"
    metadata: MetaData = importlib.import_module(f"{package}.models").Base.metadata
    assert metadata.schema == service
    upgrade_to_head(package, fresh_database, service)
    assert _differences(fresh_database, metadata) == []

    command.downgrade(alembic_config(package, fresh_database, service), "base")
    assert _tables(fresh_database, service) <= {"alembic_version"}
    upgrade_to_head(package, fresh_database, service)
    assert _differences(fresh_database, metadata) == []
