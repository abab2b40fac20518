"""Review rules. Pure: who may review, and a product's or shop's rating kept as counts per
star, so adding, changing or removing one review is a constant-time update that always agrees
with a count from scratch (an average alone cannot be updated when a review is deleted)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

STARS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Rating:
    """Reviews per star, index 0 for one star."""

    counts: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    @classmethod
    def of(cls, stars: Iterable[int]) -> Rating:
        rating = cls()
        for n in stars:
            rating = rating.add(n)
        return rating

    def _with(self, stars: int, delta: int) -> Rating:
        if stars not in STARS:
            raise ValueError(f"a review has 1 to 5 stars, not {stars}")
        counts = list(self.counts)
        counts[stars - 1] += delta
        if counts[stars - 1] < 0:
            raise ValueError(f"no {stars}-star review to remove")
        return Rating((counts[0], counts[1], counts[2], counts[3], counts[4]))

    def add(self, stars: int) -> Rating:
        return self._with(stars, 1)

    def remove(self, stars: int) -> Rating:
        return self._with(stars, -1)

    def change(self, old: int, new: int) -> Rating:
        return self.remove(old).add(new)

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def average(self) -> float:
        """Rounded to one decimal as shops show it (4.65 -> 4.7); 0 with no reviews."""
        if not self.count:
            return 0.0
        total = sum(s * n for s, n in zip(STARS, self.counts, strict=True))
        tenths = (total * 20 + self.count) // (2 * self.count)  # half up, in integers
        return tenths / 10

    def share(self, stars: int) -> float:
        """The fraction of reviews with these stars, for the distribution bars."""
        return self.counts[stars - 1] / self.count if self.count else 0.0


def may_review(*, order_status: str, already_reviewed: bool, is_buyer: bool) -> str | None:
    """None when the person may review this order line, else why not: only the buyer, once,
    and only once the goods have arrived."""
    if not is_buyer:
        return "Only the person who bought this item can review it."
    if order_status not in ("delivered", "completed"):
        return "You can review this item once it has been delivered."
    if already_reviewed:
        return "You have reviewed this item already; you can edit your review."
    return None
