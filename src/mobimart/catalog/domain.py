"""Product rules. Pure."""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mobimart.errors import DomainError
from mobimart.text import clean_name


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


# --- variants ------------------------------------------------------------------------------

MAX_VARIANTS = 50
MAX_OPTIONS = 3
OPTION_MAX = 30
_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class VariantSpec:
    sku: str
    price_minor: int
    stock: int
    options: dict[str, str] = field(default_factory=dict)


def check_variants(variants: Sequence[VariantSpec]) -> list[VariantSpec]:
    """Variants as stored: 1 to 50, unique SKUs, the same option names on every variant, no two
    with the same option values. Names and values are single-spaced and bounded."""
    if not 1 <= len(variants) <= MAX_VARIANTS:
        raise DomainError("invalid_variants", f"A product has 1 to {MAX_VARIANTS} variants.", 422)
    checked: list[VariantSpec] = []
    skus: set[str] = set()
    combos: set[tuple[tuple[str, str], ...]] = set()
    names: tuple[str, ...] | None = None
    for v in variants:
        if not _SKU.fullmatch(v.sku):
            raise DomainError(
                "invalid_sku",
                f"SKU {v.sku!r}: letters, digits, '.', '_' or '-', up to 64, starting with a "
                "letter or digit.",
                422,
            )
        if v.sku.casefold() in skus:
            raise DomainError("duplicate_sku", f"SKU {v.sku!r} appears twice.", 422)
        skus.add(v.sku.casefold())
        check_product("-", v.price_minor, v.stock)
        options = {_option(k): _option(val) for k, val in v.options.items()}
        if len(options) > MAX_OPTIONS:
            raise DomainError("invalid_options", f"At most {MAX_OPTIONS} options.", 422)
        if names is None:
            names = tuple(sorted(options))
        elif tuple(sorted(options)) != names:
            raise DomainError("invalid_options", "Every variant has the same option names.", 422)
        combo = tuple(sorted(options.items()))
        if combo in combos:
            raise DomainError("duplicate_variant", "Two variants have the same option values.", 422)
        combos.add(combo)
        checked.append(VariantSpec(v.sku, v.price_minor, v.stock, options))
    return checked


def _option(text: str) -> str:
    value = clean_name(str(text), OPTION_MAX + 1)
    if not 1 <= len(value) <= OPTION_MAX:
        raise DomainError(
            "invalid_options", f"Option names and values have 1 to {OPTION_MAX} characters.", 422
        )
    return value


def default_sku(product_id: int) -> str:
    """The SKU of the one variant a product without options gets."""
    return f"P{product_id}"


def summary(variants: Iterable[VariantSpec]) -> tuple[int, int]:
    """(lowest price, total stock): what listings show and filter on."""
    items = list(variants)
    return min(v.price_minor for v in items), sum(v.stock for v in items)


# --- tags and brands -----------------------------------------------------------------------

MAX_TAGS = 10
TAG_MAX = 30


def check_tags(tags: Iterable[str]) -> list[str]:
    """Single-spaced, de-duplicated ignoring case, first spelling kept, at most 10."""
    seen: dict[str, str] = {}
    for tag in tags:
        value = clean_name(str(tag), TAG_MAX + 1)
        if not 1 <= len(value) <= TAG_MAX:
            raise DomainError("invalid_tags", f"A tag has 1 to {TAG_MAX} characters.", 422)
        seen.setdefault(value.casefold(), value)
    if len(seen) > MAX_TAGS:
        raise DomainError("invalid_tags", f"At most {MAX_TAGS} tags.", 422)
    return list(seen.values())


BRAND_NAME_MAX = 80
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    """An ASCII URL slug; names with no Latin letters (e.g. 中文) get an empty slug, which the
    caller replaces."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")[:60].strip("-")


def check_brand_name(name: str) -> str:
    value = clean_name(name, BRAND_NAME_MAX + 1)
    if not 1 <= len(value) <= BRAND_NAME_MAX:
        raise DomainError(
            "invalid_name", f"A brand name has 1 to {BRAND_NAME_MAX} characters.", 422
        )
    return value
