"""Bulk product import from CSV. A bad row is reported with its line and reason and never
stops the good ones; good rows are committed in batches."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog import domain
from mobimart.catalog.domain import ProductStatus
from mobimart.catalog.models import Brand, Category, Product, ProductChange, Variant
from mobimart.catalog.service import shop_for, variant_of
from mobimart.errors import DomainError
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings
from mobimart.text import clean

BATCH = 500
COLUMNS = ("name", "price", "stock", "category", "brand", "tags", "sku", "description")


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)


def parse_price(text: str) -> int:
    """ "12.5" -> 1250 minor units; more than two decimals or a non-number is an error."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise DomainError("invalid_price", f"Price {text!r} is not a number.", 422) from None
    minor = value * 100
    if minor != minor.to_integral_value():
        raise DomainError("invalid_price", "A price has at most two decimals.", 422)
    return int(minor)


@dataclass
class _Known:
    categories: dict[str, int]
    brands: dict[str, int]
    skus: set[str]  # the merchant's SKUs, casefolded, with those of earlier rows


def _row(raw: dict[str, str | None], known: _Known) -> tuple[dict[str, object], str | None]:
    """A product's fields and its SKU (None: made from the product id)."""
    price_minor = parse_price(raw.get("price") or "")
    stock = int((raw.get("stock") or "0").strip() or 0)
    name = domain.check_product(clean(raw.get("name") or "", 1000), price_minor, stock)
    slug = (raw.get("category") or "").strip()
    if slug and slug not in known.categories:
        raise DomainError("unknown_category", f"No category {slug!r}.", 422)
    brand = (raw.get("brand") or "").strip()
    if brand and brand not in known.brands:
        raise DomainError("unknown_brand", f"No brand {brand!r}.", 422)
    sku = (raw.get("sku") or "").strip() or None
    if sku is not None:
        domain.check_variants([domain.VariantSpec(sku, price_minor, stock)])
        if sku.casefold() in known.skus:
            raise DomainError("duplicate_sku", f"SKU {sku!r} is taken.", 422)
        known.skus.add(sku.casefold())
    tags = [t for t in (raw.get("tags") or "").split("|") if t.strip()]
    fields = {
        "name": name,
        "price_minor": price_minor,
        "stock": stock,
        "category_id": known.categories.get(slug) if slug else None,
        "brand_id": known.brands.get(brand) if brand else None,
        "tags": domain.check_tags(tags),
        "description": clean(raw.get("description") or "", 5000),
    }
    return fields, sku


async def import_products(
    session: AsyncSession,
    *,
    merchant: Merchant,
    lines: Iterable[str],
    publish: bool,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Rows of a CSV with a header: name, price (major units), stock, category (slug), brand
    (slug), tags (separated by |), sku, description. Each row is a product with one variant.
    Only an approved merchant imports."""
    shop = await shop_for(session, merchant=merchant)
    known = _Known(
        categories={c.slug: c.id for c in await session.scalars(select(Category))},
        brands={b.slug: b.id for b in await session.scalars(select(Brand))},
        skus={
            sku.casefold()
            for sku in await session.scalars(
                select(Variant.sku).where(Variant.merchant_id == merchant.id)
            )
        },
    )
    reader = csv.DictReader(lines)
    missing = {"name", "price"} - set(reader.fieldnames or ())
    if missing:
        raise DomainError(
            "bad_csv", "The CSV needs a header with at least: " + ", ".join(sorted(missing)), 422
        )
    report = ImportReport()
    status = ProductStatus.published if publish else ProductStatus.draft
    currency = get_settings().default_currency
    pending: list[tuple[Product, str | None]] = []

    async def flush() -> None:
        session.add_all(p for p, _ in pending)
        await session.flush()
        session.add_all(
            variant_of(
                p, domain.VariantSpec(sku or domain.default_sku(p.id), p.price_minor, p.stock)
            )
            for p, sku in pending
        )
        session.add_all(ProductChange(product_id=p.id) for p, _ in pending)
        await session.commit()
        report.imported += len(pending)
        if progress:
            progress(len(pending))
        pending.clear()

    for raw in reader:
        try:
            fields, sku = _row(raw, known)
        except (DomainError, ValueError) as exc:
            reason = exc.detail if isinstance(exc, DomainError) else "Stock is not a whole number."
            report.errors.append((reader.line_num, reason))
            if progress:
                progress(1)
            continue
        product = Product(
            merchant_id=merchant.id, shop_id=shop.id, currency=currency, status=status, **fields
        )
        pending.append((product, sku))
        if len(pending) >= BATCH:
            await flush()
    if pending:
        await flush()
    return report


def lines_of(data: bytes) -> io.StringIO:
    """CSV bytes as text; a UTF-8 byte-order mark (Excel's habit) is dropped."""
    return io.StringIO(data.decode("utf-8-sig"))
