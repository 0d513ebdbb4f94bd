"""Alembic per service: one tree per service, version table in its schema.

A service's ``migrations/env.py`` is two lines that call :func:`run_env`;
:func:`upgrade_to_head` is what the service runs at start and what the
``ecips migrate`` command runs before a rollout.
"""

from __future__ import annotations

import asyncio
import logging

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

logger = logging.getLogger("ecips.migrations")


def alembic_config(package: str, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = schema
    config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(package: str, database_url: str, schema: str) -> None:
    """Blocking: run in a worker thread from async code."""
    command.upgrade(alembic_config(package, database_url, schema), "head")
    logger.info("migrations applied", extra={"schema": schema})


async def upgrade_to_head_async(package: str, database_url: str, schema: str) -> None:
    await asyncio.to_thread(upgrade_to_head, package, database_url, schema)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's ``env.py``."""
    config = context.config
    schema = target_metadata.schema
    assert schema is not None
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    assert url

    def do_run(connection: Connection) -> None:
        # One migrator per schema at a time, whichever replica gets there first.
        connection.execute(
            text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": f"migrate:{schema}"}
        )
        try:
            exists = connection.execute(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
            ).first()
            if exists is None:
                # Needs CREATE on the database; a role whose schema was created
                # for it by the operator never does.
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            connection.commit()
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                version_table_schema=schema,
                include_schemas=True,
                include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(
                text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": f"migrate:{schema}"}
            )
            connection.commit()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=target_metadata,
            version_table_schema=schema,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())
