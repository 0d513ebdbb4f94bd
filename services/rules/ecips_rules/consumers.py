"""The rules service consumes the ledger's enterprise snapshots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ecips_common.consumer import EventHandler
from ecips_common.contracts import EnterpriseChanged
from ecips_common.db import UnitOfWork
from ecips_common.events import CloudEvent
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.service import EvaluationService


def build_handlers(
    registry: CatalogueRegistry, clock: Callable[[], datetime]
) -> dict[str, EventHandler]:
    """The handlers by event type, bound to the catalogue registry."""

    async def on_enterprise_changed(uow: UnitOfWork, event: CloudEvent) -> None:
        # The raw data, not the contract model: fields the ledger adds before the
        # contract names them are read too (see variables.LedgerSnapshot).
        await EvaluationService(uow, registry, now=clock()).apply(event.data)

    return {EnterpriseChanged.event_type: on_enterprise_changed}
