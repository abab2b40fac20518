"""Shipping orders, tracking events from shop staff and from carriers' signed callbacks, and
the buyer's view of the parcel."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from mobimart import signing
from mobimart.checkout import service as checkout
from mobimart.errors import DomainError, Unauthorized
from mobimart.logistics import service as logistics
from mobimart.logistics.schemas import (
    CarrierAckOut,
    CarrierEventsIn,
    ShipIn,
    ShipmentOut,
    TrackingEventIn,
    TrackingEventOut,
    TrackingOut,
)
from mobimart.logistics.views import event_out, shipment_out
from mobimart.settings import get_settings
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["logistics"])

# A callback carries at most 100 events of about 400 bytes.
MAX_CALLBACK_BYTES = 64 * 1024


@router.post("/merchants/{merchant_id}/orders/{order_id}/shipment", status_code=201)
async def ship(
    merchant_id: IdPath, order_id: IdPath, body: ShipIn, user: CurrentUser, session: Session
) -> ShipmentOut:
    """Hand a paid order to a carrier: the order becomes shipped and `order.shipped` goes to
    the shop's webhooks."""
    shipment = await logistics.ship(
        session,
        merchant_id=merchant_id,
        order_id=order_id,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
        actor=user,
    )
    return shipment_out(shipment)


@router.post("/merchants/{merchant_id}/orders/{order_id}/tracking-events", status_code=201)
async def add_tracking_event(
    merchant_id: IdPath,
    order_id: IdPath,
    body: TrackingEventIn,
    user: CurrentUser,
    session: Session,
) -> TrackingEventOut:
    """A step of the parcel's journey entered by the shop; `delivered` marks the order
    delivered."""
    row = await logistics.add_event(
        session,
        merchant_id=merchant_id,
        order_id=order_id,
        actor=user,
        event=logistics.EventSpec(
            status=body.status,
            description=body.description,
            location=body.location,
            occurred_at=body.occurred_at,
        ),
    )
    return event_out(row)


@router.get("/orders/{order_id}/tracking")
async def tracking(order_id: IdPath, user: CurrentUser, session: Session) -> TrackingOut:
    """Your order's parcel and its journey (`shipment` is null until the shop ships)."""
    order = await checkout.own_order(session, user_id=user.id, order_id=order_id)
    shipment = await logistics.shipment_of(session, order_id=order.id)
    events = await logistics.timeline(session, order_id=order.id) if shipment else []
    return TrackingOut(
        order_id=order.id,
        order_status=order.status,
        shipment=shipment_out(shipment, events) if shipment else None,
    )


_CALLBACK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": CarrierEventsIn.model_json_schema()}},
    }
}


@router.post("/logistics/carriers/{carrier}/events", openapi_extra=_CALLBACK_BODY)
async def carrier_events(
    carrier: Annotated[str, Path(max_length=20)],
    request: Request,
    session: Session,
    x_carrier_signature: Annotated[
        str | None,
        Header(
            max_length=1000,
            description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>",
        ),
    ] = None,
) -> CarrierAckOut:
    """A carrier's tracking callback, signed with the shared carrier secret like our webhooks
    are (see docs/webhooks.md); a signature more than five minutes old is refused. An event id
    sent again is recorded once; a `delivered` event marks the order delivered."""
    body = await _bounded_body(request)
    secret = get_settings().carrier_secret.get_secret_value()
    if not signing.verify(secret, x_carrier_signature or "", body, now=int(time.time())):
        raise Unauthorized("Missing, wrong or expired X-Carrier-Signature.")
    try:
        payload = CarrierEventsIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    recorded, repeated = await logistics.ingest(
        session,
        carrier=carrier,
        tracking_number=payload.tracking_number,
        events=[
            logistics.EventSpec(
                status=e.status,
                description=e.description,
                location=e.location,
                occurred_at=e.occurred_at,
                external_id=e.id,
            )
            for e in payload.events
        ],
    )
    return CarrierAckOut(recorded=recorded, duplicates=repeated)


async def _bounded_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CALLBACK_BYTES:
            raise DomainError("body_too_large", "A callback is at most 64 KB.", 413)
    return bytes(body)
