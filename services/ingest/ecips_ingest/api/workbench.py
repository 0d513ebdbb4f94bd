"""The department workbench: a Chinese web page (plain HTML, CSS and JS in
``static/workbench/``) for staff whose systems cannot call the API themselves.

It calls ingest on its own origin and coordination on the URL that
``/workbench/config.json`` gives it. Everything it does goes through the APIs with
the department's bearer token, which the page keeps in the browser session only."""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from ecips_common.problems import NotFound
from ecips_ingest.api.deps import Context
from ecips_ingest.settings import IngestSettings

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static" / "workbench"

_MEDIA_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only the files shipped beside the page are served; a name is never a path.
_FILES: Final = {
    path.name: _MEDIA_TYPES[path.suffix]
    for path in STATIC_DIR.iterdir()
    if path.is_file() and path.suffix in _MEDIA_TYPES and path.name != "index.html"
}
_COMMON_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time: a new release is picked up at once (ETag makes it cheap).
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["workbench"], include_in_schema=False)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_headers(settings: IngestSettings) -> dict[str, str]:
    """The page runs only its own scripts and styles and talks only to ingest and
    coordination: injected markup could neither run nor send data anywhere else."""
    policy = "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "font-src 'self'",
            f"connect-src 'self' {_origin(settings.workbench_coordination_url)}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )
    return {**_COMMON_HEADERS, "Content-Security-Policy": policy, "X-Frame-Options": "DENY"}


@router.get("/workbench")
async def workbench_redirect() -> RedirectResponse:
    # The page's relative links need the trailing slash.
    return RedirectResponse("/workbench/", status_code=308)


@router.get("/workbench/")
async def workbench_page(ctx: Context) -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type=_MEDIA_TYPES[".html"],
        headers=page_headers(ctx.settings),
    )


@router.get("/workbench/config.json")
async def workbench_config(ctx: Context) -> JSONResponse:
    return JSONResponse(
        {"ingest_url": "", "coordination_url": ctx.settings.workbench_coordination_url.rstrip("/")},
        headers={**_COMMON_HEADERS, "Cache-Control": "no-store"},
    )


@router.get("/workbench/static/{name}")
async def workbench_static(name: str) -> FileResponse:
    media_type = _FILES.get(name)
    if media_type is None:
        raise NotFound("file", f"No workbench file {name!r}.")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_COMMON_HEADERS)
