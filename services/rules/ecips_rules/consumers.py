"""The rules service consumes the ledger's enterprise snapshots."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ecips_common.consumer import BatchHandler, Handler
from ecips_common.contracts import EnterpriseChanged
from ecips_common.db import UnitOfWork
from ecips_common.events import CloudEvent
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.service import EvaluationService


def build_handlers(
    registry: CatalogueRegistry, clock: Callable[[], datetime]
) -> dict[str, Handler]:
    """The handlers by event type, bound to the catalogue registry."""

    async def on_enterprises_changed(uow: UnitOfWork, events: Sequence[CloudEvent]) -> None:
        # The raw data, not the contract model: fields the ledger adds before the
        # contract names them are read too (see variables.LedgerSnapshot).
        await EvaluationService(uow, registry, now=clock()).apply_many([e.data for e in events])

    return {EnterpriseChanged.event_type: BatchHandler(on_enterprises_changed)}
