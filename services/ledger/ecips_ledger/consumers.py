"""The records topic, applied to the ledger."""

from __future__ import annotations

from collections.abc import Sequence

from ecips_common.consumer import BatchHandler, Handler
from ecips_common.contracts import RecordAccepted, RecordRevoked
from ecips_common.db import UnitOfWork
from ecips_common.events import CloudEvent
from ecips_ledger.service import RecordFiler


async def on_records_accepted(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
    await RecordFiler(uow).accept_many([RecordAccepted.from_event(e) for e in events])


async def on_record_revoked(uow: UnitOfWork, event: CloudEvent) -> None:
    await RecordFiler(uow).revoke(RecordRevoked.from_event(event))


HANDLERS: dict[str, Handler] = {
    RecordAccepted.event_type: BatchHandler(on_records_accepted),
    RecordRevoked.event_type: on_record_revoked,
}
