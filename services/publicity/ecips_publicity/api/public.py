"""The public query API: no token, rate limited, cacheable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ecips_common.app import Session, service_state
from ecips_common.problems import PROBLEM_RESPONSES
from ecips_publicity.catalogue import PublicationCatalogue
from ecips_publicity.schemas import EnterpriseProfile, PublicItemList, SearchResult
from ecips_publicity.service import PublicQueries

router = APIRouter(prefix="/v1", tags=["public query"], responses=PROBLEM_RESPONSES)


def publication_catalogue(request: Request) -> PublicationCatalogue:
    loaded: PublicationCatalogue = service_state(request).extras["catalogue"]
    return loaded


CatalogueDep = Annotated[PublicationCatalogue, Depends(publication_catalogue)]
Page = Annotated[int, Query(ge=1, le=1000, description="1-based page number")]
Limit = Annotated[int, Query(ge=1, le=50, description="items per page")]


@router.get(
    "/search",
    response_model=SearchResult,
    summary="Find enterprises by name, USCC or registration number",
    description=(
        "An exact USCC (any case) or 15-digit registration number finds that enterprise; "
        "otherwise enterprises whose current or former name contains `q`, ranked exact name, "
        "then prefix, then contains, then by similarity. Only registered enterprises."
    ),
)
async def search(
    session: Session,
    cat: CatalogueDep,
    q: Annotated[str | None, Query(description="1 to 100 characters")] = None,
    page: Page = 1,
    limit: Limit = 10,
) -> SearchResult:
    return await PublicQueries(session, cat).search(q, page=page, limit=limit)


@router.get(
    "/enterprises/{uscc}",
    response_model=EnterpriseProfile,
    summary="An enterprise's public profile",
    description="Master data, flags, active joint measures and a count per public section.",
)
async def profile(uscc: str, session: Session, cat: CatalogueDep) -> EnterpriseProfile:
    return await PublicQueries(session, cat).profile(uscc)


@router.get(
    "/enterprises/{uscc}/records",
    response_model=PublicItemList,
    summary="The public items of one section",
    description=(
        "Only records whose category is public, that are not revoked and whose publicity "
        "period has not ended; personal data masked."
    ),
)
async def records(
    uscc: str,
    session: Session,
    cat: CatalogueDep,
    category: Annotated[str | None, Query(description="a category key")] = None,
    page: Page = 1,
    limit: Limit = 20,
) -> PublicItemList:
    return await PublicQueries(session, cat).records(uscc, category, page=page, limit=limit)
