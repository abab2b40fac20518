"""Filtered, faceted and sorted product listings over an in-memory columnar index. Pure (no
I/O): the catalogue replica feeds it product views (catalog/feed.py).

Every product has a slot; each attribute is a numpy column over slots, so a filter is one
vectorised comparison and a facet is one bincount. Facets on brand, shop and options are
disjunctive: each is counted with every filter but its own, so choosing one brand still shows
how many products the other brands have.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from mobimart.catalog.view import ProductView
from mobimart.text import clean_name

MAX_DEPTH = 4  # category levels indexed; deeper categories count as their level-4 ancestor
FACET_VALUES = 20  # per facet, the most common; values the shopper chose are always kept

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


class Sort(enum.StrEnum):
    relevance = "relevance"  # search rank for a query; otherwise what sells and pleases most
    price_asc = "price_asc"
    price_desc = "price_desc"
    sales = "sales"
    newest = "newest"
    rating = "rating"


@dataclass(frozen=True)
class Filters:
    category: int | None = None
    shops: frozenset[int] = frozenset()
    brands: frozenset[int] = frozenset()
    options: tuple[tuple[str, frozenset[str]], ...] = ()  # (name, accepted values); AND across
    price_min: int | None = None
    price_max: int | None = None
    min_rating: float | None = None
    in_stock: bool = False


def option_choices(items: Iterable[str]) -> tuple[tuple[str, frozenset[str]], ...]:
    """`name:value` choices ("colour:red") grouped by option name, as Filters.options takes
    them; a choice without both parts is left out."""
    chosen: dict[str, set[str]] = {}
    for item in items:
        name, _, value = item.partition(":")
        if name and value:
            chosen.setdefault(clean_name(name, 30), set()).add(clean_name(value, 30))
    return tuple((name, frozenset(values)) for name, values in sorted(chosen.items()))


@dataclass(frozen=True)
class PriceBucket:
    low: int | None  # inclusive; None: no lower bound
    high: int | None  # inclusive; None: no upper bound
    count: int


@dataclass(frozen=True)
class Facets:
    categories: list[tuple[int, int]] = field(default_factory=list)  # sub-category, count
    brands: list[tuple[int, int]] = field(default_factory=list)
    shops: list[tuple[int, int]] = field(default_factory=list)
    options: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    prices: list[PriceBucket] = field(default_factory=list)
    ratings: list[tuple[int, int]] = field(default_factory=list)  # (stars and up, count)
    in_stock: int = 0


@dataclass(frozen=True)
class Position:
    """Where a page ends: the sort key and id of its last product."""

    key: float
    id: int


@dataclass(frozen=True)
class Result:
    ids: list[int]
    total: int
    facets: Facets
    next: Position | None


T = TypeVar("T")


class _Codes(Generic[T]):
    """Dense codes for sparse ids, so counts are a bincount."""

    def __init__(self) -> None:
        self.code_of: dict[T, int] = {}
        self.values: list[T] = []

    def code(self, value: T) -> int:
        found = self.code_of.get(value)
        if found is None:
            found = self.code_of[value] = len(self.values)
            self.values.append(value)
        return found


class Listing:
    def __init__(self) -> None:
        self._slot_of: dict[int, int] = {}
        self._size = 0
        capacity = 1024
        self._id = np.zeros(capacity, dtype=np.int64)
        self._live = np.zeros(capacity, dtype=bool)
        self._price = np.zeros(capacity, dtype=np.int64)
        self._stock = np.zeros(capacity, dtype=np.int64)
        self._sales = np.zeros(capacity, dtype=np.int64)
        self._rating = np.zeros(capacity, dtype=np.float64)
        self._created = np.zeros(capacity, dtype=np.float64)
        self._brand = np.full(capacity, -1, dtype=np.int64)
        self._shop = np.full(capacity, -1, dtype=np.int64)
        self._level = np.full((MAX_DEPTH, capacity), -1, dtype=np.int64)
        self._pairs_of: list[tuple[int, ...]] = []
        self._brands: _Codes[int] = _Codes()
        self._shops: _Codes[int] = _Codes()
        self._categories: _Codes[int] = _Codes()
        self._pairs: _Codes[tuple[str, str]] = _Codes()
        self._depth_of: dict[int, int] = {}
        # Derived on demand, dropped at every change.
        self._pair_columns: tuple[I64, I64] | None = None
        self._subsets: dict[int | None, tuple[I64, I64, I64]] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    # --- keeping current -------------------------------------------------------------------

    def apply(self, changed: list[ProductView], removed: list[int]) -> None:
        for view in changed:
            self._put(view)
        for product_id in removed:
            slot = self._slot_of.pop(product_id, None)
            if slot is not None:
                self._live[slot] = False
        self._pair_columns = None
        self._subsets.clear()

    def _put(self, view: ProductView) -> None:
        slot = self._slot_of.get(view.id)
        if slot is None:
            slot = self._slot_of[view.id] = self._size
            self._size += 1
            if slot >= len(self._id):
                self._grow()
            self._pairs_of.append(())
        self._id[slot] = view.id
        self._live[slot] = True
        self._price[slot] = view.price_minor
        self._stock[slot] = view.stock
        self._sales[slot] = view.sales
        self._rating[slot] = view.rating
        self._created[slot] = view.created_at.timestamp()
        self._brand[slot] = -1 if view.brand_id is None else self._brands.code(view.brand_id)
        self._shop[slot] = self._shops.code(view.shop_id)
        self._level[:, slot] = -1
        for depth, category in enumerate(view.category_path[:MAX_DEPTH]):
            self._depth_of[category] = depth
            self._level[depth, slot] = self._categories.code(category)
        self._pairs_of[slot] = tuple(
            sorted(
                {
                    self._pairs.code((name, value))
                    for variant in view.variants
                    for name, value in variant.options.items()
                }
            )
        )

    def _grow(self) -> None:
        capacity = len(self._id) * 2
        for name in ("_id", "_live", "_price", "_stock", "_sales", "_rating", "_created"):
            column = getattr(self, name)
            grown = np.zeros(capacity, dtype=column.dtype)
            grown[: len(column)] = column
            setattr(self, name, grown)
        for name in ("_brand", "_shop"):
            column = getattr(self, name)
            grown = np.full(capacity, -1, dtype=np.int64)
            grown[: len(column)] = column
            setattr(self, name, grown)
        level = np.full((MAX_DEPTH, capacity), -1, dtype=np.int64)
        level[:, : self._level.shape[1]] = self._level
        self._level = level

    # --- querying --------------------------------------------------------------------------

    def query(
        self,
        filters: Filters,
        *,
        sort: Sort = Sort.relevance,
        after: Position | None = None,
        limit: int = 20,
        ranked: Sequence[int] | None = None,
    ) -> Result:
        """One page of products matching `filters`, with facets over all matches. `ranked`
        (search results, best first) restricts the listing to those products and is the
        relevance order."""
        slots, pair_slot, pair_code = self._base(filters.category, ranked)
        rank = np.arange(len(slots), dtype=np.float64) if ranked is not None else None
        masks = self._masks(filters, slots, pair_slot, pair_code)
        everything = _all(masks.values(), len(slots))
        facets = self._facets(filters, slots, pair_slot, pair_code, masks)
        matched = slots[everything]
        key = self._key(sort, matched, None if rank is None else rank[everything])
        ids = self._id[matched]
        if after is not None:
            later = (key > after.key) | ((key == after.key) & (ids < after.id))
            key, ids = key[later], ids[later]
        order = _first(key, ids, limit + 1)
        page = [int(i) for i in ids[order[:limit]]]
        more = len(order) > limit
        last = order[limit - 1] if more else None
        return Result(
            ids=page,
            total=int(everything.sum()),
            facets=facets,
            next=Position(float(key[last]), int(ids[last])) if last is not None else None,
        )

    def _base(self, category: int | None, ranked: Sequence[int] | None) -> tuple[I64, I64, I64]:
        """The slots a listing starts from, with their option pairs."""
        if ranked is not None:
            slots = np.fromiter(
                (s for s in (self._slot_of.get(i) for i in ranked) if s is not None),
                dtype=np.int64,
            )
            if category is not None:
                slots = slots[self._in_category(category, slots)]
            return (slots, *self._pairs_for(slots))
        found = self._subsets.get(category)
        if found is None:
            every = np.flatnonzero(self._live[: self._size]).astype(np.int64)
            slots = every if category is None else every[self._in_category(category, every)]
            found = self._subsets[category] = (slots, *self._pairs_for(slots))
        return found

    def _in_category(self, category: int, slots: I64) -> Bools:
        depth = self._depth_of.get(category)
        code = self._categories.code_of.get(category)
        if depth is None or code is None or depth >= MAX_DEPTH:
            return np.zeros(len(slots), dtype=bool)
        inside: Bools = self._level[depth, slots] == code
        return inside

    def _pairs_for(self, slots: I64) -> tuple[I64, I64]:
        """(position in `slots`, pair code) for every option value of those slots."""
        if self._pair_columns is None:
            counts = [len(p) for p in self._pairs_of]
            self._pair_columns = (
                np.repeat(np.arange(len(counts), dtype=np.int64), counts),
                np.fromiter(
                    (c for p in self._pairs_of for c in p), dtype=np.int64, count=sum(counts)
                ),
            )
        all_slot, all_code = self._pair_columns
        position = np.full(max(self._size, 1), -1, dtype=np.int64)
        position[slots] = np.arange(len(slots))
        where = position[all_slot] >= 0
        return position[all_slot[where]], all_code[where]

    def _masks(
        self, filters: Filters, slots: I64, pair_slot: I64, pair_code: I64
    ) -> dict[str, Bools]:
        masks: dict[str, Bools] = {}
        if filters.price_min is not None or filters.price_max is not None:
            price = self._price[slots]
            mask = np.ones(len(slots), dtype=bool)
            if filters.price_min is not None:
                mask &= price >= filters.price_min
            if filters.price_max is not None:
                mask &= price <= filters.price_max
            masks["price"] = mask
        if filters.min_rating is not None:
            masks["rating"] = self._rating[slots] >= filters.min_rating
        if filters.in_stock:
            masks["stock"] = self._stock[slots] > 0
        if filters.brands:
            masks["brand"] = _member(self._brand[slots], self._brands, filters.brands)
        if filters.shops:
            masks["shop"] = _member(self._shop[slots], self._shops, filters.shops)
        for name, values in filters.options:
            codes = [
                self._pairs.code_of[(name, v)] for v in values if (name, v) in self._pairs.code_of
            ]
            mask = np.zeros(len(slots), dtype=bool)
            mask[pair_slot[np.isin(pair_code, codes)]] = True
            masks["option:" + name] = mask
        return masks

    def _facets(
        self,
        filters: Filters,
        slots: I64,
        pair_slot: I64,
        pair_code: I64,
        masks: dict[str, Bools],
    ) -> Facets:
        def but(*names: str) -> Bools:
            return _all((m for k, m in masks.items() if k not in names), len(slots))

        everything = but()
        matched = slots[everything]
        return Facets(
            categories=self._category_counts(filters.category, matched),
            brands=_counts(self._brand[slots[but("brand")]], self._brands, filters.brands),
            shops=_counts(self._shop[slots[but("shop")]], self._shops, filters.shops),
            options=self._option_counts(filters, pair_slot, pair_code, but),
            prices=_price_buckets(self._price[slots[but("price")]]),
            ratings=[
                (stars, int((self._rating[slots[but("rating")]] >= stars).sum()))
                for stars in (4, 3, 2)
            ],
            in_stock=int((self._stock[slots[but("stock")]] > 0).sum()),
        )

    def _category_counts(self, category: int | None, matched: I64) -> list[tuple[int, int]]:
        depth = 0 if category is None else self._depth_of.get(category, MAX_DEPTH) + 1
        if depth >= MAX_DEPTH:
            return []
        return _counts(self._level[depth, matched], self._categories)

    def _option_counts(
        self, filters: Filters, pair_slot: I64, pair_code: I64, but: Callable[..., Bools]
    ) -> dict[str, list[tuple[str, int]]]:
        chosen = {name for name, _ in filters.options}
        counts: dict[str, list[tuple[str, int]]] = {}

        def tally(keep: Bools, only: str | None) -> None:
            codes = pair_code[keep[pair_slot]]
            found = np.bincount(codes, minlength=len(self._pairs.values))
            for code in np.flatnonzero(found):
                name, value = self._pairs.values[code]
                if (only is None and name not in chosen) or name == only:
                    counts.setdefault(name, []).append((value, int(found[code])))

        tally(but(), None)
        for name in chosen:
            tally(but("option:" + name), name)
        picked = dict(filters.options)
        for name, values in counts.items():
            values.sort(key=lambda vc: (-vc[1], vc[0]))
            keep = picked.get(name, frozenset())
            counts[name] = [vc for i, vc in enumerate(values) if i < FACET_VALUES or vc[0] in keep]
        return dict(sorted(counts.items()))

    def _key(self, sort: Sort, slots: I64, rank: F64 | None) -> F64:
        """Ascending sort key; ties go to the higher id (the newer product)."""
        if sort is Sort.relevance:
            if rank is not None:
                return rank
            return -(np.log1p(self._sales[slots]) + self._rating[slots])
        if sort is Sort.price_asc:
            return self._price[slots].astype(np.float64)
        if sort is Sort.price_desc:
            return -self._price[slots].astype(np.float64)
        if sort is Sort.sales:
            return -self._sales[slots].astype(np.float64)
        if sort is Sort.newest:
            return -self._created[slots]
        return -self._rating[slots]


def _all(masks: Iterable[Bools], size: int) -> Bools:
    result = np.ones(size, dtype=bool)
    for mask in masks:
        result &= mask
    return result


def _member(column: I64, codes: _Codes[int], wanted: frozenset[int]) -> Bools:
    return np.isin(column, [codes.code_of[w] for w in wanted if w in codes.code_of])


def _counts(
    column: I64, codes: _Codes[int], chosen: frozenset[int] = frozenset()
) -> list[tuple[int, int]]:
    """(value, count), most common first: the first FACET_VALUES and the chosen ones."""
    column = column[column >= 0]
    found = np.bincount(column, minlength=len(codes.values))
    present = np.flatnonzero(found)
    if len(present) > FACET_VALUES:
        top = present[np.argsort(-found[present], kind="stable")[:FACET_VALUES]]
        keep = [codes.code_of[c] for c in chosen if c in codes.code_of and found[codes.code_of[c]]]
        present = np.union1d(top, np.array(keep, dtype=np.int64))
    pairs = [(codes.values[c], int(found[c])) for c in present]
    return sorted(pairs, key=lambda pc: (-pc[1], pc[0]))


def _first(key: F64, ids: I64, n: int) -> I64:
    """Positions of the first n by (key ascending, id descending), in that order."""
    if len(key) > 4 * n:
        kth = np.partition(key, n - 1)[n - 1]
        near = np.flatnonzero(key <= kth)
        order = near[np.lexsort((-ids[near], key[near]))]
        return order[:n]
    return np.lexsort((-ids, key))[:n]


def _round_price(minor: float) -> int:
    """Two significant digits of the major unit: 1234 -> 1200 (12.00)."""
    if minor < 100:
        return 100
    scale = 10 ** max(int(math.log10(minor)) - 1, 2)
    return int(round(minor / scale) * scale)


def _price_buckets(prices: I64) -> list[PriceBucket]:
    """Up to four ranges at round prices near the quartiles, with their counts."""
    if len(prices) == 0:
        return []
    cuts = sorted({_round_price(float(q)) for q in np.quantile(prices, [0.25, 0.5, 0.75])})
    bounds: list[tuple[int | None, int | None]] = []
    low: int | None = None
    for cut in cuts:
        bounds.append((low, cut - 1))
        low = cut
    bounds.append((low, None))
    buckets = []
    for lo, hi in bounds:
        inside = np.ones(len(prices), dtype=bool)
        if lo is not None:
            inside &= prices >= lo
        if hi is not None:
            inside &= prices <= hi
        if count := int(inside.sum()):
            buckets.append(PriceBucket(lo, hi, count))
    return buckets
