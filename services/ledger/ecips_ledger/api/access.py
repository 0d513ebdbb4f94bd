"""Who may read the ledger, and the audit entry every read leaves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ecips_common.app import service_state
from ecips_common.auth import Principal, require_any_scope, require_scope
from ecips_ledger.service import AuditLog


async def _audit(request: Request, principal: Principal) -> Principal:
    # Its own transaction: the read is on record even when it then fails (a 404, say).
    async with service_state(request).database.unit_of_work() as uow:
        await AuditLog(uow).record_read(
            principal,
            method=request.method,
            path=request.url.path,
            query=request.url.query or None,
            uscc=request.path_params.get("uscc"),
        )
    return principal


async def audited_reader(
    request: Request, principal: Annotated[Principal, Depends(require_scope("ledger:read"))]
) -> Principal:
    return await _audit(request, principal)


async def audited_reporter(
    request: Request,
    principal: Annotated[Principal, Depends(require_any_scope("ledger:read", "reports:read"))],
) -> Principal:
    return await _audit(request, principal)


async def audited_follower(
    request: Request,
    principal: Annotated[Principal, Depends(require_any_scope("ledger:read", "changes:read"))],
) -> Principal:
    return await _audit(request, principal)


# ledger:read, audited by the endpoint itself (one entry per enterprise asked).
ManyReader = Annotated[Principal, Depends(require_scope("ledger:read"))]
# ledger:read — the enterprise data itself.
Reader = Annotated[Principal, Depends(audited_reader)]
# ledger:read or reports:read — audit, unmatched records, data quality.
Reporter = Annotated[Principal, Depends(audited_reporter)]
# ledger:read or changes:read — the change stream and the snapshot (downstream systems).
Follower = Annotated[Principal, Depends(audited_follower)]
