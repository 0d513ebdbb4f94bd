"""RFC 9457 problem details, and the handlers that turn every error into one."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

logger = logging.getLogger("ecips.problems")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    field: str
    code: str
    message: str


class Problem(BaseModel):
    """The body of every error response (for OpenAPI)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise from anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers or {}


class NotFound(ProblemError):
    def __init__(self, what: str, detail: str | None = None) -> None:
        super().__init__(
            404, f"{what}_not_found", f"{what.replace('_', ' ').capitalize()} not found", detail
        )


class InvalidInput(ProblemError):
    def __init__(self, errors: Sequence[FieldError], detail: str | None = None) -> None:
        super().__init__(
            422,
            "validation_failed",
            "The request is not valid",
            detail or "; ".join(f"{e.field}: {e.message}" for e in errors),
            errors=errors,
        )


class ProblemJSONResponse(JSONResponse):
    """A problem document may quote the offending input back: half of a UTF-16
    surrogate pair ("\\ud800" in the request's JSON) is shown as U+FFFD, since
    no UTF-8 response can carry it."""

    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return _UNPAIRED_SURROGATES.sub("\ufffd", text).encode("utf-8")


_UNPAIRED_SURROGATES = re.compile(r"[\ud800-\udfff]")


def problem_response(problem: ProblemError) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://ecips.dev/problems/{problem.code}",
        "title": problem.title,
        "status": problem.status,
        "code": problem.code,
    }
    if problem.detail is not None:
        body["detail"] = problem.detail
    if problem.errors is not None:
        body["errors"] = [e.model_dump() for e in problem.errors]
    return ProblemJSONResponse(body, status_code=problem.status, headers=problem.headers)


def field_path(loc: Sequence[str | int]) -> str:
    """Turn pydantic's location into the dotted field path clients see.

    The first element names where the value came from (body, query, path);
    clients care about the field, so it is dropped.
    """
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


_PYDANTIC_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "json_invalid": "invalid_json",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "date_from_datetime_parsing": "invalid_date",
    "date_parsing": "invalid_date",
    "date_type": "invalid_date",
    "int_parsing": "not_an_integer",
    "float_parsing": "not_a_number",
    "decimal_parsing": "not_a_number",
    "literal_error": "not_allowed",
    "enum": "not_allowed",
    "string_type": "not_a_string",
    "string_unicode": "unpaired_surrogate",
    "dict_type": "not_an_object",
    "model_attributes_type": "not_an_object",
    "list_type": "not_a_list",
}


def validation_problem(exc: RequestValidationError) -> ProblemError:
    errors = []
    for err in exc.errors():
        code = _PYDANTIC_CODES.get(err["type"], err["type"])
        errors.append(FieldError(field=field_path(err["loc"]), code=code, message=err["msg"]))
    return InvalidInput(errors)


# SQLSTATEs of text PostgreSQL cannot store: NUL in text (character_not_in_repertoire)
# and \u0000 in JSONB (untranslatable_character).
_UNSTORABLE_TEXT_STATES = frozenset({"22021", "22P05"})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps (``orig`` of a driver error, the cause chain)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [
            current.__cause__,
            current.__context__,
            orig if isinstance(orig, BaseException) else None,
        ]


def unstorable_text_problem(exc: BaseException) -> ProblemError | None:
    """A 422 when a request carried text no database can hold (a NUL character or half
    of a surrogate pair) past validation to the database; None for anything else."""
    for cause in _causes(exc):
        surrogate = isinstance(cause, UnicodeEncodeError) and "surrogate" in cause.reason
        if surrogate or getattr(cause, "sqlstate", None) in _UNSTORABLE_TEXT_STATES:
            return ProblemError(
                422,
                "invalid_text",
                "The request is not valid",
                "A text contains a NUL character or half of a UTF-16 surrogate pair "
                "(such as \\u0000 or \\ud800), which cannot be stored; nothing was saved.",
            )
    return None


def is_infrastructure_outage(exc: BaseException) -> bool:
    """The database (or the network to it) is down: a 503, not a bug."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        OSError
        | OperationalError
        | InterfaceError
        | asyncpg.PostgresConnectionError
        | asyncpg.CannotConnectNowError
        | asyncpg.ConnectionDoesNotExistError,
    )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_problem(exc))

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        titles = {
            400: "Bad request",
            404: "Not found",
            405: "Method not allowed",
            413: "Payload too large",
        }
        # FastAPI answers 400 when it cannot parse a body at all (nested too deeply,
        # a number too long to read, a broken form).
        codes = {
            400: "malformed_body",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }
        return problem_response(
            ProblemError(
                exc.status_code,
                codes.get(exc.status_code, f"http_{exc.status_code}"),
                titles.get(exc.status_code, "HTTP error"),
                str(exc.detail) if exc.detail else None,
                headers=dict(exc.headers or {}),
            )
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        unstorable = unstorable_text_problem(exc)
        if unstorable is not None:
            return problem_response(unstorable)
        if is_infrastructure_outage(exc):
            logger.warning(
                "database unavailable on %s %s: %r", request.method, request.url.path, exc
            )
            return problem_response(
                ProblemError(
                    503,
                    "service_unavailable",
                    "Service unavailable",
                    "The database is unavailable; nothing was saved. Retry shortly.",
                    headers={"Retry-After": "2"},
                )
            )
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            ProblemError(500, "internal_error", "Internal error", "The error was logged.")
        )

    async def on_disconnect(request: Request, _: Exception) -> JSONResponse:
        # The client went away while sending its body (an abandoned upload): nothing
        # was saved, there is no one to answer, and it is not the service's fault.
        logger.info("client disconnected during %s %s", request.method, request.url.path)
        return problem_response(
            ProblemError(
                400,
                "client_disconnected",
                "Bad request",
                "The request ended before its body was complete; nothing was saved.",
            )
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    # Registered by class, database and encoding errors are answered where they are
    # raised, so the connection stays open for the client's next request.
    app.add_exception_handler(DBAPIError, on_unexpected)
    app.add_exception_handler(UnicodeEncodeError, on_unexpected)
    app.add_exception_handler(Exception, on_unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}
    for status in (400, 401, 403, 404, 409, 422, 429, 503)
}
