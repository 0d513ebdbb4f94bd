"""Ingest consumes no events: it is where records enter the system."""

from __future__ import annotations

from ecips_common.consumer import EventHandler

HANDLERS: dict[str, EventHandler] = {}
