"""A merchant's webhook endpoints and their delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mobimart.merchants import service as merchants
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath
from mobimart.webhooks import service as webhooks
from mobimart.webhooks.models import WebhookDelivery, WebhookEndpoint
from mobimart.webhooks.schemas import DeliveryOut, EndpointCreatedOut, EndpointIn, EndpointOut

router = APIRouter(tags=["webhooks"])


def _endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(endpoint, from_attributes=True)


def _delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery, from_attributes=True)


@router.post("/merchants/{merchant_id}/webhooks", status_code=201)
async def create_endpoint(
    merchant_id: IdPath, body: EndpointIn, user: CurrentUser, session: Session
) -> EndpointCreatedOut:
    """Send the chosen events to `url` (owners only). The answer holds the signing secret,
    shown this once; docs/webhooks.md shows how to verify a delivery with it."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    endpoint = await webhooks.create_endpoint(
        session, merchant_id=merchant_id, url=body.url, events=body.events
    )
    return EndpointCreatedOut.model_validate(endpoint, from_attributes=True)


@router.get("/merchants/{merchant_id}/webhooks")
async def list_endpoints(
    merchant_id: IdPath, user: CurrentUser, session: Session
) -> list[EndpointOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return [_endpoint_out(e) for e in await webhooks.endpoints(session, merchant_id=merchant_id)]


@router.delete("/merchants/{merchant_id}/webhooks/{endpoint_id}", status_code=204)
async def delete_endpoint(
    merchant_id: IdPath, endpoint_id: IdPath, user: CurrentUser, session: Session
) -> None:
    """Stop sending to an endpoint (owners only); what was still queued for it is dropped."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await webhooks.delete_endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id)


@router.get("/merchants/{merchant_id}/webhooks/{endpoint_id}/deliveries")
async def deliveries(
    merchant_id: IdPath,
    endpoint_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[DeliveryOut]:
    """The endpoint's delivery log, newest first, with each one's attempts and last answer."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await webhooks.deliveries(
        session,
        merchant_id=merchant_id,
        endpoint_id=endpoint_id,
        before=page.before_id,
        limit=page.fetch,
    )
    return make_page(rows, page, _delivery_out, key=lambda d: d.id)


@router.post("/merchants/{merchant_id}/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    merchant_id: IdPath,
    endpoint_id: IdPath,
    delivery_id: IdPath,
    user: CurrentUser,
    session: Session,
) -> DeliveryOut:
    """Try a failed delivery once more, now (`delivery_id` is its `id` in the log). It keeps
    its Mobimart-Delivery id; the answer shows how the attempt went."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    delivery = await webhooks.redeliver(
        session, merchant_id=merchant_id, endpoint_id=endpoint_id, delivery_id=delivery_id
    )
    return _delivery_out(delivery)
