"""The public query API: no token, rate limited, cacheable."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from ecips_common.app import Session, service_state
from ecips_common.problems import PROBLEM_RESPONSES
from ecips_publicity.catalogue import PublicationCatalogue
from ecips_publicity.directory import DirectoryHolder
from ecips_publicity.schemas import (
    CatalogueOut,
    EnterpriseProfile,
    ListEntries,
    PublicItemList,
    SearchResult,
    Statistics,
)
from ecips_publicity.service import (
    MAX_PAGE_SIZE,
    PublicQueries,
    SearchRequest,
    Today,
)

router = APIRouter(prefix="/v1", tags=["public query"], responses=PROBLEM_RESPONSES)

STATISTICS_TTL_SECONDS = 60.0


def queries(request: Request, session: Session) -> PublicQueries:
    extras = service_state(request).extras
    catalogue: PublicationCatalogue = extras["catalogue"]
    today: Today = extras["today"]
    directory: DirectoryHolder = extras["directory"]
    return PublicQueries(
        session,
        catalogue,
        today=today(),
        directory=directory.current,
        limits=extras["search_limits"],
    )


Queries = Annotated[PublicQueries, Depends(queries)]
Page = Annotated[int, Query(ge=1, le=1000, description="1-based page number")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]
Uscc = Annotated[
    str,
    Path(
        description="统一社会信用代码 (18 characters)",
        openapi_examples={"enterprise": {"value": "91500103MA5U8DPE6W"}},
    ),
]


@router.get(
    "/search",
    response_model=SearchResult,
    summary="Find enterprises by name, former name, USCC, registration number or representative",
    description=(
        "An exact USCC (any case) or 15-digit registration number finds that enterprise. "
        "Otherwise enterprises whose current or former name contains `q` (2 to 100 "
        "characters): up to 1,000 matches (a setting) are ranked exact name, prefix, then "
        "the rest by "
        "trigram similarity, current names before former ones; a broader fragment shows "
        "exact, then prefix matches in name order, then others, and `total_exact` is false "
        "(page at most 200 deep). Filters narrow any search; without `q`, "
        "`legal_representative` or `listed` alone lists the matching enterprises by name. "
        "Each hit says which name matched (`matched_name`, `match`)."
    ),
)
async def search(
    q: Annotated[
        str | None,
        Query(
            description="part of the name, a USCC or a registration number",
            openapi_examples={
                "part of a name": {"value": "渝信建材"},
                "USCC": {"value": "91500103MA5U8DPE6W"},
            },
        ),
    ] = None,
    legal_representative: Annotated[
        str | None, Query(description="the legal representative's full name (exact)")
    ] = None,
    status: Annotated[
        list[str] | None,
        Query(description="registration status codes: active, revoked, deregistered, moved_out"),
    ] = None,
    district: Annotated[
        str | None,
        Query(description="6-digit division code from the USCC (see /v1/catalogue)"),
    ] = None,
    listed: Annotated[
        list[str] | None,
        Query(description="only enterprises on a list: abnormal_operation, serious_illegal"),
    ] = None,
    page: Page = 1,
    limit: Limit = 10,
    *,
    service: Queries,
) -> SearchResult:
    request = SearchRequest(
        q=q,
        legal_representative=legal_representative,
        statuses=status or (),
        district=district,
        listed=listed or (),
    )
    return await service.search(request, page=page, limit=limit)


@router.get(
    "/enterprises/{uscc}",
    response_model=EnterpriseProfile,
    summary="An enterprise's public profile",
    description=(
        "Licence data, list flags, joint punishment measures in force, a count per public "
        "section, and the tabs of the enterprise page with their counts."
    ),
)
async def profile(uscc: Uscc, service: Queries) -> EnterpriseProfile:
    return await service.profile(uscc)


@router.get(
    "/enterprises/{uscc}/records",
    response_model=PublicItemList,
    summary="The published items of one section",
    description=(
        "Only records whose category is public, that are not revoked, that the catalogue "
        "publishes and whose publicity period has not ended (nor been ended by a credit "
        "repair); personal data masked. Newest first, then by record id."
    ),
)
async def records(
    uscc: Uscc,
    service: Queries,
    category: Annotated[
        str | None,
        Query(
            description="a category key (see /v1/catalogue)",
            openapi_examples={"penalties": {"value": "administrative_penalty"}},
        ),
    ] = None,
    page: Page = 1,
    limit: Limit = 20,
) -> PublicItemList:
    return await service.records(uscc, category, page=page, limit=limit)


@router.get(
    "/enterprises/{uscc}/lists/{key}",
    response_model=ListEntries,
    summary="A list (经营异常名录 or 严重违法失信名单): each listing with its removal",
    description="Newest listing first; a removal whose listing is not public stands alone.",
)
async def list_entries(
    uscc: Uscc,
    key: Annotated[
        str,
        Path(
            description="abnormal_operation or serious_illegal",
            openapi_examples={"abnormal": {"value": "abnormal_operation"}},
        ),
    ],
    service: Queries,
    page: Page = 1,
    limit: Limit = 20,
) -> ListEntries:
    return await service.list_entries(uscc, key, page=page, limit=limit)


@router.get(
    "/catalogue",
    response_model=CatalogueOut,
    summary="What the portal needs to build its forms and tabs",
    description="Statuses, districts, lists, sections, tabs and the search limits.",
)
async def catalogue(service: Queries) -> CatalogueOut:
    return service.catalogue()


@router.get(
    "/statistics",
    response_model=Statistics,
    summary="How much is published",
    description="Registered and listed enterprises, published items per category (cached 60 s).",
)
async def statistics(request: Request, service: Queries) -> Statistics:
    extras = service_state(request).extras
    cached = extras.get("statistics")
    now = time.monotonic()
    if cached is not None and now - cached[0] < STATISTICS_TTL_SECONDS:
        result: Statistics = cached[1]
        return result
    fresh = await service.statistics()
    extras["statistics"] = (now, fresh)
    return fresh
