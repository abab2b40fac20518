"""Shipments and tracking events as the API and the pages show them."""

from __future__ import annotations

from collections.abc import Sequence

from mobimart.logistics import domain
from mobimart.logistics.models import Shipment, TrackingEvent
from mobimart.logistics.schemas import ShipmentOut, TrackingEventOut


def event_out(row: TrackingEvent) -> TrackingEventOut:
    return TrackingEventOut.model_validate(row, from_attributes=True)


def shipment_out(shipment: Shipment, events: Sequence[TrackingEvent] = ()) -> ShipmentOut:
    return ShipmentOut(
        id=shipment.id,
        order_id=shipment.order_id,
        carrier=shipment.carrier,
        carrier_name=domain.CARRIERS.get(shipment.carrier, shipment.carrier),
        tracking_number=shipment.tracking_number,
        created_at=shipment.created_at,
        events=[event_out(e) for e in events],
    )
