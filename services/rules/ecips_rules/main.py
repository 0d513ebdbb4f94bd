"""The rules service: the joint punishment catalogue, evaluated on every
ledger change and on the days time changes an answer, and the credit checks
procurement and bidding call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import asyncpg
from fastapi import FastAPI

from ecips_common.app import ServiceDefinition, ServiceState, create_service_app
from ecips_common.consumer import Upstream
from ecips_common.contracts import LEDGER_TOPIC, PUNISHMENTS_TOPIC, TOPIC_PARTITIONS
from ecips_common.db import asyncpg_dsn
from ecips_common.public_http import install_public_http
from ecips_rules.api import catalogue, checks, rules
from ecips_rules.cache import CacheFollower, CheckCache
from ecips_rules.catalogue import load_catalogue
from ecips_rules.consumers import build_handlers
from ecips_rules.management import CatalogueManager
from ecips_rules.models import OUTBOX, Base
from ecips_rules.registry import CatalogueRegistry
from ecips_rules.scheduler import Scheduler
from ecips_rules.settings import RulesSettings

Clock = Callable[[], datetime]


def upstreams(settings: RulesSettings) -> Sequence[Upstream]:
    return [Upstream("ledger", LEDGER_TOPIC, f"{settings.ledger_url}/v1/changes")]


def system_clock() -> datetime:
    return datetime.now(UTC)


def create_app(settings: RulesSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """``clock`` tells every part of the service what time it is (tests move it)."""
    settings = settings or RulesSettings.load()
    now = clock or system_clock
    # Validate and compile the shipped catalogue before serving anything: a bad
    # rule stops startup with a message naming it.
    registry = CatalogueRegistry(load_catalogue(settings.catalogue_file))

    async def on_startup(state: ServiceState) -> None:
        state.extras["clock"] = now
        state.extras["registry"] = registry
        await registry.seed_database(state.database, now=now())
        state.extras["check_pool"] = await asyncpg.create_pool(
            asyncpg_dsn(settings.database_url),
            min_size=1,
            max_size=settings.check_pool_size,
            server_settings={"application_name": "rules-checks"},
        )
        cache = CheckCache(settings.check_cache_size)
        state.extras["cache"] = cache
        state.extras["follower"] = CacheFollower(
            state.database, cache, registry, poll_interval=settings.cache_poll_interval_seconds
        )
        state.extras["scheduler"] = Scheduler(state.database, registry, clock=now)
        manager = CatalogueManager(
            state.database,
            registry,
            clock=now,
            chunk_size=settings.reevaluation_chunk_size,
            parallel=settings.reevaluation_parallelism,
        )
        state.extras["manager"] = manager
        await manager.resume()

    async def scheduler(state: ServiceState) -> None:
        job: Scheduler = state.extras["scheduler"]
        manager: CatalogueManager = state.extras["manager"]
        # Interrupted dry runs and enactments are taken over on the same beat.
        await job.run(settings.scheduler_interval_seconds, also=manager.resume)

    async def check_cache_follower(state: ServiceState) -> None:
        follower: CacheFollower = state.extras["follower"]
        try:
            await follower.run()
        finally:
            await follower.close()
            await state.extras["check_pool"].close()

    async def catalogue_jobs(state: ServiceState) -> None:
        # Holds the dry runs and enactments running in this process; ends them at shutdown.
        manager: CatalogueManager = state.extras["manager"]
        try:
            await asyncio.Event().wait()
        finally:
            await manager.close()

    definition = ServiceDefinition(
        name="rules",
        package="ecips_rules",
        title="ECIPS rules",
        description=(
            "The joint punishment catalogue (rules as data, versioned), the punishments and "
            "incentives it triggers on ledger changes and on the days time changes them, "
            "public credit checks, and managing the catalogue safely (dry run, enactment)."
        ),
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[rules.router, checks.router, catalogue.router],
        produces={PUNISHMENTS_TOPIC: TOPIC_PARTITIONS[PUNISHMENTS_TOPIC]},
        handlers=build_handlers(registry, now),
        upstreams=upstreams,
        background=[scheduler, check_cache_follower, catalogue_jobs],
        on_startup=on_startup,
    )
    app = create_service_app(definition, settings)
    # Credit checks are public: rate limited per client, callable from browsers.
    install_public_http(app, settings, cors_methods=("GET", "POST"), cache=False)
    return app
