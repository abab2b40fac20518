"""Pricing rules: examples for each kind, and properties that hold for any cart."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from mobimart.promotions.domain import Kind, Line, Promotion, Scope, price, spread

NOW = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)


def line(
    key: int, unit: int, qty: int = 1, shop: int = 1, categories: set[int] | None = None
) -> Line:
    return Line(key, key, shop, unit, qty, frozenset(categories or ()))


def test_catalogue_promotion_changes_the_shown_price_and_the_best_one_wins() -> None:
    promotions = [
        Promotion(1, "10% off", Kind.percent, Scope.catalogue, value=1000),
        Promotion(2, "¥5 off", Kind.fixed, Scope.catalogue, value=500),
        Promotion(
            3, "later", Kind.fixed, Scope.catalogue, value=900, starts_at=NOW + dt.timedelta(days=1)
        ),
    ]
    priced = price([line(1, 10000, 2), line(2, 3000)], promotions, now=NOW)
    assert [p.unit_price for p in priced.lines] == [9000, 2500]
    assert priced.subtotal == 9000 * 2 + 2500


def test_spend_save_coupon_with_code_and_threshold() -> None:
    coupon = Promotion(
        1, "满100减20", Kind.spend_save, Scope.order, value=2000, threshold=10000, code="SAVE20"
    )
    cart = [line(1, 6000), line(2, 3000)]
    assert price(cart, [coupon], now=NOW).total == 9000  # no code given
    assert price(cart, [coupon], now=NOW, codes=frozenset({"SAVE20"})).not_applied == (
        (1, "below_threshold"),
    )
    bigger = [line(1, 6000), line(2, 4000)]
    priced = price(bigger, [coupon], now=NOW, codes=frozenset({"SAVE20"}))
    assert priced.total == 8000
    assert [d.amount for p in priced.lines for d in p.discounts] == [1200, 800]  # in proportion


def test_percentage_cap_free_shipping_and_combining() -> None:
    promotions = [
        Promotion(
            1,
            "20% off, at most ¥30",
            Kind.percent,
            Scope.order,
            value=2000,
            cap=3000,
            priority=5,
            combines=True,
        ),
        Promotion(
            2, "free shipping", Kind.free_shipping, Scope.order, threshold=5000, combines=True
        ),
        Promotion(3, "exclusive ¥50", Kind.fixed, Scope.order, value=5000, priority=1),
    ]
    priced = price([line(1, 20000)], promotions, now=NOW, shipping=1000)
    assert [d.amount for d in priced.discounts] == [3000, 1000]
    assert (3, "does_not_combine") in priced.not_applied
    assert priced.total == 20000 + 1000 - 3000 - 1000


def test_scope_budget_and_uses() -> None:
    shop_only = Promotion(1, "shop 2", Kind.fixed, Scope.order, value=500, shop_id=2, combines=True)
    tight = Promotion(
        2, "budget", Kind.fixed, Scope.order, value=900, budget_left=300, combines=True
    )
    used_up = Promotion(3, "used", Kind.fixed, Scope.order, value=100, uses_left=0, combines=True)
    mine = Promotion(4, "once each", Kind.fixed, Scope.order, value=100, combines=True)
    priced = price(
        [line(1, 1000, shop=1), line(2, 1000, shop=2)],
        [shop_only, tight, used_up, mine],
        now=NOW,
        uses_left_for_person={4: 0},
    )
    assert {d.promotion_id: d.amount for d in priced.discounts} == {1: 500, 2: 300}
    # The budgeted ¥3 is spread over what is left of each line: ¥10 and ¥5.
    assert [sum(d.amount for d in p.discounts) for p in priced.lines] == [200, 600]


@given(
    amount=st.integers(0, 10**7), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=20)
)
def test_spread_adds_up_exactly_and_never_exceeds_a_share(amount: int, weights: list[int]) -> None:
    shares = spread(amount, weights)
    if sum(weights):
        assert sum(shares) == amount
        for share, weight in zip(shares, weights, strict=True):
            assert abs(share - amount * weight / sum(weights)) < 1
    else:
        assert shares == [0] * len(weights)


promotion_strategy = st.builds(
    Promotion,
    id=st.integers(1, 6),
    name=st.just("p"),
    kind=st.sampled_from(list(Kind)),
    scope=st.sampled_from(list(Scope)),
    value=st.integers(0, 20_000),
    threshold=st.integers(0, 30_000),
    cap=st.none() | st.integers(0, 5_000),
    shop_id=st.none() | st.integers(1, 2),
    priority=st.integers(0, 3),
    combines=st.booleans(),
    budget_left=st.none() | st.integers(0, 5_000),
)


@settings(max_examples=1000)
@given(
    lines=st.lists(
        st.builds(
            Line,
            key=st.integers(1, 10**6),
            product_id=st.integers(1, 50),
            shop_id=st.integers(1, 2),
            unit_price=st.integers(1, 50_000),
            quantity=st.integers(1, 5),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda line: line.key,
    ),
    promotions=st.lists(promotion_strategy, max_size=6, unique_by=lambda p: p.id),
    shipping=st.integers(0, 2_000),
)
def test_any_cart_prices_to_a_consistent_non_negative_total(
    lines: list[Line], promotions: list[Promotion], shipping: int
) -> None:
    priced = price(lines, promotions, now=NOW, shipping=shipping)
    assert priced.total >= 0
    for p in priced.lines:
        assert 0 <= p.unit_price <= p.line.unit_price
        assert 0 <= p.total <= p.subtotal
    items = sum(d.amount for d in priced.discounts if not d.on_shipping)
    assert items == sum(d.amount for p in priced.lines for d in p.discounts)
    assert sum(d.amount for d in priced.discounts if d.on_shipping) <= shipping
    budgets = {p.id: p.budget_left for p in promotions}
    for d in priced.discounts:
        budget = budgets[d.promotion_id]
        assert budget is None or d.amount <= budget
    exclusive = [
        d
        for d in priced.discounts
        if not next(p.combines for p in promotions if p.id == d.promotion_id)
    ]
    assert len(exclusive) <= 1
    if exclusive:
        assert len(priced.discounts) == 1


def test_two_free_shipping_offers_do_not_pay_the_shipping_twice() -> None:
    offers = [
        Promotion(1, "free shipping", Kind.free_shipping, Scope.order, combines=True),
        Promotion(2, "also free shipping", Kind.free_shipping, Scope.order, combines=True),
    ]
    priced = price([line(1, 100)], offers, now=NOW, shipping=800)
    assert [d.amount for d in priced.discounts] == [800]
    assert priced.total == 100
