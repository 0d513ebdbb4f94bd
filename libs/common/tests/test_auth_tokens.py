"""Token verification: signatures, expiry, claims, and key rotation."""

from __future__ import annotations

import pytest

from ecips_common.auth import TokenVerifier, generate_signing_key, issue_token
from ecips_common.problems import ProblemError


def verifier(*public_pems: bytes) -> TokenVerifier:
    return TokenVerifier(b"\n".join(public_pems).decode(), issuer="ecips", audience="ecips")


def test_a_valid_token_names_the_department_and_scopes() -> None:
    private, public = generate_signing_key()
    token = issue_token(private, department="CQ-SAMR", scopes=["records:write", "ledger:read"])
    principal = verifier(public).verify(token)
    assert principal.department == "CQ-SAMR"
    assert principal.scopes == frozenset({"records:write", "ledger:read"})


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (
            lambda p: issue_token(
                p, department="X", scopes=["ledger:read"], ttl_seconds=1, now=1e6
            ),
            "token_expired",
        ),
        (
            lambda p: issue_token(
                generate_signing_key()[0], department="X", scopes=["ledger:read"]
            ),
            "invalid_token",
        ),
        (lambda p: "abc.def.ghi", "invalid_token"),
        (
            lambda p: issue_token(p, department="X", scopes=["ledger:read"], audience="other"),
            "invalid_token",
        ),
    ],
)
def test_bad_tokens_are_401(make: object, code: str) -> None:
    private, public = generate_signing_key()
    with pytest.raises(ProblemError) as caught:
        verifier(public).verify(make(private))  # type: ignore[operator]
    assert caught.value.status == 401
    assert caught.value.code == code


def test_unknown_scopes_are_refused_at_issue() -> None:
    private, _ = generate_signing_key()
    with pytest.raises(ValueError, match="unknown scopes"):
        issue_token(private, department="X", scopes=["root"])


def test_key_rotation_accepts_both_generations() -> None:
    old_private, old_public = generate_signing_key()
    new_private, new_public = generate_signing_key()
    both = verifier(new_public, old_public)
    assert (
        both.verify(issue_token(old_private, department="A", scopes=["ledger:read"])).department
        == "A"
    )
    assert (
        both.verify(issue_token(new_private, department="B", scopes=["ledger:read"])).department
        == "B"
    )
    with pytest.raises(ProblemError):
        verifier(new_public).verify(
            issue_token(old_private, department="A", scopes=["ledger:read"])
        )


def test_forwarded_for_uses_the_address_the_proxy_added() -> None:
    from ecips_common.public_http import client_address

    scope = {
        "type": "http",
        "headers": [(b"x-forwarded-for", b"6.6.6.6, 10.0.0.7")],
        "client": ("10.1.1.1", 1234),
    }
    assert client_address(scope, trust_forwarded_for=True) == "10.0.0.7"
    assert client_address(scope, trust_forwarded_for=False) == "10.1.1.1"
