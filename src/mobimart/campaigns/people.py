"""What marketing holds about one person, for the data-subject rights: export and erasure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns import draws
from mobimart.campaigns.models import (
    AutomationRun,
    Draw,
    DrawEntry,
    DrawPrize,
    MarketingEvent,
    Segment,
    SegmentMember,
)
from mobimart.catalog import follows
from mobimart.engagement import points
from mobimart.engagement.models import PointsEntry
from mobimart.notifications.models import PushSubscription


async def export(session: AsyncSession, *, user_id: int) -> dict[str, Any]:
    events = await session.scalars(
        select(MarketingEvent).where(MarketingEvent.user_id == user_id).order_by(MarketingEvent.id)
    )
    segments = await session.scalars(
        select(Segment.name)
        .join(SegmentMember, SegmentMember.segment_id == Segment.id)
        .where(SegmentMember.user_id == user_id)
        .order_by(Segment.id)
    )
    entries = await session.execute(
        select(Draw.name, DrawEntry.outcome, DrawPrize.name, DrawEntry.created_at)
        .join(Draw, Draw.id == DrawEntry.draw_id)
        .outerjoin(DrawPrize, DrawPrize.id == DrawEntry.prize_id)
        .where(DrawEntry.user_id == user_id)
        .order_by(DrawEntry.id)
    )
    devices = await session.scalars(
        select(PushSubscription).where(PushSubscription.user_id == user_id)
    )
    ledger = await session.scalars(
        select(PointsEntry).where(PointsEntry.user_id == user_id).order_by(PointsEntry.id)
    )
    return {
        "marketing_events": [
            {
                "kind": e.kind,
                "at": e.at.isoformat(),
                "device": e.device,
                "location": [e.lat, e.lng] if e.lat is not None else None,
            }
            for e in events
        ],
        "segments": list(segments),
        "draw_entries": [
            {"draw": draw, "outcome": outcome, "prize": prize, "at": at.isoformat()}
            for draw, outcome, prize, at in entries
        ],
        "push_devices": [
            {"label": d.label, "created_at": d.created_at.isoformat()} for d in devices
        ],
        "points": {
            "balance": await points.balance(session, user_id=user_id),
            "entries": [
                {"delta": p.delta, "reason": p.reason, "at": p.created_at.isoformat()}
                for p in ledger
            ],
        },
        "following_shops": [
            {"shop": s.name} for s in await follows.followed(session, user_id=user_id)
        ],
    }


async def forget(session: AsyncSession, *, user_id: int) -> None:
    """Erase behaviour and addresses, in the caller's transaction: events, segment
    memberships (counts move with them), runs of automations, push devices, follows, prize
    addresses. Draw results stay (the public check needs them, without who entered); points
    entries stay with the anonymised account, like its orders."""
    member_of = list(
        await session.scalars(
            select(SegmentMember.segment_id).where(SegmentMember.user_id == user_id)
        )
    )
    await session.execute(delete(SegmentMember).where(SegmentMember.user_id == user_id))
    if member_of:
        await session.execute(
            update(Segment)
            .where(Segment.id.in_(member_of))
            .values(member_count=Segment.member_count - 1)
            .execution_options(synchronize_session=False)
        )
    await session.execute(delete(MarketingEvent).where(MarketingEvent.user_id == user_id))
    await session.execute(delete(AutomationRun).where(AutomationRun.user_id == user_id))
    await session.execute(delete(PushSubscription).where(PushSubscription.user_id == user_id))
    await follows.unfollow_all(session, user_id=user_id)
    await draws.forget(session, user_id=user_id)
