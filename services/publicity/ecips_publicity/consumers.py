"""Event handlers: the ledger's enterprises and records, the rules' punishments.

Each runs inside the transaction that records the event in the inbox; the
projector keeps the newest version, so order and repetition do not matter.
"""

from __future__ import annotations

from collections.abc import Sequence

from ecips_common.consumer import BatchHandler, Handler
from ecips_common.contracts import (
    EnterpriseChanged,
    PunishmentLifted,
    PunishmentTriggered,
    RecordFiled,
)
from ecips_common.db import UnitOfWork
from ecips_common.events import CloudEvent
from ecips_publicity.catalogue import PublicationCatalogue
from ecips_publicity.service import Projector, Today


def make_handlers(catalogue: PublicationCatalogue, today: Today) -> dict[str, Handler]:
    def projector(uow: UnitOfWork) -> Projector:
        return Projector(uow, catalogue, today())

    def snapshot(event: CloudEvent) -> tuple[EnterpriseChanged, str | None]:
        # `status_code` is read from the raw data too, so that it is used as
        # soon as the ledger sends it, whichever contract version parsed it.
        payload = EnterpriseChanged.from_event(event)
        code = getattr(payload, "status_code", None) or event.data.get("status_code")
        return payload, code if isinstance(code, str) else None

    async def on_ledger_events(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
        # The ledger sends a filing and the snapshot it caused in turns; both
        # tables keep the newest version, so a run is applied as two sets.
        work = projector(uow)
        await work.enterprises_changed(
            [snapshot(e) for e in events if e.type == EnterpriseChanged.event_type]
        )
        await work.records_filed(
            [RecordFiled.from_event(e) for e in events if e.type == RecordFiled.event_type]
        )

    async def on_punishment_triggered(uow: UnitOfWork, event: CloudEvent) -> None:
        await projector(uow).punishment_triggered(PunishmentTriggered.from_event(event))

    async def on_punishment_lifted(uow: UnitOfWork, event: CloudEvent) -> None:
        await projector(uow).punishment_lifted(PunishmentLifted.from_event(event))

    ledger_events = BatchHandler(on_ledger_events)
    return {
        EnterpriseChanged.event_type: ledger_events,
        RecordFiled.event_type: ledger_events,
        PunishmentTriggered.event_type: on_punishment_triggered,
        PunishmentLifted.event_type: on_punishment_lifted,
    }
