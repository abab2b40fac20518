"""Ratings kept as counts per star, updated one review at a time, and who may review."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobimart.social.domain import Rating, may_review

stars = st.integers(min_value=1, max_value=5)


def test_average_and_distribution() -> None:
    rating = Rating.of([5, 5, 4, 3])
    assert rating.count == 4
    assert rating.average == 4.3  # 17 / 4 = 4.25, half up
    assert rating.share(5) == 0.5
    assert Rating().average == 0.0
    assert Rating().share(3) == 0.0


def test_removing_a_review_that_is_not_there_is_refused() -> None:
    with pytest.raises(ValueError, match="no 2-star review"):
        Rating.of([5]).remove(2)
    with pytest.raises(ValueError, match="1 to 5 stars"):
        Rating().add(6)


@given(st.lists(st.tuples(st.sampled_from(["add", "remove", "change"]), stars, stars)))
def test_incremental_updates_agree_with_a_count_from_scratch(
    ops: list[tuple[str, int, int]],
) -> None:
    reviews: list[int] = []
    rating = Rating()
    for op, a, b in ops:
        if op == "add":
            reviews.append(a)
            rating = rating.add(a)
        elif reviews:
            old = reviews.pop(a % len(reviews))
            if op == "change":
                reviews.append(b)
                rating = rating.change(old, b)
            else:
                rating = rating.remove(old)
    assert rating == Rating.of(reviews)
    if reviews:
        assert abs(rating.average - sum(reviews) / len(reviews)) <= 0.05 + 1e-9


@pytest.mark.parametrize(
    ("status", "reviewed", "buyer", "allowed"),
    [
        ("completed", False, True, True),
        ("delivered", False, True, True),
        ("shipped", False, True, False),
        ("paid", False, True, False),
        ("completed", True, True, False),
        ("completed", False, False, False),
    ],
)
def test_only_the_buyer_reviews_a_delivered_item_once(
    status: str, reviewed: bool, buyer: bool, allowed: bool
) -> None:
    why = may_review(order_status=status, already_reviewed=reviewed, is_buyer=buyer)
    assert (why is None) is allowed
