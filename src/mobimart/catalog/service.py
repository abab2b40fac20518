from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog import domain
from mobimart.catalog.domain import ProductStatus
from mobimart.catalog.models import Brand, Category, Product, ProductChange, Shop, Variant
from mobimart.catalog.view import category_path
from mobimart.db import unique_or
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.merchants import service as merchants
from mobimart.merchants.domain import KycStatus
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings
from mobimart.text import clean_name


async def shop_for(session: AsyncSession, *, merchant: Merchant) -> Shop:
    """The merchant's storefront, opened on first use once the merchant is approved."""
    merchants.require_approved(merchant)
    existing = select(Shop).where(Shop.merchant_id == merchant.id)
    shop = await session.scalar(existing)
    if shop is None:
        try:
            async with unique_or(session, LookupError()):
                shop = Shop(merchant_id=merchant.id, name=merchant.name)
                session.add(shop)
        except LookupError:  # opened by a parallel request a moment ago
            shop = await session.scalar(existing)
    assert shop is not None
    return shop


async def create_product(
    session: AsyncSession,
    *,
    merchant: Merchant,
    name: str,
    price_minor: int | None = None,
    stock: int = 0,
    variants: Sequence[domain.VariantSpec] | None = None,
    category_id: int | None = None,
    brand_id: int | None = None,
    tags: Sequence[str] = (),
    description: str = "",
    publish: bool = False,
) -> Product:
    """A product with its variants; without variants, one is made from price and stock."""
    if variants is None:
        if price_minor is None:
            raise DomainError("invalid_price", "Give a price or variants with prices.", 422)
        specs = None
        name = domain.check_product(name, price_minor, stock)
    else:
        specs = domain.check_variants(variants)
        price_minor, stock = domain.summary(specs)
        name = domain.check_product(name, price_minor, stock)
    shop = await shop_for(session, merchant=merchant)
    await _check_refs(session, category_id=category_id, brand_id=brand_id)
    product = Product(
        merchant_id=merchant.id,
        shop_id=shop.id,
        category_id=category_id,
        brand_id=brand_id,
        name=name,
        description=description,
        tags=domain.check_tags(tags),
        price_minor=price_minor,
        currency=get_settings().default_currency,
        stock=stock,
        status=ProductStatus.published if publish else ProductStatus.draft,
    )
    async with unique_or(session, _DUPLICATE_SKU):
        session.add(product)
        await session.flush()
        for position, spec in enumerate(
            specs or [domain.VariantSpec(domain.default_sku(product.id), price_minor, stock)]
        ):
            session.add(variant_of(product, spec, position))
        await session.flush()
    session.add(ProductChange(product_id=product.id))
    await session.commit()
    return product


_DUPLICATE_SKU = Conflict("duplicate_sku", "The shop already has a product with one of these SKUs.")


def variant_of(product: Product, spec: domain.VariantSpec, position: int = 0) -> Variant:
    return Variant(
        product_id=product.id,
        merchant_id=product.merchant_id,
        sku=spec.sku,
        options=spec.options,
        price_minor=spec.price_minor,
        stock=spec.stock,
        position=position,
    )


async def _check_refs(
    session: AsyncSession, *, category_id: int | None, brand_id: int | None
) -> None:
    if category_id is not None and await session.get(Category, category_id) is None:
        raise DomainError("unknown_category", "That category does not exist.", 422)
    if brand_id is not None and await session.get(Brand, brand_id) is None:
        raise DomainError("unknown_brand", "That brand does not exist.", 422)


async def merchant_product(
    session: AsyncSession, *, merchant_id: int, product_id: int, hold: bool = False
) -> Product:
    """One of the merchant's products. `hold`: keep it (a row lock on PostgreSQL, the write
    lock on SQLite) until commit, so parallel changes to it run one after another instead of
    each deciding from what it read before the other wrote."""
    if hold:
        await session.execute(
            update(Product)
            .where(Product.id == product_id, Product.merchant_id == merchant_id)
            .values(id=Product.id)
            .execution_options(synchronize_session=False)
        )
    product = await session.scalar(
        select(Product).where(Product.id == product_id, Product.merchant_id == merchant_id)
    )
    if product is None:
        raise NotFound("Product")
    return product


async def update_product(
    session: AsyncSession,
    *,
    merchant: Merchant,
    product_id: int,
    changes: dict[str, Any],
) -> Product:
    """Change some of name, description, category_id, brand_id, tags, and price_minor and
    stock of a product with a single variant (others set prices per variant)."""
    product = await merchant_product(
        session, merchant_id=merchant.id, product_id=product_id, hold=True
    )
    variants = list(await session.scalars(select(Variant).where(Variant.product_id == product.id)))
    if {"price_minor", "stock"} & changes.keys() and len(variants) != 1:
        raise Conflict(
            "has_variants", "This product has several variants: set each variant's price."
        )
    name = domain.check_product(
        changes.get("name", product.name),
        changes.get("price_minor", product.price_minor),
        changes.get("stock", product.stock),
    )
    await _check_refs(
        session,
        category_id=changes.get("category_id", product.category_id),
        brand_id=changes.get("brand_id", product.brand_id),
    )
    if "tags" in changes:
        changes["tags"] = domain.check_tags(changes["tags"])
    for key, value in changes.items():
        setattr(product, key, value)
    product.name = name
    for variant in variants:  # the single one, when price or stock changed
        variant.price_minor, variant.stock = product.price_minor, product.stock
    session.add(ProductChange(product_id=product.id))
    await session.commit()
    return product


async def variants_of(session: AsyncSession, *, product_id: int) -> list[Variant]:
    return list(
        await session.scalars(
            select(Variant)
            .where(Variant.product_id == product_id)
            .order_by(Variant.position, Variant.id)
        )
    )


async def set_variants(
    session: AsyncSession,
    *,
    merchant: Merchant,
    product_id: int,
    variants: Sequence[domain.VariantSpec],
) -> list[Variant]:
    """Replace the product's variants, matched by SKU: a SKU kept keeps its variant (and the
    orders that point at it), a new SKU is added, a SKU left out is removed."""
    specs = domain.check_variants(variants)
    product = await merchant_product(
        session, merchant_id=merchant.id, product_id=product_id, hold=True
    )
    existing = {v.sku.casefold(): v for v in await variants_of(session, product_id=product.id)}
    wanted = {spec.sku.casefold() for spec in specs}
    async with unique_or(session, _DUPLICATE_SKU):
        for key, variant in existing.items():
            if key not in wanted:
                await session.delete(variant)
        await session.flush()
        for position, spec in enumerate(specs):
            kept = existing.get(spec.sku.casefold())
            if kept is None:
                session.add(variant_of(product, spec, position))
            else:
                kept.sku, kept.options = spec.sku, spec.options
                kept.price_minor, kept.stock = spec.price_minor, spec.stock
                kept.position = position
        await session.flush()
    product.price_minor, product.stock = domain.summary(specs)
    session.add(ProductChange(product_id=product.id))
    await session.commit()
    return await variants_of(session, product_id=product.id)


async def set_status(
    session: AsyncSession, *, merchant: Merchant, product_id: int, action: str
) -> Product:
    """Publish or archive. Publishing needs an approved merchant."""
    sources, target = domain.transition(action)
    if target is ProductStatus.published:
        merchants.require_approved(merchant)
    product = await merchant_product(session, merchant_id=merchant.id, product_id=product_id)
    moved = await session.execute(
        update(Product)
        .where(Product.id == product.id, Product.status.in_([s.value for s in sources]))
        .values(status=target.value)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "invalid_transition", f"A product that is {product.status} cannot be {action}ed."
        )
    session.add(ProductChange(product_id=product.id))
    await session.commit()
    await session.refresh(product)
    return product


async def merchant_products(
    session: AsyncSession, *, merchant_id: int, before_id: int | None, limit: int
) -> list[Product]:
    stmt = select(Product).where(Product.merchant_id == merchant_id).order_by(Product.id.desc())
    if before_id is not None:
        stmt = stmt.where(Product.id < before_id)
    return list(await session.scalars(stmt.limit(limit)))


async def open_shops(session: AsyncSession) -> list[Shop]:
    rows = await session.scalars(
        select(Shop)
        .join(Merchant, Merchant.id == Shop.merchant_id)
        .where(Merchant.status == KycStatus.approved)
        .order_by(Shop.id)
    )
    return list(rows)


async def open_shop(session: AsyncSession, *, shop_id: int) -> Shop:
    shop = await session.scalar(
        select(Shop)
        .join(Merchant, Merchant.id == Shop.merchant_id)
        .where(Shop.id == shop_id, Merchant.status == KycStatus.approved)
    )
    if shop is None:
        raise NotFound("Shop")
    return shop


async def categories(session: AsyncSession) -> list[Category]:
    return list(await session.scalars(select(Category).order_by(Category.id)))


MAX_CATEGORY_DEPTH = 4


async def create_category(
    session: AsyncSession, *, slug: str, name_en: str, name_zh: str, parent_id: int | None
) -> Category:
    depth = 1
    if parent_id is not None:
        parents = {c.id: c for c in await categories(session)}
        if parent_id not in parents:
            raise DomainError("unknown_category", "The parent category does not exist.", 422)
        depth += len(category_path(parents, parent_id))
    if depth > MAX_CATEGORY_DEPTH:
        raise DomainError(
            "too_deep", f"Categories nest at most {MAX_CATEGORY_DEPTH} levels deep.", 422
        )
    category = Category(
        slug=slug,
        name_en=clean_name(name_en, 60),
        name_zh=clean_name(name_zh, 60),
        parent_id=parent_id,
    )
    async with unique_or(session, Conflict("category_exists", f"Slug “{slug}” is taken.")):
        session.add(category)
    await session.commit()
    return category


async def category_by_slug(session: AsyncSession, *, slug: str) -> Category:
    category = await session.scalar(select(Category).where(Category.slug == slug[:60]))
    if category is None:
        raise NotFound("Category")
    return category


# --- change feed (read by each process's catalogue replica) ---------------------------------


async def changes_since(
    session: AsyncSession, *, after_id: int, also: list[int] | None = None, limit: int = 1000
) -> list[ProductChange]:
    """Changes after `after_id`, plus the ids in `also` (gaps a reader is still waiting for)."""
    newer = ProductChange.id > after_id
    where = or_(newer, ProductChange.id.in_(also)) if also else newer
    rows = await session.scalars(
        select(ProductChange).where(where).order_by(ProductChange.id).limit(limit)
    )
    return list(rows)
