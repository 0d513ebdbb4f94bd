"""The CloudNativePG Cluster's database setup, on a real PostgreSQL.

Runs the Cluster's postInitApplicationSQL as the superuser (as CloudNativePG does at
bootstrap), gives the roles LOGIN and a password as its managed roles do, then migrates
every service as its own role, as the migration Jobs do, and checks that each role is
confined to its schema.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ecips.runtime.postgres import to_sqlalchemy_url, with_database
from ecips.stack import SERVICES
from ecips_common.migrations import upgrade_to_head

# Serialises this test across sessions sharing one server: roles are server-wide.
LOCK_KEY = 0x0EC1_D3B1


@pytest.fixture(scope="session")
def server_dsn(request: pytest.FixtureRequest) -> str:
    """A superuser DSN on the session's PostgreSQL server (the ecips.testing plugin's)."""
    dsn: str = request.getfixturevalue("_ecips_postgres_server_dsn")
    return dsn


@pytest.fixture(scope="module")
def cluster_spec(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (cluster,) = [o for o in rendered["prod"] if o["kind"] == "Cluster"]
    spec: dict[str, Any] = cluster["spec"]
    return spec


@pytest.fixture
async def bootstrapped(
    server_dsn: str, cluster_spec: dict[str, Any]
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """A fresh database set up like the Cluster's; yields its DSN and each role's password."""
    initdb = cluster_spec["bootstrap"]["initdb"]
    roles = cluster_spec["managed"]["roles"]
    names = [role["name"] for role in roles]
    admin = await asyncpg.connect(server_dsn)
    await admin.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    existing = await admin.fetch("SELECT rolname FROM pg_roles WHERE rolname = ANY($1)", names)
    assert not existing, f"roles {[r[0] for r in existing]} already exist on the test server"
    database = f"ecips_deploy_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{database}"')
    dsn = with_database(server_dsn, database)
    passwords = {name: secrets.token_hex(16) for name in names}
    try:
        superuser = await asyncpg.connect(dsn)
        try:
            for statement in initdb["postInitApplicationSQL"]:
                # The SQL names the Cluster's database; this one has a test name.
                await superuser.execute(
                    statement.replace(f"DATABASE {initdb['database']}", f'DATABASE "{database}"')
                )
            for role in roles:  # what spec.managed.roles makes of each role
                await superuser.execute(
                    f"ALTER ROLE {role['name']} {'LOGIN' if role['login'] else 'NOLOGIN'} "
                    f"CONNECTION LIMIT {role['connectionLimit']} "
                    f"PASSWORD '{passwords[role['name']]}'"
                )
        finally:
            await superuser.close()
        yield dsn, passwords
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for name in names:
            await admin.execute(f"DROP ROLE IF EXISTS {name}")
        await admin.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        await admin.close()


def as_role(dsn: str, role: str, password: str) -> str:
    """The DSN with another user and password (host, port and database kept)."""
    scheme, rest = dsn.split("://", 1)
    return f"{scheme}://{role}:{password}@{rest.rsplit('@', 1)[-1]}"


async def test_each_service_migrates_as_its_own_role_and_is_confined_to_its_schema(
    bootstrapped: tuple[str, dict[str, str]],
) -> None:
    dsn, passwords = bootstrapped
    for service in SERVICES:  # the migration Jobs: `ecips migrate <service>`
        url = to_sqlalchemy_url(as_role(dsn, service, passwords[service]))
        await asyncio.to_thread(upgrade_to_head, f"ecips_{service}", url, service)

    for service in SERVICES:
        connection = await asyncpg.connect(as_role(dsn, service, passwords[service]))
        try:
            owned = await connection.fetch(
                "SELECT DISTINCT schemaname FROM pg_tables WHERE tableowner = current_user"
            )
            assert [row[0] for row in owned] == [service]
            assert await connection.fetchval(f"SELECT count(*) FROM {service}.alembic_version")
            for other in SERVICES:
                if other != service:
                    with pytest.raises(asyncpg.InsufficientPrivilegeError):
                        await connection.fetch(f"SELECT * FROM {other}.alembic_version")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute("CREATE TABLE public.stray (id int)")
        finally:
            await connection.close()

    # The trigram functions publicity's search uses work for its role.
    publicity = await asyncpg.connect(as_role(dsn, "publicity", passwords["publicity"]))
    try:
        assert await publicity.fetchval("SELECT similarity('渝信建材', '渝信建材贸易')") > 0
    finally:
        await publicity.close()


async def test_nobody_else_may_connect(
    bootstrapped: tuple[str, dict[str, str]], server_dsn: str
) -> None:
    dsn, _ = bootstrapped
    stranger = f"ecips_stranger_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_dsn)
    await admin.execute(f"CREATE ROLE {stranger} LOGIN PASSWORD 'stranger'")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(as_role(dsn, stranger, "stranger"))
    finally:
        await admin.execute(f"DROP ROLE {stranger}")
        await admin.close()
