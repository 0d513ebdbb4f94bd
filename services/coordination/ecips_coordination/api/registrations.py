"""The double-notification notice to the applicant: public, no token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ecips_common.app import Session
from ecips_common.identifiers import IdentifierError, validate_uscc
from ecips_common.problems import PROBLEM_RESPONSES, FieldError, InvalidInput
from ecips_coordination.api.deps import Env, Settings
from ecips_coordination.notice_page import render_notice
from ecips_coordination.schemas import RegistrationNotice
from ecips_coordination.service import NoticeService

router = APIRouter(prefix="/v1/registrations", tags=["notice"], responses=PROBLEM_RESPONSES)

FORMATS = ("json", "html")


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges.append((media.strip().lower(), quality))
    return ranges


def wants_html(accept: str | None) -> bool:
    """HTML only when the client prefers text/html to JSON (browsers do)."""
    if not accept:
        return False
    best: dict[str, float] = {"html": -1.0, "json": -1.0}
    for media, quality in _media_ranges(accept):
        if media == "text/html":
            best["html"] = max(best["html"], quality)
        elif media in ("application/json", "application/problem+json"):
            best["json"] = max(best["json"], quality)
    return best["html"] > 0 and best["html"] > best["json"]


@router.get(
    "/{uscc}/notice",
    response_model=RegistrationNotice,
    summary="The double-notification notice to the applicant (public)",
    description=(
        "The post-registration approvals the enterprise's registered business scope "
        "needs, the approving departments and the legal basis (双告知 to the applicant). "
        "JSON, or a printable Chinese page with `?format=html` or `Accept: text/html`. "
        "No token; rate limited per client."
    ),
    responses={200: {"content": {"text/html": {}}}},
)
async def registration_notice(
    uscc: str,
    request: Request,
    session: Session,
    env: Env,
    settings: Settings,
    format: Annotated[
        str | None, Query(description="json or html", json_schema_extra={"enum": list(FORMATS)})
    ] = None,
) -> Response:
    errors: list[FieldError] = []
    try:
        uscc = validate_uscc(uscc)
    except IdentifierError as exc:
        errors.append(FieldError(field="uscc", code=exc.code, message=exc.message))
    if format is not None and format not in FORMATS:
        errors.append(FieldError(field="format", code="not_allowed", message="json or html"))
    if errors:
        raise InvalidInput(errors)
    notice = await NoticeService(session, env).notice(uscc)
    headers = {
        "Cache-Control": f"public, max-age={settings.notice_cache_max_age_seconds}",
        "Vary": "Accept",
    }
    as_html = format == "html" or (format is None and wants_html(request.headers.get("accept")))
    if as_html:
        return HTMLResponse(render_notice(notice), headers=headers)
    return JSONResponse(notice.model_dump(mode="json"), headers=headers)
