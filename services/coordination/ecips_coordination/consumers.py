"""Events coordination acts on: punishments decided or lifted by the rules service."""

from __future__ import annotations

from ecips_common.consumer import EventHandler
from ecips_common.contracts import PunishmentLifted, PunishmentTriggered
from ecips_common.db import UnitOfWork
from ecips_common.events import CloudEvent
from ecips_coordination.service import Deadlines, TaskService


def make_handlers(deadlines: Deadlines) -> dict[str, EventHandler]:
    async def punishment_triggered(uow: UnitOfWork, event: CloudEvent) -> None:
        await TaskService(uow, deadlines).on_punishment_triggered(
            event.id, PunishmentTriggered.from_event(event)
        )

    async def punishment_lifted(uow: UnitOfWork, event: CloudEvent) -> None:
        await TaskService(uow, deadlines).on_punishment_lifted(
            event.id, PunishmentLifted.from_event(event)
        )

    return {
        PunishmentTriggered.event_type: punishment_triggered,
        PunishmentLifted.event_type: punishment_lifted,
    }


HANDLERS: dict[str, EventHandler] = make_handlers(Deadlines())
