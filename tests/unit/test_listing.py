"""The listing index: filters, disjunctive facets, sorting and keyset paging."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mobimart.catalog.listing import Filters, Listing, Position, Sort
from mobimart.catalog.view import CategoryRef, ProductView, VariantView

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOME = CategoryRef(1, "home", "Home", "家居")
KITCHEN = CategoryRef(2, "kitchen", "Kitchen", "厨房")
GARDEN = CategoryRef(3, "garden", "Garden", "花园")


def view(pid: int, **kw: Any) -> ProductView:
    options = kw.pop("options", [{}])
    price = kw.pop("price", 1000)
    fields: dict[str, Any] = {
        "id": pid,
        "shop_id": 1,
        "shop_name": "Shop",
        "merchant_id": 1,
        "category_id": None,
        "categories": (),
        "brand_id": None,
        "brand_name": "",
        "brand_slug": "",
        "name": f"Product {pid}",
        "description": "",
        "tags": (),
        "price_minor": price,
        "currency": "CNY",
        "stock": 5,
        "sales": 0,
        "rating_count": 0,
        "rating_total": 0,
        "created_at": T0 + dt.timedelta(days=pid),
        "variants": tuple(
            VariantView(pid * 10 + i, f"S{pid}-{i}", o, price, 1) for i, o in enumerate(options)
        ),
        "media": (),
    }
    fields.update(kw)
    return ProductView(**fields)


def listing(*views: ProductView) -> Listing:
    index = Listing()
    index.apply(list(views), [])
    return index


def test_filters_combine_and_facets_count_the_other_choices() -> None:
    index = listing(
        view(1, brand_id=7, price=500, categories=(HOME, KITCHEN)),
        view(2, brand_id=7, price=1500, categories=(HOME, KITCHEN), stock=0),
        view(3, brand_id=8, price=2500, categories=(HOME, GARDEN)),
        view(4, brand_id=8, price=900, categories=(HOME,)),
        view(5, brand_id=9, price=900),
    )
    everything = index.query(Filters())
    assert everything.total == 5
    assert everything.facets.categories == [(1, 4)]  # roots only
    home = index.query(Filters(category=1))
    assert home.total == 4  # the whole subtree
    assert sorted(home.facets.categories) == [(2, 2), (3, 1)]
    chosen = index.query(Filters(category=1, brands=frozenset({7})))
    assert sorted(chosen.ids) == [1, 2]
    # The brand facet ignores the brand filter, so the other brands still show their counts.
    assert chosen.facets.brands == [(7, 2), (8, 2)]
    assert chosen.facets.in_stock == 1
    cheap = index.query(Filters(category=1, brands=frozenset({7, 8}), price_max=1000))
    assert sorted(cheap.ids) == [1, 4]
    assert index.query(Filters(in_stock=True, category=2)).ids == [1]


def test_options_match_any_value_of_one_option_and_all_options() -> None:
    index = listing(
        view(1, options=[{"colour": "red", "size": "M"}, {"colour": "blue", "size": "L"}]),
        view(2, options=[{"colour": "red", "size": "S"}]),
        view(3, options=[{"colour": "green", "size": "M"}]),
    )
    red = index.query(Filters(options=(("colour", frozenset({"red"})),)))
    assert sorted(red.ids) == [1, 2]
    assert dict(red.facets.options["colour"]) == {"red": 2, "blue": 1, "green": 1}
    assert dict(red.facets.options["size"]) == {"M": 1, "L": 1, "S": 1}
    both = index.query(
        Filters(options=(("colour", frozenset({"red", "green"})), ("size", frozenset({"M"}))))
    )
    assert sorted(both.ids) == [1, 3]
    assert index.query(Filters(options=(("colour", frozenset({"purple"})),))).ids == []


def test_sorts_and_rating_filter() -> None:
    index = listing(
        view(1, price=300, sales=5, rating_count=2, rating_total=10),
        view(2, price=100, sales=50, rating_count=1, rating_total=3),
        view(3, price=200, sales=0),
    )
    assert index.query(Filters(), sort=Sort.price_asc).ids == [2, 3, 1]
    assert index.query(Filters(), sort=Sort.price_desc).ids == [1, 3, 2]
    assert index.query(Filters(), sort=Sort.sales).ids == [2, 1, 3]
    assert index.query(Filters(), sort=Sort.newest).ids == [3, 2, 1]
    assert index.query(Filters(), sort=Sort.rating).ids == [1, 2, 3]
    assert index.query(Filters(min_rating=4)).ids == [1]
    assert index.query(Filters()).facets.ratings == [(4, 1), (3, 2), (2, 2)]


def test_search_rank_is_the_relevance_order_and_filters_still_apply() -> None:
    index = listing(view(1, brand_id=1), view(2, brand_id=2), view(3, brand_id=1))
    assert index.query(Filters(), ranked=[3, 2, 1]).ids == [3, 2, 1]
    assert index.query(Filters(brands=frozenset({1})), ranked=[3, 2, 1, 99]).ids == [3, 1]
    assert index.query(Filters(), ranked=[2, 3], sort=Sort.newest).ids == [3, 2]


def test_changes_and_removals_take_effect() -> None:
    index = listing(view(1, price=100), view(2, price=200))
    index.apply([view(1, price=900, brand_id=4)], [2])
    result = index.query(Filters())
    assert result.ids == [1]
    assert result.facets.brands == [(4, 1)]
    assert index.query(Filters(price_max=500)).ids == []


def test_price_buckets_cover_every_product_once() -> None:
    index = listing(*(view(i, price=p) for i, p in enumerate([150, 990, 1200, 4999, 25000], 1)))
    buckets = index.query(Filters()).facets.prices
    assert sum(b.count for b in buckets) == 5  # empty ranges are left out
    assert buckets[0].low is None
    assert buckets[-1].high is None
    for low, high in itertools.pairwise(buckets):
        assert low.high is not None
        assert high.low is not None
        assert high.low > low.high


@settings(max_examples=40, deadline=None)
@given(
    prices=st.lists(st.integers(1, 50), min_size=0, max_size=60),
    limit=st.integers(1, 7),
    sort=st.sampled_from(list(Sort)),
)
def test_paging_visits_every_match_once_in_order(prices: list[int], limit: int, sort: Sort) -> None:
    rng = random.Random(len(prices))
    index = listing(*(view(i, price=p, sales=rng.randint(0, 3)) for i, p in enumerate(prices, 1)))
    whole = index.query(Filters(), sort=sort, limit=1000).ids
    seen: list[int] = []
    after: Position | None = None
    while True:
        page = index.query(Filters(), sort=sort, after=after, limit=limit)
        seen += page.ids
        if page.next is None:
            break
        after = page.next
    assert seen == whole
    assert sorted(seen) == list(range(1, len(prices) + 1))
