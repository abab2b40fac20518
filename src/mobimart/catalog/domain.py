"""Product rules. Pure."""

from __future__ import annotations

import enum

from mobimart.errors import DomainError


class ProductStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    archived = "archived"


MAX_PRICE_MINOR = 100_000_000_00  # 100 million in major units: above is a typo, not a product
MAX_STOCK = 10_000_000
NAME_MAX = 200  # marketplace titles run long: 1,500 of 54,667 real ones exceed 120


def check_product(name: str, price_minor: int, stock: int) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= NAME_MAX:
        raise DomainError("invalid_name", f"A product name has 1 to {NAME_MAX} characters.", 422)
    if not 0 < price_minor <= MAX_PRICE_MINOR:
        raise DomainError("invalid_price", "The price must be above zero and realistic.", 422)
    if not 0 <= stock <= MAX_STOCK:
        raise DomainError("invalid_stock", f"Stock is 0 to {MAX_STOCK}.", 422)
    return name


_TRANSITIONS = {
    "publish": ({ProductStatus.draft, ProductStatus.archived}, ProductStatus.published),
    "archive": ({ProductStatus.draft, ProductStatus.published}, ProductStatus.archived),
}


def transition(action: str) -> tuple[frozenset[ProductStatus], ProductStatus]:
    """The statuses an action starts from, and the one it leads to."""
    sources, target = _TRANSITIONS[action]
    return frozenset(sources), target
