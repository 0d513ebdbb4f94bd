"""Every endpoint of every service, read from its own OpenAPI document, against
every kind of caller: no token, a malformed token, a token signed with another
key, an expired token, a token without any scope, and a token with every scope.
Protected endpoints must answer exactly 401/401/401/401/403 and then let the
caller through; public endpoints never ask for a token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ecips_common.auth import SCOPES, generate_signing_key, issue_token
from tests.system import SERVICES, RunningSystem, new_uscc

METHODS = ("get", "post", "put", "patch", "delete")
# Protected endpoints that any valid token may call, whatever its scopes (a token
# without scopes gets its answer there, not 403).
ANY_SCOPE = frozenset({("ingest", "get", "/v1/me")})


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    protected: bool

    def __str__(self) -> str:
        return f"{self.service} {self.method.upper()} {self.path}"


def concrete_path(path: str) -> str:
    """Fill path parameters with well-formed values of the right kind."""
    uscc = new_uscc()
    parts = []
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if name == "uscc":
                parts.append(uscc)
            elif name.endswith("_id") or name == "id":
                parts.append(str(uuid.uuid4()))
            else:
                parts.append("registration")
        else:
            parts.append(part)
    return "/".join(parts)


def operations(system: RunningSystem) -> list[Operation]:
    found = []
    with httpx.Client(timeout=10) as http:
        for service in SERVICES:
            spec = http.get(f"{system.url(service)}/openapi.json").json()
            for path, item in spec["paths"].items():
                for method in METHODS:
                    if method in item:
                        protected = bool(item[method].get("security"))
                        found.append(Operation(service, method, path, protected))
    return found


def private_key(system: RunningSystem) -> bytes:
    return (system.data_dir / "keys" / "signing-key.pem").read_bytes()


def callers(system: RunningSystem) -> dict[str, dict[str, str]]:
    key = private_key(system)
    stranger, _ = generate_signing_key()

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return {
        "none": {},
        "malformed": bearer("not-a-jwt"),
        "foreign_key": bearer(issue_token(stranger, department="CQ-SAMR", scopes=SCOPES)),
        "expired": bearer(
            issue_token(key, department="CQ-SAMR", scopes=SCOPES, ttl_seconds=60, now=1_000_000)
        ),
        "no_scope": bearer(issue_token(key, department="CQ-SAMR", scopes=[])),
        "all_scopes": bearer(issue_token(key, department="CQ-SAMR", scopes=SCOPES)),
    }


def call(
    http: httpx.Client, system: RunningSystem, op: Operation, headers: dict[str, str]
) -> httpx.Response:
    url = f"{system.url(op.service)}{concrete_path(op.path)}"
    body: Any = {} if op.method in ("post", "put", "patch") else None
    # Streams would stay open; ask them to end once caught up.
    params = {"follow": "false"} if op.path.endswith("/stream") else None
    return http.request(op.method.upper(), url, json=body, headers=headers, params=params)


def test_every_endpoint_against_every_kind_of_caller(system: RunningSystem) -> None:
    ops = operations(system)
    assert len([o for o in ops if o.protected]) >= 8, "the protected surface vanished"
    tokens = callers(system)
    expected_for_protected = {
        "none": (401, "missing_token"),
        "malformed": (401, "invalid_token"),
        "foreign_key": (401, "invalid_token"),
        "expired": (401, "token_expired"),
        "no_scope": (403, "insufficient_scope"),
    }
    failures: list[str] = []
    with httpx.Client(timeout=10) as http:
        for op in ops:
            if op.protected:
                for caller, (status, code) in expected_for_protected.items():
                    if caller == "no_scope" and (op.service, op.method, op.path) in ANY_SCOPE:
                        status, code = 200, None
                    response = call(http, system, op, tokens[caller])
                    got = response.json().get("code") if response.content else None
                    if response.status_code != status or got != code:
                        failures.append(f"{op} as {caller}: {response.status_code} {got}")
                    elif status == 401 and "Bearer" not in response.headers.get(
                        "www-authenticate", ""
                    ):
                        failures.append(f"{op} as {caller}: 401 without WWW-Authenticate")
                allowed = call(http, system, op, tokens["all_scopes"])
                if allowed.status_code == 401 or (
                    allowed.status_code == 403
                    and allowed.json().get("code") == "insufficient_scope"
                ):
                    failures.append(f"{op} with every scope: {allowed.status_code}")
            else:
                response = call(http, system, op, {})
                if response.status_code in (401, 403):
                    failures.append(f"public {op}: {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", SERVICES)
def test_no_endpoint_answers_500_to_the_matrix(system: RunningSystem, service: str) -> None:
    """The callers above never make a service fail."""
    tokens = callers(system)
    with httpx.Client(timeout=10) as http:
        for op in (o for o in operations(system) if o.service == service):
            for headers in tokens.values():
                response = call(http, system, op, headers)
                assert response.status_code < 500, (
                    f"{op}: {response.status_code} {response.text[:300]}"
                )
