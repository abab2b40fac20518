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
from mobimart.catalog.models import Category, Product, ProductChange
from mobimart.catalog.service import shop_for
from mobimart.errors import DomainError
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings
from mobimart.text import clean

BATCH = 500
COLUMNS = ("name", "price", "stock", "category", "description")


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


def _row(raw: dict[str, str | None], categories: dict[str, int]) -> dict[str, object]:
    price_minor = parse_price(raw.get("price") or "")
    stock = int((raw.get("stock") or "0").strip() or 0)
    name = domain.check_product(clean(raw.get("name") or "", 1000), price_minor, stock)
    slug = (raw.get("category") or "").strip()
    if slug and slug not in categories:
        raise DomainError("unknown_category", f"No category {slug!r}.", 422)
    return {
        "name": name,
        "price_minor": price_minor,
        "stock": stock,
        "category_id": categories.get(slug) if slug else None,
        "description": clean(raw.get("description") or "", 5000),
    }


async def import_products(
    session: AsyncSession,
    *,
    merchant: Merchant,
    lines: Iterable[str],
    publish: bool,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Rows of a CSV with a header: name, price (major units), stock, category (slug),
    description. Only an approved merchant imports."""
    shop = await shop_for(session, merchant=merchant)
    categories = {c.slug: c.id for c in await session.scalars(select(Category))}
    reader = csv.DictReader(lines)
    missing = {"name", "price"} - set(reader.fieldnames or ())
    if missing:
        raise DomainError(
            "bad_csv", "The CSV needs a header with at least: " + ", ".join(sorted(missing)), 422
        )
    report = ImportReport()
    status = ProductStatus.published if publish else ProductStatus.draft
    currency = get_settings().default_currency
    pending: list[Product] = []

    async def flush() -> None:
        session.add_all(pending)
        await session.flush()
        session.add_all(ProductChange(product_id=p.id) for p in pending)
        await session.commit()
        report.imported += len(pending)
        if progress:
            progress(len(pending))
        pending.clear()

    for raw in reader:
        try:
            fields = _row(raw, categories)
        except (DomainError, ValueError) as exc:
            reason = exc.detail if isinstance(exc, DomainError) else "Stock is not a whole number."
            report.errors.append((reader.line_num, reason))
            if progress:
                progress(1)
            continue
        pending.append(
            Product(
                merchant_id=merchant.id, shop_id=shop.id, currency=currency, status=status, **fields
            )
        )
        if len(pending) >= BATCH:
            await flush()
    if pending:
        await flush()
    return report


def lines_of(data: bytes) -> io.StringIO:
    """CSV bytes as text; a UTF-8 byte-order mark (Excel's habit) is dropped."""
    return io.StringIO(data.decode("utf-8-sig"))
