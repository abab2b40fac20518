from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, UploadFile

from mobimart.catalog import brands, media
from mobimart.catalog.models import Brand, Media
from mobimart.catalog.schemas import BrandIn, BrandOut, BrandUpdate, FollowOut, MediaOut
from mobimart.catalog.view import media_url
from mobimart.merchants import service as merchants
from mobimart.settings import get_settings
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, page_params, split_page
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["brands"])


def _media_out(item: Media | None) -> MediaOut | None:
    return MediaOut(kind=item.kind, url=media_url(item)) if item else None


async def brands_out(session: Session, rows: list[Brand]) -> list[BrandOut]:
    """Brands with their logo and banner, their images found in one query."""
    images = await media.brand_images(session, brand_ids=[b.id for b in rows])
    return [
        BrandOut(
            id=brand.id,
            slug=brand.slug,
            name=brand.name,
            story=brand.story,
            merchant_id=brand.merchant_id,
            follower_count=brand.follower_count,
            logo=_media_out(images[brand.id].get("logo")),
            banner=_media_out(images[brand.id].get("banner")),
        )
        for brand in rows
    ]


async def brand_out(session: Session, brand: Brand) -> BrandOut:
    return (await brands_out(session, [brand]))[0]


@router.get("/brands")
async def list_brands(
    session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> Page[BrandOut]:
    rows = await brands.brands(session, before_id=page.before_id, limit=page.fetch)
    items, next_cursor = split_page(rows, page, key=lambda b: b.id)
    return Page(items=await brands_out(session, items), next_cursor=next_cursor)


@router.get("/brands/{slug}")
async def get_brand(slug: str, session: Session) -> BrandOut:
    return await brand_out(session, await brands.brand_by_slug(session, slug=slug))


@router.post("/merchants/{merchant_id}/brands", status_code=201)
async def create_merchant_brand(
    merchant_id: IdPath, body: BrandIn, user: CurrentUser, session: Session
) -> BrandOut:
    """A brand of the merchant's own; the merchant must be approved."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    brand = await brands.create_brand(session, merchant=merchant, **body.model_dump())
    return await brand_out(session, brand)


@router.post("/admin/brands", status_code=201)
async def create_platform_brand(body: BrandIn, admin: Admin, session: Session) -> BrandOut:
    brand = await brands.create_brand(session, merchant=None, **body.model_dump())
    return await brand_out(session, brand)


@router.patch("/brands/{brand_id}")
async def update_brand(
    brand_id: IdPath, body: BrandUpdate, user: CurrentUser, session: Session
) -> BrandOut:
    """The brand's merchant or an admin renames it or tells its story."""
    brand = await brands.editable_brand(session, brand_id=brand_id, user=user)
    brand = await brands.update_brand(session, brand=brand, **body.model_dump(exclude_unset=True))
    return await brand_out(session, brand)


@router.put("/brands/{brand_id}/{role}")
async def set_brand_image(
    brand_id: IdPath,
    role: Literal["logo", "banner"],
    file: Annotated[
        UploadFile, File(description="Logo: JPEG, PNG or WebP. Banner: also MP4, WebM")
    ],
    user: CurrentUser,
    session: Session,
) -> BrandOut:
    brand = await brands.editable_brand(session, brand_id=brand_id, user=user)
    data = await file.read(get_settings().video_max_bytes + 1)
    await media.set_brand_image(session, brand=brand, role=role, data=data)
    return await brand_out(session, brand)


@router.get("/me/brands")
async def followed_brands(user: CurrentUser, session: Session) -> list[BrandOut]:
    return await brands_out(session, await brands.followed(session, user_id=user.id))


@router.put("/me/brands/{brand_id}")
async def follow_brand(brand_id: IdPath, user: CurrentUser, session: Session) -> FollowOut:
    """Follow a brand (again: no change)."""
    brand = await brands.brand_by_id(session, brand_id=brand_id)
    count = await brands.follow(session, user=user, brand=brand)
    return FollowOut(following=True, follower_count=count)


@router.delete("/me/brands/{brand_id}")
async def unfollow_brand(brand_id: IdPath, user: CurrentUser, session: Session) -> FollowOut:
    brand = await brands.brand_by_id(session, brand_id=brand_id)
    count = await brands.unfollow(session, user=user, brand=brand)
    return FollowOut(following=False, follower_count=count)
