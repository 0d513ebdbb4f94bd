"""What ingest's endpoints share: the loaded catalogues, the ledger client, the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from ecips_common.app import service_state
from ecips_common.auth import Principal, require_scope
from ecips_ingest.batches import WorkerSettings
from ecips_ingest.catalogue import Catalogue
from ecips_ingest.ledger_client import LedgerDirectory
from ecips_ingest.settings import IngestSettings
from ecips_ingest.tabular import CategoryTable


@dataclass(frozen=True)
class IngestContext:
    catalogue: Catalogue
    tables: dict[str, CategoryTable]
    ledger: LedgerDirectory
    clock: Callable[[], datetime]
    settings: IngestSettings
    batch_wake: asyncio.Event
    worker_settings: WorkerSettings


def context(request: Request) -> IngestContext:
    found: IngestContext = service_state(request).extras["context"]
    return found


def catalogue(request: Request) -> Catalogue:
    return context(request).catalogue


Context = Annotated[IngestContext, Depends(context)]
CatalogueDep = Annotated[Catalogue, Depends(catalogue)]
Writer = Annotated[Principal, Depends(require_scope("records:write"))]
Reporter = Annotated[Principal, Depends(require_scope("reports:read"))]
