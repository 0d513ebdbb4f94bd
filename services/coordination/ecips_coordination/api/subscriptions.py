"""Webhook subscriptions, their deliveries, the dead-letter list and redelivery.
A department sees and touches only its own."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from ecips_common.app import UoW
from ecips_common.auth import Principal, require_scope
from ecips_common.problems import PROBLEM_RESPONSES, FieldError, InvalidInput
from ecips_coordination.api.deps import Env, Settings, parse_cursor, parse_limit, parse_uuid
from ecips_coordination.models import DELIVERY_STATUSES
from ecips_coordination.repository import DeliveryFilter
from ecips_coordination.schemas import (
    DeliveryOut,
    DeliveryPage,
    SubscriptionCreated,
    SubscriptionPage,
    SubscriptionRequest,
)
from ecips_coordination.service import SubscriptionService

router = APIRouter(tags=["webhooks"], responses=PROBLEM_RESPONSES)

Handler = Annotated[Principal, Depends(require_scope("tasks:handle"))]

SIGNING = (
    "Each delivery is a POST of JSON `{id, type, time, subject, data: {status, task}}` "
    "with headers `X-ECIPS-Delivery` (the id, the same on retries), `X-ECIPS-Event`, "
    "`X-ECIPS-Timestamp` (Unix seconds) and `X-ECIPS-Signature: v1=HEX`, where HEX is "
    "HMAC-SHA256(secret, timestamp + '.' + raw body). Verify it in constant time, refuse "
    "timestamps more than 5 minutes off, and drop ids already seen: then a replay is "
    "useless. Answer 2xx within 10 s; anything else is retried with exponential backoff "
    "and jitter, then dead-lettered. One enterprise's changes arrive in order."
)


def _service(uow: UoW, settings: Settings, env: Env) -> SubscriptionService:
    return SubscriptionService(
        uow, allow_private_targets=settings.webhook_allow_private_targets, clock=env.clock
    )


Service = Annotated[SubscriptionService, Depends(_service)]


def _subscription_id(subscription_id: str) -> uuid.UUID:
    return parse_uuid(subscription_id, "subscription_id")


def _delivery_id(delivery_id: str) -> uuid.UUID:
    return parse_uuid(delivery_id, "delivery_id")


@router.post(
    "/v1/subscriptions",
    response_model=SubscriptionCreated,
    status_code=201,
    summary="Subscribe a webhook to the department's task changes",
    description=f"The answer holds the signing `secret`, shown only this once. {SIGNING}",
)
async def create_subscription(
    body: SubscriptionRequest, principal: Handler, service: Service
) -> SubscriptionCreated:
    return await service.create(principal, body)


@router.get(
    "/v1/subscriptions",
    response_model=SubscriptionPage,
    summary="The department's webhook subscriptions",
)
async def list_subscriptions(principal: Handler, service: Service) -> SubscriptionPage:
    return await service.list(principal)


@router.delete(
    "/v1/subscriptions/{subscription_id}",
    status_code=204,
    summary="Stop pushing to a webhook",
    description="Pending deliveries are cancelled. Deleting again changes nothing.",
)
async def delete_subscription(
    subscription_id: Annotated[uuid.UUID, Depends(_subscription_id)],
    principal: Handler,
    service: Service,
) -> Response:
    await service.delete(principal, subscription_id)
    return Response(status_code=204)


@router.get(
    "/v1/deliveries",
    response_model=DeliveryPage,
    summary="The department's webhook deliveries (status=dead: the dead-letter list)",
    description="Oldest first; page with `after=next_cursor` until it is null.",
)
async def list_deliveries(
    principal: Handler,
    service: Service,
    status: Annotated[
        str | None, Query(json_schema_extra={"enum": list(DELIVERY_STATUSES)})
    ] = None,
    subscription_id: str | None = None,
    limit: Annotated[str | None, Query(description="1 to 500, default 100")] = None,
    after: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> DeliveryPage:
    errors: list[FieldError] = []
    if status is not None and status not in DELIVERY_STATUSES:
        errors.append(
            FieldError(
                field="status", code="not_allowed", message=f"one of {', '.join(DELIVERY_STATUSES)}"
            )
        )
    subscription: uuid.UUID | None = None
    if subscription_id is not None:
        try:
            subscription = uuid.UUID(subscription_id)
        except ValueError:
            errors.append(
                FieldError(field="subscription_id", code="invalid_uuid", message="not a UUID")
            )
    page_size = parse_limit(limit, 500, errors)
    cursor = parse_cursor(after, errors)
    if errors:
        raise InvalidInput(errors)
    return await service.deliveries(
        principal,
        DeliveryFilter(
            department=principal.department,
            status=status,
            subscription_id=subscription,
            after=cursor,
            limit=page_size,
        ),
    )


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    summary="Send a dead-lettered (or delivered) webhook again",
    description=(
        "The delivery goes back to pending with a fresh retry budget and keeps its id, "
        "so a receiver that already processed it can recognise it."
    ),
)
async def redeliver(
    delivery_id: Annotated[uuid.UUID, Depends(_delivery_id)],
    principal: Handler,
    service: Service,
) -> DeliveryOut:
    return await service.redeliver(principal, delivery_id)
