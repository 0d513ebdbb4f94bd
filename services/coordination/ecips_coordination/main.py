"""The coordination service: tasks between departments — double notification
of new registrations and joint punishment — pulled over REST or pushed to
signed webhooks."""

from __future__ import annotations

from fastapi import FastAPI

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
    return app
