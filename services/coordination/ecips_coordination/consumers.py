"""Events coordination acts on: punishments decided or lifted by the rules
service, and registrations and business-scope changes from the ledger."""

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
from ecips_coordination.service import Environment, LedgerEvent, TaskService


def _ledger_event(event: CloudEvent) -> LedgerEvent:
    if event.type == EnterpriseChanged.event_type:
        return event.id, EnterpriseChanged.from_event(event)
    return event.id, RecordFiled.from_event(event)


def make_handlers(env: Environment) -> dict[str, Handler]:
    async def punishment_triggered(uow: UnitOfWork, event: CloudEvent) -> None:
        await TaskService(uow, env).on_punishment_triggered(
            event.id, PunishmentTriggered.from_event(event)
        )

    async def punishment_lifted(uow: UnitOfWork, event: CloudEvent) -> None:
        await TaskService(uow, env).on_punishment_lifted(
            event.id, PunishmentLifted.from_event(event)
        )

    async def ledger_events(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
        await TaskService(uow, env).on_ledger_events([_ledger_event(e) for e in events])

    # One handler for both types: the ledger emits them in turns (a filing,
    # then the snapshot it caused), and a run goes to one handler whole, so
    # the two types are applied together rather than in runs of one.
    ledger = BatchHandler(ledger_events)
    return {
        PunishmentTriggered.event_type: punishment_triggered,
        PunishmentLifted.event_type: punishment_lifted,
        EnterpriseChanged.event_type: ledger,
        RecordFiled.event_type: ledger,
    }
