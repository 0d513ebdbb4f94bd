"""Event handlers: the ledger's enterprises and records, the rules' punishments.

Each runs inside the transaction that records the event in the inbox; the
projector keeps the newest version, so order and repetition do not matter.
"""

from __future__ import annotations

from ecips_common.consumer import EventHandler
from ecips_common.contracts import (
    EnterpriseChanged,
    PunishmentLifted,
    PunishmentTriggered,
    RecordFiled,
)
from ecips_common.db import UnitOfWork
from ecips_common.events import CloudEvent
from ecips_publicity.service import Projector


async def on_enterprise_changed(uow: UnitOfWork, event: CloudEvent) -> None:
    await Projector(uow).enterprise_changed(EnterpriseChanged.from_event(event))


async def on_record_filed(uow: UnitOfWork, event: CloudEvent) -> None:
    await Projector(uow).record_filed(RecordFiled.from_event(event))


async def on_punishment_triggered(uow: UnitOfWork, event: CloudEvent) -> None:
    await Projector(uow).punishment_triggered(PunishmentTriggered.from_event(event))


async def on_punishment_lifted(uow: UnitOfWork, event: CloudEvent) -> None:
    await Projector(uow).punishment_lifted(PunishmentLifted.from_event(event))


HANDLERS: dict[str, EventHandler] = {
    EnterpriseChanged.event_type: on_enterprise_changed,
    RecordFiled.event_type: on_record_filed,
    PunishmentTriggered.event_type: on_punishment_triggered,
    PunishmentLifted.event_type: on_punishment_lifted,
}
