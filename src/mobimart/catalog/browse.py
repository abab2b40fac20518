"""Browsing and searching the catalogue with filters, facets and sorting, served from this
process's replica of the catalogue (no database query per request once it is loaded)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog import feed
from mobimart.catalog.listing import Filters, Listing, Position, Result, Sort
from mobimart.catalog.view import CategoryRef, ProductView
from mobimart.errors import DomainError, NotFound
from mobimart.search import service as search
from mobimart.settings import get_settings


@dataclass
class Names:
    """What facet entries are called, learnt from the views as they arrive."""

    brands: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (name, slug)
    shops: dict[int, str] = field(default_factory=dict)
    categories: dict[int, CategoryRef] = field(default_factory=dict)


class Catalogue:
    """The replica's follower for browsing: the listing index, facet names, rendered product
    cards (dropped when their product changes) and rendered responses (dropped at any change,
    since a change can move any listing)."""

    def __init__(self) -> None:
        self.listing = Listing()
        self.names = Names()
        self.cards: dict[int, bytes] = {}
        self.responses: dict[str, bytes] = {}

    def rendered(self, key: str, render: Callable[[], bytes]) -> bytes:
        """The response kept under `key`, or `render()`'s, kept until the next change."""
        body = self.responses.get(key)
        if body is None:
            body = render()
            limit = get_settings().listing_cache_entries
            if limit:
                if len(self.responses) >= limit:
                    del self.responses[next(iter(self.responses))]  # the oldest
                self.responses[key] = body
        return body

    def apply(self, changed: list[ProductView], removed: list[int]) -> None:
        self.responses.clear()
        self.listing.apply(changed, removed)
        for view in changed:
            if view.brand_id is not None:
                self.names.brands[view.brand_id] = (view.brand_name, view.brand_slug)
            self.names.shops[view.shop_id] = view.shop_name
            for ref in view.categories:
                self.names.categories[ref.id] = ref
            self.cards.pop(view.id, None)
        for product_id in removed:
            self.cards.pop(product_id, None)


def catalogue(live: feed.Replica) -> Catalogue:
    return feed.follower(live, "browse", Catalogue)


async def warm(session: AsyncSession) -> None:
    """Load the replica and build the listing and search indexes now (at start-up)."""
    live = await feed.replica(session)
    catalogue(live)
    search.index(live)


@dataclass(frozen=True)
class Browse:
    items: list[ProductView]
    result: Result
    names: Names
    next_cursor: str | None
    query: str = ""

    @property
    def total(self) -> int:
        return self.result.total


def browse(
    live: feed.Replica,
    *,
    filters: Filters,
    sort: Sort = Sort.relevance,
    cursor: str | None = None,
    limit: int = 20,
    query: str = "",
) -> Browse:
    """A page of visible products matching the filters (and the query, if any), with facets."""
    if (
        filters.price_min is not None
        and filters.price_max is not None
        and filters.price_min > filters.price_max
    ):
        raise DomainError("invalid_price_range", "The lowest price is above the highest.", 422)
    after = parse_cursor(cursor, sort) if cursor else None
    ranked = search.ids(live, query=query) if query else None
    found = catalogue(live)
    result = found.listing.query(filters, sort=sort, after=after, limit=limit, ranked=ranked)
    return Browse(
        items=[live.views[i] for i in result.ids],
        result=result,
        names=found.names,
        next_cursor=cursor_of(sort, result.next) if result.next else None,
        query=query,
    )


def product(live: feed.Replica, *, product_id: int) -> ProductView:
    """A visible product, from the replica."""
    view = live.views.get(product_id)
    if view is None:
        raise NotFound("Product")
    return view


# A listing cursor carries the sort it was made for: a key means nothing under another sort.
def cursor_of(sort: Sort, position: Position) -> str:
    raw = json.dumps([sort.value, position.key, position.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_cursor(cursor: str, sort: Sort) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, key, product_id = json.loads(raw)
        if (
            made_for == sort.value
            and isinstance(key, int | float)
            and not isinstance(key, bool)
            and math.isfinite(key)
            and isinstance(product_id, int)
            and not isinstance(product_id, bool)
        ):
            return Position(float(key), product_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        pass
    raise DomainError(
        "invalid_cursor", "The cursor is not one this API gave out for this sort.", 422
    )
