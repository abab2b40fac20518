"""The one way a marketing event is recorded. Recording it also moves what depends on it, in
the same transaction: the person's segment memberships and the automations it triggers."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns import attribution, automations, segments
from mobimart.campaigns.models import MarketingEvent
from mobimart.checkout.models import Order
from mobimart.db import utcnow


class Kind(enum.StrEnum):
    qr_scan = "qr_scan"
    link_click = "link_click"  # a campaign message's short link
    wifi_signup = "wifi_signup"
    geofence_enter = "geofence_enter"
    draw_entry = "draw_entry"
    product_view = "product_view"
    order_paid = "order_paid"
    cart_abandoned = "cart_abandoned"


def device_class(user_agent: str) -> str:
    """phone | tablet | desktop | bot, from the User-Agent: enough to tell a scan from a
    phone from a preview bot, without keeping the header itself."""
    ua = user_agent.lower()
    if not ua or any(w in ua for w in ("bot", "spider", "crawl", "preview", "curl", "python")):
        return "bot"
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return "tablet"
    if any(w in ua for w in ("mobile", "iphone", "android", "micromessenger")):
        return "phone"
    return "desktop"


async def record(
    session: AsyncSession,
    *,
    kind: Kind,
    user_id: int | None = None,
    visitor: str | None = None,
    merchant_id: int | None = None,
    subject_id: int | None = None,
    campaign_id: int | None = None,
    device: str = "",
    referrer: str = "",
    lat: float | None = None,
    lng: float | None = None,
    at: dt.datetime | None = None,
) -> MarketingEvent:
    """Add the event (the caller commits) and apply it to the person's segments and
    automations. Events of anonymous visitors wait for `claim_visitor`."""
    event = MarketingEvent(
        kind=kind.value,
        user_id=user_id,
        visitor=visitor,
        merchant_id=merchant_id,
        subject_id=subject_id,
        campaign_id=campaign_id,
        device=device[:10],
        referrer=referrer[:200],
        lat=lat,
        lng=lng,
        at=at or utcnow(),
    )
    session.add(event)
    await session.flush()
    if user_id is not None:
        await segments.on_event(session, user_id=user_id, kind=kind.value, merchant_id=merchant_id)
        await automations.on_event(session, event=event)
    return event


async def claim_visitor(session: AsyncSession, *, visitor: str, user_id: int) -> None:
    """A browser that scanned or clicked before signing in: its events become the person's."""
    claimed = await session.execute(
        update(MarketingEvent)
        .where(MarketingEvent.visitor == visitor, MarketingEvent.user_id.is_(None))
        .values(user_id=user_id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount:  # type: ignore[attr-defined]
        await segments.on_event(session, user_id=user_id, kind=None)
        await _start_claimed(session, visitor=visitor, user_id=user_id)


# Claimed events that still start automations: a poster scanned signed out and a sign-in on
# its landing page are minutes apart; a day covers coming back to it that evening. Older
# ones are history, not a reaction to greet (and a bot's cookie may hold thousands).
CLAIM_TRIGGER_WINDOW = dt.timedelta(days=1)
CLAIM_TRIGGER_LIMIT = 20


async def _start_claimed(session: AsyncSession, *, visitor: str, user_id: int) -> None:
    """Start the automations the visitor's recent events trigger, now that they have a
    person. The run key keeps a flow to one run per person (or per event) however often
    the same browser signs in."""
    recent = await session.scalars(
        select(MarketingEvent)
        .where(
            MarketingEvent.visitor == visitor,
            MarketingEvent.user_id == user_id,
            MarketingEvent.kind.in_(list(automations.TRIGGER_OF_KIND)),
            MarketingEvent.at >= utcnow() - CLAIM_TRIGGER_WINDOW,
        )
        .order_by(MarketingEvent.at.desc(), MarketingEvent.id.desc())
        .limit(CLAIM_TRIGGER_LIMIT)
        .execution_options(populate_existing=True)  # loaded before the UPDATE: stale user_id
    )
    for event in list(recent):
        await automations.on_event(session, event=event)


async def order_paid(session: AsyncSession, *, order: Order) -> None:
    """Called by payments when an order is paid: credit it to the touch that brought it,
    and let segments ("bought in category X") and automations ("first order") see it."""
    await attribution.credit(session, order=order)
    await record(
        session,
        kind=Kind.order_paid,
        user_id=order.user_id,
        merchant_id=order.merchant_id,
        subject_id=order.id,
    )
