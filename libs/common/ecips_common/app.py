"""The app factory every service uses: one place wires settings, database,
auth, errors, health, metrics, the outbox relay, the consumers and the
change feed, so each service's ``main.py`` only declares what is its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from aiokafka.client import AIOKafkaClient
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from ecips_common.auth import TokenVerifier, require_any_scope
from ecips_common.consumer import (
    EventProcessor,
    FeedFollower,
    Handler,
    KafkaEventConsumer,
    Upstream,
)
from ecips_common.db import Database, UnitOfWork, create_engine
from ecips_common.events import CloudEvent
from ecips_common.limits import RequestBodyLimitMiddleware
from ecips_common.logs import configure_logging
from ecips_common.migrations import upgrade_to_head_async
from ecips_common.observability import health_router, install_request_metrics
from ecips_common.outbox import OutboxRelay, read_changes
from ecips_common.outbox_table import OutboxTables
from ecips_common.problems import PROBLEM_RESPONSES, install_problem_handlers
from ecips_common.settings import ServiceSettings

logger = logging.getLogger("ecips.app")

BackgroundJob = Callable[["ServiceState"], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes a service itself; everything else is shared."""

    name: str
    package: str
    title: str
    description: str
    metadata: MetaData
    tables: OutboxTables
    routers: Sequence[APIRouter] = ()
    produces: Mapping[str, int] = field(default_factory=dict)
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    # Receives the service's own settings class (hence Any).
    upstreams: Callable[[Any], Sequence[Upstream]] = lambda _: ()
    background: Sequence[BackgroundJob] = ()
    on_startup: Callable[[ServiceState], Awaitable[None]] | None = None
    changes_scopes: tuple[str, ...] = ("changes:read",)
    version: str = "1.0.0"


@dataclass
class ServiceState:
    """Process-wide state, reachable from requests as ``request.app.state.service``."""

    definition: ServiceDefinition
    settings: ServiceSettings
    database: Database
    http: httpx.AsyncClient
    relay: OutboxRelay | None = None
    consumer: KafkaEventConsumer | None = None
    processor: EventProcessor | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work: committed once, after the handler returned."""
    async with service_state(request).database.unit_of_work() as uow:
        yield uow


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with service_state(request).database.read_only() as session:
        yield session


# Scope "function": the commit happens before the response is sent, so a client
# never hears "accepted" about a transaction that then failed to commit.
UoW = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
Session = Annotated[AsyncSession, Depends(get_session)]
State = Annotated[ServiceState, Depends(service_state)]


class ChangePage(BaseModel):
    items: list[CloudEvent]
    next_cursor: int


def changes_router(definition: ServiceDefinition) -> APIRouter:
    router = APIRouter(tags=["change feed"])

    @router.get(
        "/v1/changes",
        response_model=ChangePage,
        summary="Resumable change feed",
        description=(
            "Every event this service produced, in commit order, after a cursor. "
            "Resume with `after=next_cursor`; an empty page means caught up."
        ),
        responses=PROBLEM_RESPONSES,
        dependencies=[Depends(require_any_scope(*definition.changes_scopes))],
    )
    async def changes(
        state: State,
        after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> ChangePage:
        items = await read_changes(state.database, definition.name, after=after, limit=limit)
        return ChangePage(items=items, next_cursor=items[-1].sequence if items else after)

    return router


def _broker_check(settings: ServiceSettings) -> Callable[[], Awaitable[None]]:
    client: AIOKafkaClient | None = None

    async def check() -> None:
        nonlocal client
        if client is None:
            client = AIOKafkaClient(
                bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=2500
            )
            try:
                await client.bootstrap()
            except Exception:
                with contextlib.suppress(Exception):
                    await client.close()
                client = None
                raise
        ok = await client.fetch_all_metadata()
        if ok is None:
            raise ConnectionError("no metadata from the broker")

    return check


def create_service_app(definition: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(definition.name, settings.log_level)
        if settings.migrate_on_start:
            await upgrade_to_head_async(
                definition.package, settings.database_url, settings.db_schema
            )
        database = Database(
            create_engine(
                settings.database_url,
                application_name=definition.name,
                pool_size=settings.database_pool_size,
            ),
            definition.tables,
        )
        public_key = settings.public_key_pem()
        if public_key is not None:
            app.state.token_verifier = TokenVerifier(
                public_key, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            )
        else:
            logger.warning("no JWT public key configured: every protected endpoint answers 503")
        http = httpx.AsyncClient(timeout=10)
        state = ServiceState(definition, settings, database, http)
        app.state.service = state
        tasks: list[asyncio.Task[None]] = []
        if definition.produces:
            state.relay = OutboxRelay(
                service=definition.name,
                database=database,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topics=definition.produces,
                poll_interval=settings.outbox_poll_interval_seconds,
                batch_size=settings.outbox_batch_size,
                create_topics=settings.kafka_create_topics,
            )
            tasks.append(asyncio.create_task(state.relay.run(), name="outbox-relay"))
        upstreams = list(definition.upstreams(settings))
        if upstreams:
            state.processor = EventProcessor(
                service=definition.name,
                database=database,
                handlers=definition.handlers,
                max_attempts=settings.consumer_max_attempts,
            )
            state.consumer = KafkaEventConsumer(
                service=definition.name,
                processor=state.processor,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topics=[u.topic for u in upstreams],
            )
            tasks.append(asyncio.create_task(state.consumer.run(), name="consumer"))
            for upstream in upstreams:
                follower = FeedFollower(
                    upstream=upstream,
                    processor=state.processor,
                    database=database,
                    token=settings.service_token,
                    interval=settings.feed_follow_interval_seconds,
                    grace=settings.feed_grace_seconds,
                )
                tasks.append(asyncio.create_task(follower.run(), name=f"feed-{upstream.name}"))
        if definition.on_startup is not None:
            await definition.on_startup(state)
        for job in definition.background:
            tasks.append(asyncio.create_task(job(state), name=getattr(job, "__name__", "job")))
        logger.info("service started", extra={"schema": settings.db_schema})
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if state.relay is not None:
                await state.relay.close()
            if state.consumer is not None:
                await state.consumer.close()
            await http.aclose()
            await database.dispose()
            logger.info("service stopped")

    app = FastAPI(
        title=definition.title,
        description=definition.description,
        version=definition.version,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(RequestBodyLimitMiddleware, max_bytes=settings.request_body_limit())
    install_request_metrics(app, definition.name)

    async def database_check() -> None:
        await service_state_from_app(app).database.ping()

    checks: dict[str, Callable[[], Awaitable[None]]] = {"database": database_check}
    if definition.produces or definition.handlers:
        checks["broker"] = _broker_check(settings)
    # In a cluster a broker outage must not take every pod out of its Service:
    # the outbox keeps events and the change feeds keep consumers going.
    advisory = frozenset() if settings.readiness_requires_broker else frozenset({"broker"})
    app.include_router(health_router(checks, advisory=advisory))
    if definition.produces:
        app.include_router(changes_router(definition))
    for router in definition.routers:
        app.include_router(router)
    return app


def service_state_from_app(app: FastAPI) -> ServiceState:
    state: ServiceState = app.state.service
    return state
