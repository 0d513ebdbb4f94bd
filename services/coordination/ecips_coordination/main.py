"""The coordination service: tasks between departments — double notification
of new registrations and joint punishment — pulled over REST or pushed to
signed webhooks."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from ecips_common.app import ServiceDefinition, ServiceState, create_service_app
from ecips_common.consumer import Upstream
from ecips_common.contracts import (
    COORDINATION_TOPIC,
    LEDGER_TOPIC,
    PUNISHMENTS_TOPIC,
    TOPIC_PARTITIONS,
)
from ecips_common.public_http import install_public_http
from ecips_coordination.api import registrations, reports, subscriptions, tasks
from ecips_coordination.catalogue import APPROVALS_FILE, load_approval_catalogue
from ecips_coordination.consumers import make_handlers
from ecips_coordination.models import OUTBOX, Base
from ecips_coordination.service import Clock, Deadlines, Environment, IngestForwarder, utc_now
from ecips_coordination.settings import CoordinationSettings
from ecips_coordination.webhooks import RetryPolicy, delivery_job
from ecips_coordination.working_days import CALENDAR_FILE, load_calendar


class WorkbenchCorsMiddleware:
    """CORS for the department workbench's origins over the whole authenticated API
    (bearer token, POST); requests from any other origin keep the public policy.

    Two CORSMiddleware layers cannot be stacked (the outer one answers every
    preflight itself), so requests are routed by their Origin instead."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Accept", "Authorization", "Content-Type"],
            expose_headers=["Retry-After", "ETag"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and Headers(scope=scope).get("origin") in self.origins:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def upstreams(settings: CoordinationSettings) -> list[Upstream]:
    return [
        Upstream(
            name="rules", topic=PUNISHMENTS_TOPIC, feed_url=f"{settings.rules_url}/v1/changes"
        ),
        Upstream(name="ledger", topic=LEDGER_TOPIC, feed_url=f"{settings.ledger_url}/v1/changes"),
    ]


def create_app(settings: CoordinationSettings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    settings = settings or CoordinationSettings.load()
    # Data files are validated before anything is served: a bad file stops startup.
    env = Environment(
        deadlines=Deadlines(settings.claim_due_working_days, settings.feedback_due_working_days),
        calendar=load_calendar(settings.calendar_file or CALENDAR_FILE),
        approvals=load_approval_catalogue(
            settings.approvals_file or APPROVALS_FILE, departments_file=settings.departments_file
        ),
        clock=clock,
    )

    async def on_startup(state: ServiceState) -> None:
        state.extras["env"] = env
        state.extras["forwarder"] = IngestForwarder(state.http, settings.ingest_url)

    definition = ServiceDefinition(
        name="coordination",
        package="ecips_coordination",
        title="ECIPS coordination",
        description=(
            "Tasks between departments. Double notification (双告知): a registration or a "
            "change of business scope that needs post-registration approvals opens a task "
            "for each approving department, and the applicant gets a notice. Joint "
            "punishment (联合惩戒): each department that must apply or release a measure "
            "gets a task. Departments claim (签收) and report back (反馈), pull over REST "
            "or receive signed webhooks; overdue tasks show in the coordination report."
        ),
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[tasks.router, registrations.router, subscriptions.router, reports.router],
        produces={COORDINATION_TOPIC: TOPIC_PARTITIONS[COORDINATION_TOPIC]},
        handlers=make_handlers(env),
        upstreams=upstreams,
        on_startup=on_startup,
        background=[
            delivery_job(
                RetryPolicy(
                    base_seconds=settings.webhook_retry_base_seconds,
                    max_seconds=settings.webhook_retry_max_seconds,
                    max_attempts=settings.webhook_max_attempts,
                ),
                poll_interval=settings.webhook_poll_interval_seconds,
                batch_size=settings.webhook_batch_size,
            )
        ],
    )
    app = create_service_app(definition, settings)
    # The notice is public: rate limit per client (the whole app, which is
    # otherwise token-protected). No shared caching: task answers are private;
    # the notice sets its own Cache-Control.
    install_public_http(app, settings, cache=False)
    workbench_origins = settings.workbench_origin_list()
    if workbench_origins:
        # Added last, so outermost: it sees the preflights first.
        app.add_middleware(WorkbenchCorsMiddleware, origins=workbench_origins)
    return app
