"""Shop follows: a person following a shop (its news, and draws open only to followers).
The caller commits; following twice, or unfollowing a shop not followed, changes nothing."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns import rules, segments
from mobimart.catalog.models import Shop, ShopFollow
from mobimart.db import insert_or_skip, utcnow


async def _merchant_of(session: AsyncSession, shop_id: int) -> int | None:
    """A follow makes the person the shop's merchant's contact (its segments cover them)."""
    return await session.scalar(select(Shop.merchant_id).where(Shop.id == shop_id))


async def follow(session: AsyncSession, *, user_id: int, shop_id: int) -> bool:
    """True if this call started the follow."""
    added = await session.execute(
        insert_or_skip(session, ShopFollow, index_elements=["user_id", "shop_id"])
        .values(user_id=user_id, shop_id=shop_id, created_at=utcnow())
        .returning(ShopFollow.shop_id)
    )
    if added.scalar_one_or_none() is None:
        return False
    await segments.on_event(
        session,
        user_id=user_id,
        kind=rules.FOLLOW,
        merchant_id=await _merchant_of(session, shop_id),
    )
    return True


async def unfollow(session: AsyncSession, *, user_id: int, shop_id: int) -> bool:
    """True if the person was following."""
    gone = await session.execute(
        delete(ShopFollow).where(ShopFollow.user_id == user_id, ShopFollow.shop_id == shop_id)
    )
    if not gone.rowcount:  # type: ignore[attr-defined]
        return False
    await segments.on_event(
        session,
        user_id=user_id,
        kind=rules.FOLLOW,
        merchant_id=await _merchant_of(session, shop_id),
    )
    return True


async def follows(session: AsyncSession, *, user_id: int, shop_id: int) -> bool:
    found = await session.scalar(
        select(ShopFollow.shop_id).where(
            ShopFollow.user_id == user_id, ShopFollow.shop_id == shop_id
        )
    )
    return found is not None


async def count(session: AsyncSession, *, shop_id: int) -> int:
    """Followers, counted: shops keep no counter column, and the shop_id index answers it."""
    n = await session.scalar(
        select(func.count()).select_from(ShopFollow).where(ShopFollow.shop_id == shop_id)
    )
    return int(n or 0)


async def followed(session: AsyncSession, *, user_id: int) -> list[Shop]:
    rows = await session.scalars(
        select(Shop)
        .join(ShopFollow, ShopFollow.shop_id == Shop.id)
        .where(ShopFollow.user_id == user_id)
        .order_by(ShopFollow.created_at.desc())
    )
    return list(rows)


async def unfollow_all(session: AsyncSession, *, user_id: int) -> None:
    """For account deletion, in the caller's transaction."""
    await session.execute(delete(ShopFollow).where(ShopFollow.user_id == user_id))
