"""Events coordination acts on: punishments decided or lifted by the rules
service, and registrations and business-scope changes from the ledger."""

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
from ecips_coordination.service import Environment, TaskService


def make_handlers(env: Environment) -> dict[str, EventHandler]:
    async def punishment_triggered(uow: UnitOfWork, event: CloudEvent) -> None:
        await TaskService(uow, env).on_punishment_triggered(
            event.id, PunishmentTriggered.from_event(event)
        )

    async def punishment_lifted(uow: UnitOfWork, event: CloudEvent) -> None:
        await TaskService(uow, env).on_punishment_lifted(
            event.id, PunishmentLifted.from_event(event)
        )

    async def enterprise_changed(uow: UnitOfWork, event: CloudEvent) -> None:
        await TaskService(uow, env).on_enterprise_changed(
            event.id, EnterpriseChanged.from_event(event)
        )

    async def record_filed(uow: UnitOfWork, event: CloudEvent) -> None:
        await TaskService(uow, env).on_record_filed(RecordFiled.from_event(event))

    return {
        PunishmentTriggered.event_type: punishment_triggered,
        PunishmentLifted.event_type: punishment_lifted,
        EnterpriseChanged.event_type: enterprise_changed,
        RecordFiled.event_type: record_filed,
    }
