"""The CloudEvents 1.0 envelope and the base class for event payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict


class CloudEvent(BaseModel):
    """An event as it travels on Kafka and in change feeds (structured JSON mode).

    ``sequence`` is the producing service's own gap-aware position: consumers
    use it to resume a change feed, never to order events across producers.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: str = "application/json"
    sequence: int
    data: dict[str, Any]


class EventPayload(BaseModel):
    """Base of every event's ``data``: frozen, with a fixed type and topic.

    Consumers ignore fields they do not know so producers can add fields
    without breaking them.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    topic: ClassVar[str]

    @classmethod
    def from_event(cls, event: CloudEvent) -> Self:
        if event.type != cls.event_type:
            raise ValueError(f"expected a {cls.event_type} event, got {event.type}")
        return cls.model_validate(event.data)


def source_uri(service: str) -> str:
    return f"/ecips/{service}"
