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

    async def on_enterprises_changed(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
        await projector(uow).enterprises_changed([snapshot(e) for e in events])

    async def on_records_filed(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
        await projector(uow).records_filed([RecordFiled.from_event(e) for e in events])

    async def on_punishment_triggered(uow: UnitOfWork, event: CloudEvent) -> None:
        await projector(uow).punishment_triggered(PunishmentTriggered.from_event(event))

    async def on_punishment_lifted(uow: UnitOfWork, event: CloudEvent) -> None:
        await projector(uow).punishment_lifted(PunishmentLifted.from_event(event))

    return {
        EnterpriseChanged.event_type: BatchHandler(on_enterprises_changed),
        RecordFiled.event_type: BatchHandler(on_records_filed),
        PunishmentTriggered.event_type: on_punishment_triggered,
        PunishmentLifted.event_type: on_punishment_lifted,
    }
