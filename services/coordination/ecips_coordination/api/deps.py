"""Dependencies the routers share: settings, the business environment, parsing."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from ecips_common.app import service_state
from ecips_common.problems import FieldError, InvalidInput
from ecips_coordination.service import Environment, IngestForwarder
from ecips_coordination.settings import CoordinationSettings


def _settings(request: Request) -> CoordinationSettings:
    settings = service_state(request).settings
    assert isinstance(settings, CoordinationSettings)
    return settings


def _env(request: Request) -> Environment:
    env = service_state(request).extras["env"]
    assert isinstance(env, Environment)
    return env


def _forwarder(request: Request) -> IngestForwarder:
    forwarder = service_state(request).extras["forwarder"]
    assert isinstance(forwarder, IngestForwarder)
    return forwarder


Settings = Annotated[CoordinationSettings, Depends(_settings)]
Env = Annotated[Environment, Depends(_env)]
Forwarder = Annotated[IngestForwarder, Depends(_forwarder)]


def parse_uuid(value: str, field: str) -> uuid.UUID:
    # Parsed by hand so a malformed id is reported under the field's own name.
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(
            [FieldError(field=field, code="invalid_uuid", message="not a UUID")]
        ) from None


def parse_limit(raw: str | None, maximum: int, errors: list[FieldError]) -> int:
    if raw is None:
        return 100 if maximum >= 100 else maximum
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        errors.append(
            FieldError(
                field="limit", code="out_of_range", message=f"an integer from 1 to {maximum}"
            )
        )
        return 0
    return int(raw)


def parse_cursor(raw: str | None, errors: list[FieldError]) -> int:
    if raw is None:
        return 0
    if not raw.isdigit() or len(raw) > 18:
        errors.append(
            FieldError(
                field="after",
                code="invalid_cursor",
                message="pass the next_cursor of a previous page",
            )
        )
        return 0
    return int(raw)


def bearer_token(request: Request) -> str | None:
    """The caller's own token, passed on when it asks us to act in its name."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
