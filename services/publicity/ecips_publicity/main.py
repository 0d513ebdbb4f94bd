"""The publicity service: the public read model, the public query API and portal."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware

from ecips_common.app import ServiceDefinition, ServiceState, create_service_app
from ecips_common.consumer import Upstream
from ecips_common.settings import ServiceSettings
from ecips_publicity.api import portal, public
from ecips_publicity.catalogue import load_catalogue
from ecips_publicity.consumers import HANDLERS
from ecips_publicity.models import OUTBOX, Base
from ecips_publicity.settings import PublicitySettings
from ecips_publicity.web import CacheControlMiddleware, RateLimitMiddleware, TokenBucketLimiter


def upstreams(settings: ServiceSettings) -> list[Upstream]:
    assert isinstance(settings, PublicitySettings)
    return [
        Upstream("ledger", settings.ledger_topic, f"{settings.ledger_url}/v1/changes"),
        Upstream("rules", settings.punishments_topic, f"{settings.rules_url}/v1/changes"),
    ]


def create_app(settings: PublicitySettings | None = None) -> FastAPI:
    settings = settings or PublicitySettings.load()
    # Validate the publication rules before serving anything: a bad file stops startup.
    catalogue = load_catalogue(settings.catalogue_dir)

    async def on_startup(state: ServiceState) -> None:
        state.extras["catalogue"] = catalogue

    definition = ServiceDefinition(
        name="publicity",
        package="ecips_publicity",
        title="ECIPS publicity",
        description=(
            "The public query API and portal: enterprises and the records the law makes "
            "public, within their publicity period, personal data masked. No token; "
            "rate limited per client."
        ),
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[public.router, portal.router],
        handlers=HANDLERS,
        upstreams=upstreams,
        on_startup=on_startup,
    )
    app = create_service_app(definition, settings)
    app.mount("/static", StaticFiles(directory=portal.STATIC_DIR), name="static")
    # Added last = outermost: CORS headers also go on 429 answers.
    app.add_middleware(CacheControlMiddleware, max_age=settings.cache_max_age_seconds)
    app.add_middleware(
        RateLimitMiddleware,
        limiter=TokenBucketLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        trust_forwarded_for=settings.trust_forwarded_for,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[o.strip() for o in settings.cors_allow_origins.split(",") if o.strip()],
        allow_methods=["GET"],
        allow_headers=["Accept", "Content-Type"],
        expose_headers=["Retry-After"],
        max_age=600,
    )
    return app
