"""Shipping an order, its parcel's tracking timeline, and the order's end: received by the
buyer, or completed on its own some days after delivery; completing settles the merchant.

Tracking events arrive from carriers (signed callbacks, each event id recorded once) or are
entered by shop staff. A "delivered" event from either moves a shipped order to delivered.
Every order move is a conditional UPDATE (`checkout.service.move`), so a callback retried
while the buyer taps "received" moves the order, settles it and announces it once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.checkout import service as checkout
from mobimart.checkout.domain import Status
from mobimart.checkout.models import Order
from mobimart.db import unique_or, utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.logistics import domain
from mobimart.logistics.domain import Source, TrackingStatus
from mobimart.logistics.models import Shipment, TrackingEvent
from mobimart.merchants import service as merchants
from mobimart.notifications import service as notifications
from mobimart.payments import ledger
from mobimart.payments import service as payments
from mobimart.settings import get_settings
from mobimart.text import clean
from mobimart.webhooks import service as webhooks

AUTO_COMPLETE_BATCH = 200
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventSpec:
    status: TrackingStatus
    description: str = ""
    location: str = ""
    occurred_at: dt.datetime | None = None
    external_id: str | None = None  # the carrier's event id


# --- reading ---------------------------------------------------------------------------------


async def shipment_of(session: AsyncSession, *, order_id: int) -> Shipment | None:
    return await session.scalar(select(Shipment).where(Shipment.order_id == order_id))


async def shipments_of(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, Shipment]:
    """order -> its shipment, for lists."""
    if not order_ids:
        return {}
    rows = await session.scalars(select(Shipment).where(Shipment.order_id.in_(order_ids)))
    return {s.order_id: s for s in rows}


async def timeline(session: AsyncSession, *, order_id: int) -> list[TrackingEvent]:
    """The parcel's journey, oldest first (by when it happened, not when we heard of it)."""
    return list(
        await session.scalars(
            select(TrackingEvent)
            .join(Shipment, Shipment.id == TrackingEvent.shipment_id)
            .where(Shipment.order_id == order_id)
            .order_by(TrackingEvent.occurred_at, TrackingEvent.id)
        )
    )


# --- shipping --------------------------------------------------------------------------------


async def ship(
    session: AsyncSession,
    *,
    merchant_id: int,
    order_id: int,
    carrier: str,
    tracking_number: str,
    actor: User,
) -> Shipment:
    """Hand a paid order to a carrier: the shipment is recorded and the order moves to
    shipped, once, whoever of the shop's staff taps first."""
    await merchants.membership(session, merchant_id=merchant_id, user=actor)
    order = await checkout.merchant_order(session, merchant_id=merchant_id, order_id=order_id)
    code = domain.carrier(carrier)
    number = domain.tracking_number(tracking_number)
    if order.status != Status.paid:
        raise _not_shippable(order)
    now = utcnow()
    if not await checkout.move(session, order=order, target=Status.shipped, shipped_at=now):
        await session.rollback()
        await session.refresh(order)
        raise _not_shippable(order)
    shipment = Shipment(
        order_id=order.id,
        merchant_id=merchant_id,
        carrier=code,
        tracking_number=number,
        created_at=now,
    )
    async with unique_or(session, Conflict("already_shipped", "The order is shipped already.")):
        session.add(shipment)
    await notifications.order_update(session, order=order, event="shipped")
    await webhooks.emit(
        session,
        merchant_id=merchant_id,
        event="order.shipped",
        data={"order": order.number, "carrier": code, "tracking_number": number},
    )
    await session.commit()
    return shipment


def _not_shippable(order: Order) -> Conflict:
    if order.status in (Status.shipped, Status.delivered, Status.completed):
        return Conflict("already_shipped", "The order is shipped already.")
    return Conflict("not_shippable", "Only a paid order is shipped.")


async def add_event(
    session: AsyncSession,
    *,
    merchant_id: int,
    order_id: int,
    actor: User,
    event: EventSpec,
) -> TrackingEvent:
    """A step of the journey entered by the shop (its own delivery, or a carrier that does
    not call back)."""
    await merchants.membership(session, merchant_id=merchant_id, user=actor)
    await checkout.merchant_order(session, merchant_id=merchant_id, order_id=order_id)
    shipment = await shipment_of(session, order_id=order_id)
    if shipment is None:
        raise Conflict("not_shipped", "Ship the order before adding tracking events.")
    row = await _record(session, shipment=shipment, event=event, source=Source.staff)
    assert row is not None  # only a carrier's event id can repeat
    await session.commit()
    return row


async def ingest(
    session: AsyncSession, *, carrier: str, tracking_number: str, events: Sequence[EventSpec]
) -> tuple[int, int]:
    """A carrier's callback (its signature already checked): (events recorded, repeats
    ignored). A parcel carrying several orders of one shop updates each of them."""
    if carrier not in domain.CARRIERS:
        raise NotFound("Carrier")
    number = domain.tracking_number(tracking_number)
    shipments = list(
        await session.scalars(
            select(Shipment)
            .where(Shipment.carrier == carrier, Shipment.tracking_number == number)
            .order_by(Shipment.id)
        )
    )
    if not shipments:
        raise NotFound("Shipment")
    recorded = repeated = 0
    for shipment in shipments:
        for event in events:
            row = await _record(session, shipment=shipment, event=event, source=Source.carrier)
            if row is None:
                repeated += 1
            else:
                recorded += 1
    await session.commit()
    return recorded, repeated


async def _record(
    session: AsyncSession, *, shipment: Shipment, event: EventSpec, source: Source
) -> TrackingEvent | None:
    """Write one event (None when the carrier sent it before); a delivery moves the order."""
    now = utcnow()
    values = {
        "shipment_id": shipment.id,
        "status": TrackingStatus(event.status).value,
        "description": clean(event.description, 200),
        "location": clean(event.location, 80),
        "occurred_at": domain.occurred(event.occurred_at, now=now),
        "source": source.value,
        "external_id": event.external_id,
        "created_at": now,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    new_id = await session.scalar(
        insert(TrackingEvent).values(**values).on_conflict_do_nothing().returning(TrackingEvent.id)
    )
    if new_id is None:
        return None
    if event.status == TrackingStatus.delivered:
        await _delivered(session, order_id=shipment.order_id, now=now)
    return await session.get(TrackingEvent, new_id)


async def _delivered(session: AsyncSession, *, order_id: int, now: dt.datetime) -> None:
    # The buyer's days to confirm or complain count from when we learn of the delivery, not
    # from a carrier's late report of it.
    order = await session.get(Order, order_id, populate_existing=True)
    assert order is not None
    if order.status == Status.shipped and await checkout.move(
        session, order=order, target=Status.delivered, delivered_at=now
    ):
        await notifications.order_update(session, order=order, event="delivered")
        await webhooks.emit(
            session,
            merchant_id=order.merchant_id,
            event="order.delivered",
            data={"order": order.number},
        )


# --- completing ------------------------------------------------------------------------------


async def complete(session: AsyncSession, *, order: Order, now: dt.datetime) -> bool:
    """Shipped or delivered -> completed, in the caller's transaction: the merchant is
    settled (less refunds and commission) and told. False when it moved on meanwhile."""
    if not await checkout.move(session, order=order, target=Status.completed, completed_at=now):
        return False
    with contextlib.suppress(ledger.AlreadyPosted):  # the ledger settles an order once
        await payments.settle(session, order=order)
    await webhooks.emit(
        session,
        merchant_id=order.merchant_id,
        event="order.completed",
        data={
            "order": order.number,
            "total_minor": order.total_minor,
            "refunded_minor": order.refunded_minor,
            "currency": order.currency,
        },
    )
    return True


async def receive(session: AsyncSession, *, user: User, order_id: int) -> Order:
    """The buyer says the parcel arrived: the order completes. Saying it twice is harmless."""
    order = await checkout.own_order(session, user_id=user.id, order_id=order_id)
    # Twice at most: a carrier's "delivered" may land between our read and our move.
    for _ in range(2):
        if order.status == Status.completed:
            return order
        if order.status not in (Status.shipped, Status.delivered):
            raise Conflict("not_shipped", "Only a shipped order can be confirmed as received.")
        if await complete(session, order=order, now=utcnow()):
            await session.commit()
            return order
        await session.rollback()
        await session.refresh(order)
    raise Conflict("order_changed", "The order changed meanwhile; look at it again.")


async def complete_delivered(session: AsyncSession, *, now: dt.datetime | None = None) -> int:
    """Complete orders delivered `auto_complete_days` ago that the buyer has not confirmed
    (the housekeeping job, every minute, at most AUTO_COMPLETE_BATCH at a time)."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=get_settings().auto_complete_days)
    due = list(
        await session.scalars(
            select(Order.id)
            .where(Order.status == Status.delivered.value, Order.delivered_at <= cutoff)
            .order_by(Order.id)
            .limit(AUTO_COMPLETE_BATCH)
        )
    )
    completed = 0
    for order_id in due:
        order = await session.get(Order, order_id, populate_existing=True)
        if order is None:
            continue
        try:
            if await complete(session, order=order, now=now):
                completed += 1
            await session.commit()
        except DomainError as exc:  # one order the ledger refuses must not stop the others
            await session.rollback()
            log.warning("order %s not completed: %s", order_id, exc.code)
    return completed
