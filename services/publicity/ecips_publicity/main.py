"""The publicity service: the public read model, the public query API and portal."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.middleware.gzip import GZipMiddleware

from ecips_common.app import ServiceDefinition, ServiceState, create_service_app
from ecips_common.consumer import Upstream
from ecips_common.public_http import install_public_http
from ecips_publicity.api import portal, public
from ecips_publicity.catalogue import load_catalogue
from ecips_publicity.conditional import ConditionalGetMiddleware
from ecips_publicity.consumers import make_handlers
from ecips_publicity.directory import DirectoryHolder
from ecips_publicity.models import OUTBOX, Base
from ecips_publicity.service import SearchLimitsConfig, Today, Withdrawals, today_in_china
from ecips_publicity.settings import PublicitySettings

logger = logging.getLogger("ecips.publicity")


def upstreams(settings: PublicitySettings) -> list[Upstream]:
    return [
        Upstream("ledger", settings.ledger_topic, f"{settings.ledger_url}/v1/changes"),
        Upstream("rules", settings.punishments_topic, f"{settings.rules_url}/v1/changes"),
    ]


async def withdrawal_job(state: ServiceState) -> None:
    """Reconcile once at start (the catalogue may have changed), then mark
    what has become due, every interval, with no event needed."""
    withdrawals: Withdrawals = state.extras["withdrawals"]
    interval = state.extras["withdrawal_interval"]
    first = True
    while True:
        try:
            await (withdrawals.reconcile() if first else withdrawals.withdraw_due())
            first = False
        except (OSError, OperationalError, DBAPIError) as exc:
            logger.warning("withdrawal sweep failed (%s); retrying", exc)
        await asyncio.sleep(interval)


async def directory_job(state: ServiceState) -> None:
    holder: DirectoryHolder = state.extras["directory"]
    settings = state.settings
    assert isinstance(settings, PublicitySettings)
    await holder.refresh_forever(
        state.http,
        settings.ingest_url,
        interval=settings.directory_refresh_seconds,
        retry=settings.directory_retry_seconds,
    )


def create_app(settings: PublicitySettings | None = None, *, today: Today | None = None) -> FastAPI:
    """``today`` gives the date publication rules are judged on (Beijing time
    by default); tests pass their own clock."""
    settings = settings or PublicitySettings.load()
    clock = today or today_in_china
    # Validate the publication rules before serving anything: a bad file stops startup.
    catalogue = load_catalogue(settings.catalogue_dir)

    async def on_startup(state: ServiceState) -> None:
        state.extras["catalogue"] = catalogue
        state.extras["today"] = clock
        state.extras["directory"] = DirectoryHolder()
        state.extras["withdrawals"] = Withdrawals(state.database, catalogue, clock)
        state.extras["withdrawal_interval"] = settings.withdrawal_interval_seconds
        state.extras["search_limits"] = SearchLimitsConfig(
            result_cap=settings.search_result_cap, broad_depth=settings.search_broad_depth
        )

    definition = ServiceDefinition(
        name="publicity",
        package="ecips_publicity",
        title="ECIPS publicity",
        description=(
            "The public query API and portal: enterprises and the records the law makes "
            "public, within their publicity period, personal data masked. No token; "
            "rate limited per client (429 with Retry-After); successful GETs carry "
            "Cache-Control and a weak ETag (304 on If-None-Match); gzip on request."
        ),
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[public.router, portal.router],
        handlers=make_handlers(catalogue, clock),
        upstreams=upstreams,
        background=[withdrawal_job, directory_job],
        on_startup=on_startup,
    )
    app = create_service_app(definition, settings)
    app.mount("/static", StaticFiles(directory=portal.STATIC_DIR), name="static")
    # Added first = innermost: the ETag is computed over the uncompressed body.
    app.add_middleware(ConditionalGetMiddleware, api_max_age=settings.cache_max_age_seconds)
    app.add_middleware(GZipMiddleware, minimum_size=500)
    install_public_http(app, settings, cache=False)
    return app
