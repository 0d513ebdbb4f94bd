"""Conditional GETs and cache headers for the public service.

Successful GETs get ``Cache-Control`` and a weak ``ETag`` (a hash of the
body; weak because gzip may change the bytes, not the meaning). A request
whose ``If-None-Match`` names the current tag gets ``304 Not Modified`` with
no body. The API may be cached for a short while; the portal page and its
files are revalidated on every load, so a new release shows at once.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ecips_common.public_http import UNLIMITED_PATHS

# Larger bodies stream through untouched (no ETag) rather than be held in memory.
MAX_BUFFERED_BYTES = 2 * 1024 * 1024


def weak_etag(body: bytes) -> str:
    return f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): W/"x" and "x" are the same tag."""
    if if_none_match.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(candidate) == wanted for candidate in if_none_match.split(","))


class ConditionalGetMiddleware:
    def __init__(self, app: ASGIApp, *, api_max_age: int, api_prefix: str = "/v1/") -> None:
        self.app = app
        self.api_cache = f"public, max-age={api_max_age}"
        self.page_cache = "public, no-cache"
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or scope["path"] in UNLIMITED_PATHS
        ):
            await self.app(scope, receive, send)
            return
        if_none_match = Headers(scope=scope).get("if-none-match")
        cache_control = (
            self.api_cache if scope["path"].startswith(self.api_prefix) else self.page_cache
        )
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        passing_through = False

        async def send_conditionally(message: Message) -> None:
            nonlocal start, size, passing_through
            if passing_through:
                await send(message)
                return
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    passing_through = True
                    await send(message)
                    return
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = cache_control
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body = message.get("body", b"")
            chunks.append(body)
            size += len(body)
            if size > MAX_BUFFERED_BYTES:
                passing_through = True
                await send(start)
                await send(
                    {"type": "http.response.body", "body": b"".join(chunks), "more_body": True}
                )
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if message.get("more_body", False):
                return
            await _finish(start, b"".join(chunks))

        async def _finish(start_message: Message, body: bytes) -> None:
            headers = MutableHeaders(scope=start_message)
            etag = headers.get("etag")
            if scope["method"] == "HEAD":
                # No body to hash: a HEAD answer carries the GET's headers only.
                await send(start_message)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            if etag is None:
                etag = weak_etag(body)
                headers["ETag"] = etag
            if if_none_match is not None and etag_matches(if_none_match, etag):
                not_modified = MutableHeaders()
                for name in ("etag", "cache-control", "vary", "last-modified"):
                    if name in headers:
                        not_modified[name] = headers[name]
                await send(
                    {"type": "http.response.start", "status": 304, "headers": not_modified.raw}
                )
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(start_message)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, send_conditionally)
