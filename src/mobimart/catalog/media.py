"""Product and brand images and videos: type sniffed from the bytes, size-limited, stored
under an unguessable name with the type's extension, and served with HTTP range requests so a
phone can seek in a video without downloading it."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog.models import Brand, Media, ProductChange
from mobimart.catalog.service import merchant_product
from mobimart.errors import DomainError, NotFound
from mobimart.infra.storage import sniff_content_type
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/webm": "webm",
}
CONTENT_TYPES = {ext: content_type for content_type, ext in EXTENSIONS.items()}
KEY = re.compile(r"[0-9a-f]{32}\.(jpg|png|webp|mp4|webm)")
MAX_PER_PRODUCT = 9


def sniff_media(data: bytes) -> str | None:
    if data[4:8] == b"ftyp":  # ISO base media (MP4): a box of type ftyp comes first
        return "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in data[:64]:  # EBML with DocType webm
        return "video/webm"
    found = sniff_content_type(data)
    return found if found in EXTENSIONS else None


def path_of(key: str, *, area: str = "") -> Path:
    """Where the file of `key` lives: public media at the top, files served only after a check
    (review photos) in their own `area`, out of reach of the public /media route."""
    if not KEY.fullmatch(key):
        raise NotFound("Media")
    root = get_settings().media_dir
    return (root / area if area else root) / key[:2] / key


def check(data: bytes, *, videos: bool) -> tuple[str, str]:
    """Refuse what may not be stored, before anything is written; (content type, kind)."""
    settings = get_settings()
    if not data:
        raise DomainError("empty_file", "The file is empty.", 422)
    content_type = sniff_media(data)
    allowed = "JPEG, PNG, WebP" + (", MP4 or WebM" if videos else "")
    if content_type is None or (content_type.startswith("video/") and not videos):
        raise DomainError("unsupported_file_type", f"Only {allowed} files are accepted.", 415)
    kind = "video" if content_type.startswith("video/") else "image"
    limit = settings.video_max_bytes if kind == "video" else settings.upload_max_bytes
    if len(data) > limit:
        raise DomainError(
            "file_too_large", f"The file is {len(data)} bytes; the limit is {limit} bytes.", 413
        )
    return content_type, kind


def store(data: bytes, *, videos: bool, area: str = "") -> tuple[str, str, str]:
    """Check and save the bytes under a new random name; (storage key, content type, kind).
    The caller deletes the file (`path_of(key, area=area).unlink`) if its row is not kept."""
    content_type, kind = check(data, videos=videos)
    key = f"{secrets.token_hex(16)}.{EXTENSIONS[content_type]}"
    path = path_of(key, area=area)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return key, content_type, kind


async def _commit_or_forget(session: AsyncSession, key: str) -> None:
    """Commit the row of a file just stored; if the commit fails, delete the file, so no file
    outlives its row."""
    try:
        await session.commit()
    except Exception:
        path_of(key).unlink(missing_ok=True)
        raise


async def add_product_media(
    session: AsyncSession, *, merchant: Merchant, product_id: int, data: bytes
) -> Media:
    # Held until commit: parallel uploads count one after another and the limit holds.
    product = await merchant_product(
        session, merchant_id=merchant.id, product_id=product_id, hold=True
    )
    count = await session.scalar(
        select(func.count()).select_from(Media).where(Media.product_id == product.id)
    )
    if (count or 0) >= MAX_PER_PRODUCT:
        raise DomainError(
            "too_many_media", f"A product has at most {MAX_PER_PRODUCT} images and videos.", 422
        )
    key, content_type, kind = store(data, videos=True)
    media = Media(
        merchant_id=merchant.id,
        product_id=product.id,
        role="gallery",
        kind=kind,
        content_type=content_type,
        size=len(data),
        storage_key=key,
        position=count or 0,
    )
    session.add(media)
    session.add(ProductChange(product_id=product.id))
    await _commit_or_forget(session, key)
    return media


async def delete_product_media(
    session: AsyncSession, *, merchant: Merchant, product_id: int, media_id: int
) -> None:
    """Remove one of the product's media. Removing it again is not an error (a retried
    request on a flaky network)."""
    await merchant_product(session, merchant_id=merchant.id, product_id=product_id)
    media = await session.scalar(
        select(Media).where(
            Media.id == media_id,
            Media.product_id == product_id,
            Media.merchant_id == merchant.id,
        )
    )
    if media is None:
        return
    await session.delete(media)
    session.add(ProductChange(product_id=product_id))
    await session.commit()
    path_of(media.storage_key).unlink(missing_ok=True)


async def product_media(session: AsyncSession, *, product_id: int) -> list[Media]:
    return list(
        await session.scalars(
            select(Media).where(Media.product_id == product_id).order_by(Media.position, Media.id)
        )
    )


async def set_brand_image(session: AsyncSession, *, brand: Brand, role: str, data: bytes) -> Media:
    """The brand's logo (an image) or banner (an image or a video), replacing the last one."""
    key, content_type, kind = store(data, videos=role == "banner")
    old = list(
        await session.scalars(select(Media).where(Media.brand_id == brand.id, Media.role == role))
    )
    for media in old:
        await session.delete(media)
    media = Media(
        merchant_id=brand.merchant_id,
        brand_id=brand.id,
        role=role,
        kind=kind,
        content_type=content_type,
        size=len(data),
        storage_key=key,
    )
    session.add(media)
    await _commit_or_forget(session, key)
    for media_gone in old:
        path_of(media_gone.storage_key).unlink(missing_ok=True)
    return media


async def brand_images(
    session: AsyncSession, *, brand_ids: list[int]
) -> dict[int, dict[str, Media]]:
    """Brand id -> role (logo, banner) -> its media, for several brands in one query."""
    found: dict[int, dict[str, Media]] = {i: {} for i in brand_ids}
    for m in await session.scalars(select(Media).where(Media.brand_id.in_(brand_ids))):
        assert m.brand_id is not None
        found[m.brand_id][m.role] = m
    return found
