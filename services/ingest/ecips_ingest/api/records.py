from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from ecips_common.app import UoW, service_state
from ecips_common.auth import Principal, require_scope
from ecips_common.problems import PROBLEM_RESPONSES
from ecips_ingest.catalogue import Catalogue
from ecips_ingest.schemas import RecordOut, RecordReceipt, RecordSubmission, RevocationRequest
from ecips_ingest.service import RecordService

router = APIRouter(prefix="/v1/records", tags=["records"], responses=PROBLEM_RESPONSES)

Writer = Annotated[Principal, Depends(require_scope("records:write"))]


def catalogue(request: Request) -> Catalogue:
    loaded: Catalogue = service_state(request).extras["catalogue"]
    return loaded


CatalogueDep = Annotated[Catalogue, Depends(catalogue)]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RecordReceipt,
    summary="Submit one record",
    description=(
        "202 for a new record or a new revision (changed content under the same `source_id`); "
        "200 with the same `record_id` and revision when the same content is submitted again."
    ),
    responses={200: {"model": RecordReceipt, "description": "Already accepted (idempotent)"}},
)
async def submit_record(
    submission: RecordSubmission,
    principal: Writer,
    uow: UoW,
    cat: CatalogueDep,
    response: Response,
) -> RecordReceipt:
    outcome = await RecordService(uow, cat).submit(principal, submission)
    if not outcome.created:
        response.status_code = status.HTTP_200_OK
    return outcome.receipt


@router.post(
    "/{record_id}/revocation", response_model=RecordReceipt, summary="Revoke a record (撤销)"
)
async def revoke_record(
    record_id: uuid.UUID,
    body: RevocationRequest,
    principal: Writer,
    uow: UoW,
    cat: CatalogueDep,
) -> RecordReceipt:
    return await RecordService(uow, cat).revoke(principal, record_id, body.reason)


@router.get("/{record_id}", response_model=RecordOut, summary="One of the department's records")
async def get_record(
    record_id: uuid.UUID,
    principal: Writer,
    uow: UoW,
    cat: CatalogueDep,
) -> RecordOut:
    return await RecordService(uow, cat).describe(principal, record_id)
