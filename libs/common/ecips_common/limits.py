"""The largest request body a service reads: refused with 413 before a byte
of it is read when declared too large, or cut while it streams in."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecips_common.problems import ProblemError, problem_response

PAYLOAD_TOO_LARGE = "Payload too large"


def _detail(limit: int) -> str:
    return f"The request body is larger than the limit of {limit:,} bytes."


class BodyTooLarge(HTTPException):
    """An HTTP exception, so that FastAPI's body parsing passes it on as it is
    (anything else it reports as a malformed body); the problem handlers
    answer it as ``payload_too_large``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _detail(limit))


class RequestBodyLimitMiddleware:
    """Plain ASGI. A body cut mid-stream raises :class:`BodyTooLarge` where the
    endpoint reads it, so the problem handlers answer it like any other."""

    def __init__(self, app: ASGIApp, *, max_bytes: int | None) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_bytes
        if scope["type"] != "http" or limit is None:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                refused = ProblemError(413, "payload_too_large", PAYLOAD_TOO_LARGE, _detail(limit))
                await problem_response(refused)(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)
