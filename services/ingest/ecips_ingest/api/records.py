from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import Message

from ecips_common.app import UoW, service_state
from ecips_common.auth import Principal
from ecips_common.problems import (
    PROBLEM_RESPONSES,
    Problem,
    ProblemError,
    validation_problem,
)
from ecips_ingest.api.deps import Context, Writer, context
from ecips_ingest.schemas import RecordOut, RecordReceipt, RecordSubmission, RevocationRequest
from ecips_ingest.service import RecordService, count_rejection, problem_errors
from ecips_ingest.validation import JsonRefused, parse_json_strictly

logger = logging.getLogger("ecips.ingest.api")

# Rejections that are about the record (counted for the compliance report);
# a bad or missing token is not.
_COUNTED_CODES = frozenset({"validation_failed", "name_mismatch", "category_not_permitted"})


class RejectionCountingRoute(APIRoute):
    """Counts every rejected submission for the compliance report, including those
    FastAPI rejects before the endpoint runs (a bad USCC, a missing field)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def counted(request: Request) -> Response:
            request = await _read_within_limit(request)
            try:
                await _check_json(request)
                return await handler(request)
            except (RequestValidationError, ProblemError) as exc:
                await _count(request, exc)
                raise

        return counted


async def _check_json(request: Request) -> None:
    """Refuse JSON that Python reads but a record may not be written in (duplicate
    keys, NaN, nesting too deep to parse) before FastAPI reads it leniently."""
    if "json" not in request.headers.get("content-type", ""):
        return
    try:
        parse_json_strictly(await request.body())
    except json.JSONDecodeError:
        return  # FastAPI answers syntax errors itself
    except JsonRefused as exc:
        loc = ("body",) if exc.field == "body" else ("body", exc.field)
        raise RequestValidationError(
            [{"type": exc.code, "loc": loc, "msg": exc.message, "input": None}]
        ) from None


async def _read_within_limit(request: Request) -> Request:
    """One record is small: its body is read only up to the limit, however it is sent
    (Content-Length or chunked), and a bigger one is refused (413) there, unparsed.
    Returns the request with the body read, for the endpoint to parse."""
    limit = context(request).settings.max_record_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _record_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _record_too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    upstream = request.receive
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await upstream()  # http.disconnect, when the client goes
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, replay)


def _record_too_large(limit: int) -> ProblemError:
    return ProblemError(
        413,
        "payload_too_large",
        "Payload too large",
        f"A record may be at most {limit} bytes; send many records as a batch.",
    )


async def _count(request: Request, exc: RequestValidationError | ProblemError) -> None:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return
    problem = validation_problem(exc) if isinstance(exc, RequestValidationError) else exc
    if problem.code not in _COUNTED_CODES and problem.status != 409:
        return
    try:
        raw = json.loads(await request.body())
    except (ValueError, RecursionError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    try:
        ctx = context(request)
        async with service_state(request).database.unit_of_work() as uow:
            await count_rejection(
                uow, ctx.catalogue, principal.department, raw, problem_errors(problem), ctx.clock()
            )
    except Exception:
        # The answer to the department matters more than the statistic.
        logger.exception("could not count a rejected submission")


submit_router = APIRouter(
    prefix="/v1/records",
    tags=["records"],
    responses=PROBLEM_RESPONSES,
    route_class=RejectionCountingRoute,
)
router = APIRouter(prefix="/v1/records", tags=["records"], responses=PROBLEM_RESPONSES)


@submit_router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RecordReceipt,
    summary="Submit one record",
    description=(
        "202 for a new record or a new revision (changed content under the same `source_id`); "
        "200 with the same `record_id` and revision when the same content is submitted again. "
        "When the ledger knows the USCC, `enterprise_name` must be its name (422 "
        "`name_mismatch`) or a former name (accepted with a `former_name` warning). "
        "A record naming only an old `registration_number` is filed under the USCC the "
        "ledger maps it to, when it knows one."
    ),
    responses={
        200: {"model": RecordReceipt, "description": "Already accepted (idempotent)"},
        413: {
            "model": Problem,
            "content": {"application/problem+json": {}},
            "description": "The record is larger than the limit",
        },
    },
)
async def submit_record(
    submission: RecordSubmission,
    principal: Writer,
    uow: UoW,
    ctx: Context,
    response: Response,
) -> RecordReceipt:
    service = RecordService(uow, ctx.catalogue, ctx.clock, ctx.ledger)
    receipt, created = await service.submit(principal, submission)
    if not created:
        response.status_code = status.HTTP_200_OK
    return receipt


@router.post(
    "/{record_id}/revocation", response_model=RecordReceipt, summary="Revoke a record (撤销)"
)
async def revoke_record(
    record_id: uuid.UUID,
    body: RevocationRequest,
    principal: Writer,
    uow: UoW,
    ctx: Context,
) -> RecordReceipt:
    return await RecordService(uow, ctx.catalogue, ctx.clock).revoke(
        principal, record_id, body.reason
    )


@router.get("/{record_id}", response_model=RecordOut, summary="One of the department's records")
async def get_record(
    record_id: uuid.UUID,
    principal: Writer,
    uow: UoW,
    ctx: Context,
) -> RecordOut:
    return await RecordService(uow, ctx.catalogue, ctx.clock).describe(principal, record_id)
