"""Brands: a public page with story, logo and banner, and followers. A merchant creates and
manages its brands; platform admins manage every brand."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import rules, segments
from mobimart.catalog import domain
from mobimart.catalog.models import Brand, BrandFollow, Product, ProductChange
from mobimart.db import UTCDateTime, unique_or, utcnow
from mobimart.errors import Conflict, Forbidden, NotFound
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.text import clean

STORY_MAX = 5000


async def create_brand(
    session: AsyncSession, *, name: str, story: str = "", merchant: Merchant | None
) -> Brand:
    """A brand owned by `merchant` (approved), or by the platform when None (admins)."""
    if merchant is not None:
        merchants.require_approved(merchant)
    name = domain.check_brand_name(name)
    slug = domain.slugify(name) or f"brand-{secrets.token_hex(3)}"
    brand = Brand(
        slug=slug,
        name=name,
        story=clean(story, STORY_MAX),
        merchant_id=merchant.id if merchant else None,
    )
    async with unique_or(
        session, Conflict("brand_exists", f"A brand with the address “{slug}” exists already.")
    ):
        session.add(brand)
    await session.commit()
    return brand


async def editable_brand(session: AsyncSession, *, brand_id: int, user: User) -> Brand:
    """A brand the user may change: an admin, or a member of the merchant that owns it.
    Others are told it is not theirs (brands are public, so 403 rather than 404)."""
    brand = await brand_by_id(session, brand_id=brand_id)
    if user.is_admin:
        return brand
    if brand.merchant_id is not None:
        try:
            await merchants.membership(session, merchant_id=brand.merchant_id, user=user)
            return brand
        except NotFound:
            pass
    raise Forbidden("Only the brand's merchant or a platform admin can change it.")


async def update_brand(
    session: AsyncSession, *, brand: Brand, name: str | None = None, story: str | None = None
) -> Brand:
    if story is not None:
        brand.story = clean(story, STORY_MAX)
    if name is not None and domain.check_brand_name(name) != brand.name:
        brand.name = domain.check_brand_name(name)
        await touch_products(session, brand_id=brand.id)  # listings show the new name
    await session.commit()
    return brand


async def touch_products(session: AsyncSession, *, brand_id: int) -> None:
    """Put the brand's products on the change feed, in the caller's transaction."""
    await session.execute(
        insert(ProductChange).from_select(
            ["product_id", "changed_at"],
            select(Product.id, literal(utcnow(), UTCDateTime())).where(
                Product.brand_id == brand_id
            ),
        )
    )


async def brand_by_id(session: AsyncSession, *, brand_id: int) -> Brand:
    brand = await session.get(Brand, brand_id)
    if brand is None:
        raise NotFound("Brand")
    return brand


async def brand_by_slug(session: AsyncSession, *, slug: str) -> Brand:
    brand = await session.scalar(select(Brand).where(Brand.slug == slug[:60]))
    if brand is None:
        raise NotFound("Brand")
    return brand


async def brands(session: AsyncSession, *, before_id: int | None, limit: int) -> list[Brand]:
    stmt = select(Brand).order_by(Brand.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(Brand.id < before_id)
    return list(await session.scalars(stmt))


async def usable_by(session: AsyncSession, *, merchant_id: int) -> list[Brand]:
    """The brands a merchant may put on its products: its own and the platform's."""
    rows = await session.scalars(
        select(Brand)
        .where(or_(Brand.merchant_id == merchant_id, Brand.merchant_id.is_(None)))
        .order_by(Brand.id.desc())
    )
    return list(rows)


async def follow(session: AsyncSession, *, user: User, brand: Brand) -> int:
    """Follow a brand; following twice counts once. The follower count moves in the same
    transaction as the follow row, so parallel taps never miscount."""
    try:
        async with unique_or(session, LookupError()):
            await session.execute(insert(BrandFollow).values(user_id=user.id, brand_id=brand.id))
        await session.execute(
            update(Brand)
            .where(Brand.id == brand.id)
            .values(follower_count=Brand.follower_count + 1)
        )
    except LookupError:  # already following
        pass
    await segments.on_event(session, user_id=user.id, kind=rules.FOLLOW)
    await session.commit()
    return await _count(session, brand.id)


async def unfollow(session: AsyncSession, *, user: User, brand: Brand) -> int:
    gone = await session.execute(
        delete(BrandFollow).where(BrandFollow.user_id == user.id, BrandFollow.brand_id == brand.id)
    )
    if gone.rowcount == 1:  # type: ignore[attr-defined]
        await session.execute(
            update(Brand)
            .where(Brand.id == brand.id)
            .values(follower_count=Brand.follower_count - 1)
        )
    await segments.on_event(session, user_id=user.id, kind=rules.FOLLOW)
    await session.commit()
    return await _count(session, brand.id)


async def unfollow_all(session: AsyncSession, *, user_id: int) -> None:
    """For account deletion: every follow goes and every count drops, in the caller's
    transaction."""
    followed = list(
        await session.scalars(select(BrandFollow.brand_id).where(BrandFollow.user_id == user_id))
    )
    await session.execute(delete(BrandFollow).where(BrandFollow.user_id == user_id))
    if followed:
        await session.execute(
            update(Brand)
            .where(Brand.id.in_(followed))
            .values(follower_count=Brand.follower_count - 1)
        )


async def _count(session: AsyncSession, brand_id: int) -> int:
    return int(await session.scalar(select(Brand.follower_count).where(Brand.id == brand_id)) or 0)


async def is_following(session: AsyncSession, *, user_id: int, brand_id: int) -> bool:
    found = await session.scalar(
        select(BrandFollow.brand_id).where(
            BrandFollow.user_id == user_id, BrandFollow.brand_id == brand_id
        )
    )
    return found is not None


async def followed(session: AsyncSession, *, user_id: int) -> list[Brand]:
    return list(
        await session.scalars(
            select(Brand)
            .join(BrandFollow, BrandFollow.brand_id == Brand.id)
            .where(BrandFollow.user_id == user_id)
            .order_by(BrandFollow.created_at.desc())
        )
    )
