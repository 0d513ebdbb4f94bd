from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from ecips_common.app import State
from ecips_common.problems import PROBLEM_RESPONSES, FieldError, InvalidInput
from ecips_ledger.api.access import Follower
from ecips_ledger.feed import (
    NDJSON_MEDIA_TYPE,
    SNAPSHOT_CURSOR_HEADER,
    SNAPSHOT_MEDIA_TYPE,
    SSE_MEDIA_TYPE,
    SnapshotExport,
    SnapshotResponse,
    StreamOptions,
    change_signal,
    change_stream,
    ndjson_event,
    ndjson_heartbeat,
    sse_event,
    sse_heartbeat,
)
from ecips_ledger.settings import LedgerSettings

router = APIRouter(tags=["change feed"], responses=PROBLEM_RESPONSES)


def _settings(state: State) -> LedgerSettings:
    settings = state.settings
    assert isinstance(settings, LedgerSettings)
    return settings


def _resume_point(after: int, last_event_id: str | None) -> int:
    """``Last-Event-ID`` (sent by an EventSource reconnecting) wins over ``after``."""
    if last_event_id is None:
        return after
    value = last_event_id.strip()
    if not value.isdigit():
        raise InvalidInput(
            [
                FieldError(
                    field="Last-Event-ID",
                    code="invalid_cursor",
                    message="the id of the last event received (a sequence number)",
                )
            ]
        )
    return int(value)


@router.get(
    "/v1/changes/stream",
    summary="The change feed, held open",
    description=(
        "Every event after `after` in sequence (commit) order, then each new one as it "
        "commits. NDJSON (`application/x-ndjson`, one CloudEvent per line; idle lines "
        '`{"heartbeat": true, "next_cursor": N}` carry no `specversion`), or server-sent '
        "events when the client accepts `text/event-stream` or asks `format=sse` "
        "(`id` = sequence, `event` = type, `data` = the CloudEvent; comments as heartbeats). "
        "After a disconnect, resume with `after=` the `sequence` of the last event processed "
        "(or the `Last-Event-ID` header): nothing is skipped or repeated. `follow=false` "
        "ends the response once caught up. Needs `ledger:read` or `changes:read`."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {NDJSON_MEDIA_TYPE: {}, SSE_MEDIA_TYPE: {}},
            "description": "The events, as they commit",
        }
    },
)
async def stream_changes(
    request: Request,
    _: Follower,
    state: State,
    after: Annotated[int, Query(ge=0, description="Resume after this sequence")] = 0,
    follow: bool = True,
    format: Annotated[Literal["ndjson", "sse"] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    settings = _settings(state)
    wants_sse = format == "sse" or (
        format is None and SSE_MEDIA_TYPE in request.headers.get("accept", "")
    )
    options = StreamOptions(
        after=_resume_point(after, last_event_id),
        follow=follow,
        batch_size=settings.stream_batch_size,
        poll_interval=settings.stream_poll_interval_seconds,
        heartbeat_interval=settings.stream_heartbeat_seconds,
    )
    body = change_stream(
        state.database,
        change_signal(state),
        service=state.definition.name,
        options=options,
        encode=sse_event if wants_sse else ndjson_event,
        heartbeat=sse_heartbeat if wants_sse else ndjson_heartbeat,
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if wants_sse:

        async def with_retry_hint() -> AsyncIterator[bytes]:
            yield b"retry: 1000\n\n"
            async for chunk in body:
                yield chunk

        return StreamingResponse(with_retry_hint(), media_type=SSE_MEDIA_TYPE, headers=headers)
    return StreamingResponse(body, media_type=NDJSON_MEDIA_TYPE, headers=headers)


@router.get(
    "/v1/snapshot",
    summary="Every enterprise (and optionally every filed record) at one cursor, gzip NDJSON",
    description=(
        "A gzip-compressed NDJSON file. The first line is "
        '`{"snapshot": {"cursor": N, "taken_at", "enterprises", "includes"}}` and the '
        f"`{SNAPSHOT_CURSOR_HEADER}` header carries the same cursor; then one line per "
        'enterprise `{"type": "ecips.enterprise.changed", "subject": USCC, "data": ...}` '
        "(the payload of the event of that name), with `include=records` also one "
        '`{"type": "ecips.record.filed", ...}` line per filed record; the last line is '
        '`{"end": {...}}`. The content is exactly the state after the event with sequence '
        "N: load it, then follow `/v1/changes/stream?after=N` (keep the higher `version` "
        "when one arrives twice). Needs `ledger:read` or `changes:read`."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {SNAPSHOT_MEDIA_TYPE: {}}, "description": "The snapshot"}},
)
async def snapshot(
    _: Follower,
    state: State,
    include: Annotated[Literal["enterprises", "records"], Query()] = "enterprises",
) -> SnapshotResponse:
    export = SnapshotExport(
        state.database,
        include_records=include == "records",
        fetch_size=_settings(state).snapshot_fetch_size,
    )
    await export.open()
    return SnapshotResponse(export)
