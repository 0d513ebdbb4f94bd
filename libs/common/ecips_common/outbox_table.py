"""The outbox, inbox and dead-letter tables every service keeps in its own schema."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID


@dataclass(frozen=True, slots=True)
class OutboxTables:
    schema: str
    outbox: Table
    inbox: Table
    dead_letters: Table
    feed_cursors: Table

    @property
    def channel(self) -> str:
        return f"{self.schema}_outbox"

    @property
    def lock_key(self) -> int:
        return zlib.crc32(f"{self.schema}.outbox".encode()) & 0x7FFFFFFF


def define_outbox_tables(metadata: MetaData) -> OutboxTables:
    """Declare the tables on a service's metadata (so Alembic migrates them)."""
    schema = metadata.schema
    if schema is None:
        raise ValueError("the service metadata must name its schema")
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        Column(
            "event_id",
            UUID(as_uuid=True),
            nullable=False,
            unique=True,
            server_default=text("gen_random_uuid()"),
        ),
        Column("topic", String(100), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("subject", String(64), nullable=False),
        Column("partition_key", String(64), nullable=False),
        Column("data", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Index("ix_outbox_unpublished", "seq", postgresql_where=text("published_at IS NULL")),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("source", String(100), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("sequence", BigInteger, nullable=False),
        Column("outcome", String(20), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_inbox_source_sequence", "source", "sequence"),
    )
    dead_letters = Table(
        "dead_letters",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("source", String(100), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("event", JSONB, nullable=False),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    feed_cursors = Table(
        "feed_cursors",
        metadata,
        Column("source", String(100), primary_key=True),
        Column("position", BigInteger, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return OutboxTables(schema, outbox, inbox, dead_letters, feed_cursors)
