"""The records topic, applied to the ledger."""

from __future__ import annotations

from ecips_common.consumer import EventHandler
from ecips_common.contracts import RecordAccepted, RecordRevoked
from ecips_common.db import UnitOfWork
from ecips_common.events import CloudEvent
from ecips_ledger.service import RecordFiler


async def on_record_accepted(uow: UnitOfWork, event: CloudEvent) -> None:
    await RecordFiler(uow).accept(RecordAccepted.from_event(event))


async def on_record_revoked(uow: UnitOfWork, event: CloudEvent) -> None:
    await RecordFiler(uow).revoke(RecordRevoked.from_event(event))


HANDLERS: dict[str, EventHandler] = {
    RecordAccepted.event_type: on_record_accepted,
    RecordRevoked.event_type: on_record_revoked,
}
