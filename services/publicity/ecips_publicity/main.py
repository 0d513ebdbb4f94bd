"""The publicity service: the public read model, the public query API and portal."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ecips_common.app import ServiceDefinition, ServiceState, create_service_app
from ecips_common.consumer import Upstream
from ecips_common.public_http import install_public_http
from ecips_publicity.api import portal, public
from ecips_publicity.catalogue import load_catalogue
from ecips_publicity.consumers import HANDLERS
from ecips_publicity.models import OUTBOX, Base
from ecips_publicity.settings import PublicitySettings


def upstreams(settings: PublicitySettings) -> list[Upstream]:
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
    install_public_http(app, settings)
    return app
