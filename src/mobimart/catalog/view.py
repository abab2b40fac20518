"""What shoppers see of a product, in one immutable record: the read model that listings,
search and product pages are served from (loaded once per change, not per request)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog.domain import ProductStatus
from mobimart.catalog.models import Brand, Category, Media, Product, Shop, Variant
from mobimart.merchants.domain import KycStatus
from mobimart.merchants.models import Merchant


@dataclass(frozen=True)
class VariantView:
    id: int
    sku: str
    options: dict[str, str]
    price_minor: int
    stock: int


@dataclass(frozen=True)
class MediaView:
    kind: str  # image | video
    url: str


@dataclass(frozen=True)
class CategoryRef:
    id: int
    slug: str
    name_en: str
    name_zh: str


@dataclass(frozen=True)
class ProductView:
    id: int
    shop_id: int
    shop_name: str
    merchant_id: int
    category_id: int | None
    categories: tuple[CategoryRef, ...]  # root first, the product's own category last
    brand_id: int | None
    brand_name: str
    brand_slug: str
    name: str
    description: str
    tags: tuple[str, ...]
    price_minor: int
    currency: str
    stock: int
    sales: int
    rating_count: int
    rating_total: int
    created_at: dt.datetime
    variants: tuple[VariantView, ...]
    media: tuple[MediaView, ...]

    @property
    def category_path(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.categories)

    @property
    def rating(self) -> float:
        """Average stars, 0 when nobody has rated it yet."""
        return self.rating_total / self.rating_count if self.rating_count else 0.0

    @property
    def image(self) -> str | None:
        return next((m.url for m in self.media if m.kind == "image"), None)

    def options(self) -> dict[str, list[str]]:
        """Option name -> its values in variant order ("colour" -> ["red", "blue"])."""
        found: dict[str, list[str]] = {}
        for variant in self.variants:
            for name, value in variant.options.items():
                values = found.setdefault(name, [])
                if value not in values:
                    values.append(value)
        return found

    def search_fields(self) -> dict[str, str]:
        return {
            "title": self.name,
            "brand": self.brand_name,
            "category": " ".join(
                name for c in self.categories[-1:] for name in (c.name_en, c.name_zh) if name
            ),
            "tags": " ".join(self.tags),
            "description": self.description,
        }


def media_url(media: Media) -> str:
    return f"/media/{media.storage_key}"


def visible() -> list[ColumnElement[bool]]:
    """Shoppers see published products of approved merchants."""
    return [Product.status == ProductStatus.published, Merchant.status == KycStatus.approved]


async def load_views(
    session: AsyncSession, *, product_ids: list[int] | None = None
) -> dict[int, ProductView]:
    """Views of the visible products among `product_ids` (all when None). A handful of
    queries whatever the number of products."""
    stmt = (
        select(Product, Shop.name)
        .join(Merchant, Merchant.id == Product.merchant_id)
        .join(Shop, Shop.id == Product.shop_id)
        .where(*visible())
    )
    if product_ids is not None:
        stmt = stmt.where(Product.id.in_(product_ids))
    rows = (await session.execute(stmt)).all()
    if not rows:
        return {}
    ids = [product.id for product, _ in rows]
    in_ids = ids if product_ids is not None else None
    variants: defaultdict[int, list[VariantView]] = defaultdict(list)
    v_stmt = select(Variant).order_by(Variant.product_id, Variant.position, Variant.id)
    for v in await session.scalars(
        v_stmt if in_ids is None else v_stmt.where(Variant.product_id.in_(in_ids))
    ):
        variants[v.product_id].append(
            VariantView(v.id, v.sku, dict(v.options), v.price_minor, v.stock)
        )
    media: defaultdict[int, list[MediaView]] = defaultdict(list)
    m_stmt = (
        select(Media)
        .where(Media.product_id.is_not(None))
        .order_by(Media.product_id, Media.position, Media.id)
    )
    for m in await session.scalars(
        m_stmt if in_ids is None else m_stmt.where(Media.product_id.in_(in_ids))
    ):
        assert m.product_id is not None
        media[m.product_id].append(MediaView(m.kind, media_url(m)))
    categories = {c.id: c for c in await session.scalars(select(Category))}
    brand_ids = {p.brand_id for p, _ in rows if p.brand_id is not None}
    brands = (
        {b.id: b for b in await session.scalars(select(Brand).where(Brand.id.in_(brand_ids)))}
        if brand_ids
        else {}
    )
    views: dict[int, ProductView] = {}
    for product, shop_name in rows:
        path = category_path(categories, product.category_id)
        refs = tuple(
            CategoryRef(c, categories[c].slug, categories[c].name_en, categories[c].name_zh)
            for c in path
        )
        brand = brands.get(product.brand_id) if product.brand_id is not None else None
        views[product.id] = ProductView(
            id=product.id,
            shop_id=product.shop_id,
            shop_name=shop_name,
            merchant_id=product.merchant_id,
            category_id=product.category_id,
            categories=refs,
            brand_id=brand.id if brand else None,
            brand_name=brand.name if brand else "",
            brand_slug=brand.slug if brand else "",
            name=product.name,
            description=product.description,
            tags=tuple(product.tags or ()),
            price_minor=product.price_minor,
            currency=product.currency,
            stock=product.stock,
            sales=product.sales,
            rating_count=product.rating_count,
            rating_total=product.rating_total,
            created_at=product.created_at,
            variants=tuple(variants[product.id]),
            media=tuple(media[product.id]),
        )
    return views


def category_path(categories: dict[int, Category], category_id: int | None) -> tuple[int, ...]:
    path: list[int] = []
    while category_id is not None and category_id in categories and category_id not in path:
        path.append(category_id)
        category_id = categories[category_id].parent_id
    return tuple(reversed(path))
