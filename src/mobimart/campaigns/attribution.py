"""Last-touch attribution of paid orders to campaigns, QR codes and other sources."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns.models import Campaign, MarketingEvent, OrderAttribution
from mobimart.checkout.models import Order
from mobimart.db import insert_or_skip, utcnow
from mobimart.settings import get_settings

# The events that bring someone to buy, and the channel each one credits. A short-link
# click credits its campaign's channel (sms, push or inbox).
TOUCHES = {
    "qr_scan": "qr",
    "link_click": "",
    "wifi_signup": "wifi",
    "geofence_enter": "geo",
}


async def credit(session: AsyncSession, *, order: Order) -> None:
    """Credit the order to the person's last marketing touch in the attribution window."""
    # The order was just marked paid by a statement: its loaded paid_at may be stale.
    paid_at = order.paid_at or utcnow()
    since = paid_at - dt.timedelta(days=get_settings().attribution_window_days)
    event = await session.scalar(
        select(MarketingEvent)
        .where(
            MarketingEvent.user_id == order.user_id,
            MarketingEvent.kind.in_(TOUCHES),
            MarketingEvent.at >= since,
            MarketingEvent.at <= paid_at,
            # A platform touch (the mall's own code or campaign) credits any shop's order;
            # another shop's touch never does.
            or_(
                MarketingEvent.merchant_id == order.merchant_id,
                MarketingEvent.merchant_id.is_(None),
            ),
        )
        .order_by(MarketingEvent.at.desc(), MarketingEvent.id.desc())
        .limit(1)
    )
    if event is None:
        return
    channel = TOUCHES[event.kind]
    if not channel:
        campaign_channel = (
            await session.scalar(select(Campaign.channel).where(Campaign.id == event.campaign_id))
            if event.campaign_id is not None
            else None
        )
        channel = campaign_channel or "sms"
    # Once per order: a payment retried or a notification replayed credits nothing twice.
    await session.execute(
        insert_or_skip(session, OrderAttribution, index_elements=["order_id"]).values(
            order_id=order.id,
            event_id=event.id,
            merchant_id=order.merchant_id,
            campaign_id=event.campaign_id,
            qr_code_id=event.subject_id if event.kind == "qr_scan" else None,
            channel=channel,
            amount_minor=order.total_minor,
            currency=order.currency,
            at=paid_at,
        )
    )
