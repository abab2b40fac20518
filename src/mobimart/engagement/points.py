"""Points: awarded once per key, a balance that is the sum of a person's entries."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.db import insert_or_skip, utcnow
from mobimart.engagement.models import PointsEntry


async def award(
    session: AsyncSession,
    *,
    user_id: int,
    merchant_id: int | None,
    delta: int,
    reason: str,
    key: str,
) -> bool:
    """Add `delta` points (negative spends them) unless an entry with `key` exists; True if
    this call added it. The caller commits."""
    added = await session.execute(
        insert_or_skip(session, PointsEntry, index_elements=["key"])
        .values(
            user_id=user_id,
            merchant_id=merchant_id,
            delta=delta,
            reason=reason[:40],
            key=key[:80],
            created_at=utcnow(),
        )
        .returning(PointsEntry.id)
    )
    return added.scalar_one_or_none() is not None


async def balance(session: AsyncSession, *, user_id: int, merchant_id: int | None = None) -> int:
    """A person's points, all of them or those of one shop."""
    query = select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
        PointsEntry.user_id == user_id
    )
    if merchant_id is not None:
        query = query.where(PointsEntry.merchant_id == merchant_id)
    return int(await session.scalar(query) or 0)
