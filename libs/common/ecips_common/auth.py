"""Bearer tokens: EdDSA (Ed25519) JWTs carrying a department and scopes.

Tokens are issued by the operator's CLI with the private key; services only
ever hold the public key.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ecips_common.problems import ProblemError

SCOPES: dict[str, str] = {
    "records:write": "Submit and revoke the department's own records",
    "ledger:read": "Read full, non-public enterprise data (every read audited)",
    "tasks:handle": "Handle the department's own coordination tasks",
    "rules:admin": "Edit the joint punishment catalogue",
    "reports:read": "Read compliance and coordination reports",
    "changes:read": "Follow a service's change feed (service-to-service)",
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a department system or one of the suite's services."""

    subject: str
    department: str
    scopes: frozenset[str]
    token_id: str

    def has(self, scope: str) -> bool:
        return scope in self.scopes


_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


class TokenVerifier:
    """Verifies tokens against one or more public keys: during a key rotation
    the PEM holds the new key and the old one, so both generations of tokens
    pass until the old ones expire."""

    def __init__(self, public_keys_pem: str, *, issuer: str, audience: str) -> None:
        blocks = _PEM_BLOCK.findall(public_keys_pem)
        if not blocks:
            raise ValueError("no PEM public key found")
        self._keys: list[Ed25519PublicKey] = []
        for block in blocks:
            key = serialization.load_pem_public_key(block.encode())
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("JWT public keys must be Ed25519 keys")
            self._keys.append(key)
        self._issuer = issuer
        self._audience = audience

    def verify(self, token: str) -> Principal:
        claims: dict[str, Any] | None = None
        for index, key in enumerate(self._keys):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=["EdDSA"],
                    issuer=self._issuer,
                    audience=self._audience,
                    options={"require": ["exp", "iat", "sub", "dept", "scope"]},
                )
                break
            except jwt.InvalidSignatureError as exc:
                if index == len(self._keys) - 1:
                    raise _unauthorized("invalid_token", f"The token is not valid: {exc}.") from exc
            except jwt.ExpiredSignatureError as exc:
                raise _unauthorized("token_expired", "The token has expired.") from exc
            except jwt.PyJWTError as exc:
                raise _unauthorized("invalid_token", f"The token is not valid: {exc}.") from exc
        assert claims is not None
        scope = claims["scope"]
        if not isinstance(scope, str) or not isinstance(claims["dept"], str):
            raise _unauthorized("invalid_token", "The token's claims are malformed.")
        return Principal(
            subject=str(claims["sub"]),
            department=claims["dept"],
            scopes=frozenset(scope.split()),
            token_id=str(claims.get("jti", "")),
        )


def _unauthorized(code: str, detail: str) -> ProblemError:
    return ProblemError(
        401, code, "Authentication required", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def generate_signing_key() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def issue_token(
    private_key_pem: bytes,
    *,
    department: str,
    scopes: Iterable[str],
    subject: str | None = None,
    ttl_seconds: int = 30 * 24 * 3600,
    issuer: str = "ecips",
    audience: str = "ecips",
    now: float | None = None,
) -> str:
    scope_list = sorted(set(scopes))
    unknown = [s for s in scope_list if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}")
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key must be an Ed25519 key")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject or f"department:{department}",
        "dept": department,
        "scope": " ".join(scope_list),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="EdDSA")


_bearer = HTTPBearer(auto_error=False, description="A department token from `ecips token issue`")


def get_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise ProblemError(
            503,
            "auth_not_configured",
            "Authentication is not configured",
            "The service has no JWT public key.",
        )
    return verifier


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise _unauthorized("missing_token", "A bearer token is required.")
    principal = get_verifier(request).verify(credentials.credentials)
    request.state.principal = principal
    return principal


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only tokens carrying ``scope``."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.has(scope):
            raise ProblemError(
                403,
                "insufficient_scope",
                "Forbidden",
                f"This action needs the '{scope}' scope.",
            )
        return principal

    return dependency


def require_any_scope(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not any(principal.has(s) for s in scopes):
            raise ProblemError(
                403,
                "insufficient_scope",
                "Forbidden",
                f"This action needs one of the scopes: {', '.join(scopes)}.",
            )
        return principal

    return dependency
