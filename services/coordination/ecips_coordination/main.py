"""The coordination service: tasks between departments (joint punishment now,
double notification next)."""

from __future__ import annotations

from fastapi import FastAPI

from ecips_common.app import ServiceDefinition, create_service_app
from ecips_common.consumer import Upstream
from ecips_common.contracts import COORDINATION_TOPIC, PUNISHMENTS_TOPIC, TOPIC_PARTITIONS
from ecips_common.settings import ServiceSettings
from ecips_coordination.api import tasks
from ecips_coordination.consumers import make_handlers
from ecips_coordination.models import OUTBOX, Base
from ecips_coordination.service import Deadlines
from ecips_coordination.settings import CoordinationSettings


def upstreams(settings: ServiceSettings) -> list[Upstream]:
    return [
        Upstream(name="rules", topic=PUNISHMENTS_TOPIC, feed_url=f"{settings.rules_url}/v1/changes")
    ]


def create_app(settings: CoordinationSettings | None = None) -> FastAPI:
    settings = settings or CoordinationSettings.load()
    deadlines = Deadlines(settings.claim_due_working_days, settings.feedback_due_working_days)
    definition = ServiceDefinition(
        name="coordination",
        package="ecips_coordination",
        title="ECIPS coordination",
        description=(
            "Tasks between departments: joint punishment (联合惩戒) measures to apply or "
            "release, claimed and reported back on by the implementing department."
        ),
        metadata=Base.metadata,
        tables=OUTBOX,
        routers=[tasks.router],
        produces={COORDINATION_TOPIC: TOPIC_PARTITIONS[COORDINATION_TOPIC]},
        handlers=make_handlers(deadlines),
        upstreams=upstreams,
    )
    return create_service_app(definition, settings)
