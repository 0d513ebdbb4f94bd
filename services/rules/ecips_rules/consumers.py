"""The rules service consumes the ledger's enterprise snapshots."""

from __future__ import annotations

from ecips_common.consumer import EventHandler
from ecips_common.contracts import EnterpriseChanged
from ecips_common.db import UnitOfWork
from ecips_common.events import CloudEvent
from ecips_rules.catalogue import Catalogue
from ecips_rules.service import EvaluationService


def build_handlers(catalogue: Catalogue) -> dict[str, EventHandler]:
    """The handlers by event type, bound to the catalogue loaded at startup."""

    async def on_enterprise_changed(uow: UnitOfWork, event: CloudEvent) -> None:
        snapshot = EnterpriseChanged.from_event(event)
        await EvaluationService(uow, catalogue).apply(snapshot)

    return {EnterpriseChanged.event_type: on_enterprise_changed}
