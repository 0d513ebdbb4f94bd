"""The rules service: the joint punishment catalogue, evaluated on every
ledger change, and the credit checks procurement and bidding call."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from ecips_common.app import ServiceDefinition, ServiceState, create_service_app
from ecips_common.consumer import Upstream
from ecips_common.contracts import LEDGER_TOPIC, PUNISHMENTS_TOPIC, TOPIC_PARTITIONS
from ecips_common.public_http import install_public_http
from ecips_rules.api import checks, rules
from ecips_rules.catalogue import load_catalogue
from ecips_rules.consumers import build_handlers
from ecips_rules.models import OUTBOX, Base
from ecips_rules.settings import RulesSettings


def upstreams(settings: RulesSettings) -> Sequence[Upstream]:
    return [Upstream("ledger", LEDGER_TOPIC, f"{settings.ledger_url}/v1/changes")]


def create_app(settings: RulesSettings | None = None) -> FastAPI:
    settings = settings or RulesSettings.load()
    # Validate and compile the catalogue before serving anything: a bad rule stops startup.
    loaded = load_catalogue(settings.catalogue_file)

    async def on_startup(state: ServiceState) -> None:
        state.extras["catalogue"] = loaded

    definition = ServiceDefinition(
        name="rules",
        package="ecips_rules",
        title="ECIPS rules",
        description=(
            "The joint punishment catalogue (rules as data), the punishments it "
            "triggers on ledger changes, and public credit checks."
        ),
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[rules.router, checks.router],
        produces={PUNISHMENTS_TOPIC: TOPIC_PARTITIONS[PUNISHMENTS_TOPIC]},
        handlers=build_handlers(loaded),
        upstreams=upstreams,
        on_startup=on_startup,
    )
    app = create_service_app(definition, settings)
    # Credit checks are public: rate limited per client, callable from browsers.
    install_public_http(app, settings, cors_methods=("GET", "POST"), cache=False)
    return app
