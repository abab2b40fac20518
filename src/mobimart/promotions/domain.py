"""Promotion rules. Pure: the service loads promotions with their remaining uses and budget,
and this module prices a cart and explains every discount on the line it lands on.

- Catalogue promotions change the price shown on a product: each line gets the best one that
  applies (highest priority, then the larger saving); they never stack.
- Order promotions and coupons apply at checkout to the eligible subtotal after catalogue
  prices, in priority order. A promotion that does not combine is applied only if nothing
  else has been, and ends the run.
- Budgets and uses are the ones left when the cart is priced; the service takes them with
  conditional updates when the order is placed (a catalogue promotion's budget per unit here).
- A discount is spread over the eligible lines in proportion to their totals, to the fen, so
  every line shows what it got and the parts add up exactly.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class Kind(enum.StrEnum):
    fixed = "fixed"  # value: amount off
    percent = "percent"  # value: basis points off (1500 = 15 %), `cap` the most it takes
    spend_save = "spend_save"  # 满减: spend `threshold`, save `value`
    free_shipping = "free_shipping"


class Scope(enum.StrEnum):
    catalogue = "catalogue"  # the shown price
    order = "order"  # at checkout, automatically or with a code


@dataclass(frozen=True)
class Promotion:
    id: int
    name: str
    kind: Kind
    scope: Scope
    value: int = 0
    threshold: int = 0  # the eligible subtotal needed, minor units
    cap: int | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    code: str | None = None  # a coupon: applies only when its code is given
    shop_id: int | None = None  # None: every shop (platform-funded)
    product_ids: frozenset[int] | None = None  # None: every product
    category_ids: frozenset[int] | None = None  # a line matches if any of its categories does
    priority: int = 0
    combines: bool = False
    budget_left: int | None = None  # discount still allowed in total; None: no budget
    uses_left: int | None = None  # total uses still allowed, this person's included


@dataclass(frozen=True)
class Line:
    key: int  # the variant
    product_id: int
    shop_id: int
    unit_price: int
    quantity: int
    category_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Discount:
    """A promotion's saving: on a line (its share), or on the whole order or shipping."""

    promotion_id: int
    name: str
    amount: int
    on_shipping: bool = False


@dataclass(frozen=True)
class PricedLine:
    line: Line
    unit_price: int  # after the catalogue promotion
    subtotal: int  # unit_price x quantity, before order discounts
    discounts: tuple[Discount, ...]
    catalogue: Discount | None = None  # the price cut behind unit_price, for all the units

    @property
    def total(self) -> int:
        return self.subtotal - sum(d.amount for d in self.discounts)


@dataclass(frozen=True)
class Priced:
    lines: tuple[PricedLine, ...]
    shipping: int
    discounts: tuple[Discount, ...]  # order promotions, coupons and free shipping
    not_applied: tuple[tuple[int, str], ...] = field(default=())  # (promotion, why)

    @property
    def subtotal(self) -> int:
        return sum(p.subtotal for p in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal + self.shipping - sum(d.amount for d in self.discounts)


def is_live(promotion: Promotion, now: dt.datetime) -> bool:
    if promotion.starts_at is not None and now < promotion.starts_at:
        return False
    if promotion.ends_at is not None and now >= promotion.ends_at:
        return False
    if promotion.uses_left is not None and promotion.uses_left <= 0:
        return False
    return promotion.budget_left is None or promotion.budget_left > 0


def applies_to(promotion: Promotion, line: Line) -> bool:
    if promotion.shop_id is not None and line.shop_id != promotion.shop_id:
        return False
    if promotion.product_ids is not None and line.product_id not in promotion.product_ids:
        return False
    return promotion.category_ids is None or bool(promotion.category_ids & line.category_ids)


def saving(promotion: Promotion, amount: int) -> int:
    """What the promotion takes off `amount` (a unit price or an eligible subtotal)."""
    if promotion.kind is Kind.fixed:
        off = promotion.value
    elif promotion.kind is Kind.percent:
        off = amount * promotion.value // 10_000
        if promotion.cap is not None:
            off = min(off, promotion.cap)
    elif promotion.kind is Kind.spend_save:
        off = promotion.value if amount >= promotion.threshold else 0
    else:
        off = 0
    if promotion.budget_left is not None:
        off = min(off, promotion.budget_left)
    return max(0, min(off, amount))


def spread(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` split in proportion to `weights`, in whole fen, adding up exactly (largest
    remainders get the leftover fen)."""
    total = sum(weights)
    if total == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    order = sorted(range(len(weights)), key=lambda i: -(amount * weights[i] % total))
    for i in order[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def price(
    lines: Sequence[Line],
    promotions: Sequence[Promotion],
    *,
    now: dt.datetime,
    codes: frozenset[str] = frozenset(),
    shipping: int = 0,
    uses_left_for_person: Mapping[int, int] | None = None,
) -> Priced:
    """Price a cart: catalogue prices per line, then order promotions and coupons."""
    personal = uses_left_for_person or {}
    live = [p for p in promotions if is_live(p, now) and personal.get(p.id, 1) > 0]
    catalogue = [
        p for p in live if p.scope is Scope.catalogue and p.kind in (Kind.fixed, Kind.percent)
    ]
    priced: list[PricedLine] = []
    for line in lines:
        best = max(
            (p for p in catalogue if applies_to(p, line)),
            key=lambda p: (p.priority, saving(p, line.unit_price), -p.id),
            default=None,
        )
        cut = saving(best, line.unit_price) if best else 0
        unit = line.unit_price - cut
        shown = Discount(best.id, best.name, cut * line.quantity) if best and cut else None
        priced.append(PricedLine(line, unit, unit * line.quantity, (), shown))

    applied: list[Discount] = []
    skipped: list[tuple[int, str]] = []
    order = sorted(
        (p for p in live if p.scope is Scope.order),
        key=lambda p: (-p.priority, p.id),
    )
    per_line: dict[int, list[Discount]] = {p.line.key: [] for p in priced}
    remaining = {p.line.key: p.subtotal for p in priced}
    shipping_left = shipping
    for promotion in order:
        if promotion.code is not None and promotion.code not in codes:
            continue
        eligible = [p for p in priced if applies_to(promotion, p.line)]
        base = sum(remaining[p.line.key] for p in eligible)
        if base < promotion.threshold or not eligible:
            skipped.append((promotion.id, "below_threshold" if eligible else "no_eligible_items"))
            continue
        if applied and not (promotion.combines and all(_combines(d, order) for d in applied)):
            skipped.append((promotion.id, "does_not_combine"))
            continue
        if promotion.kind is Kind.free_shipping:
            budget = promotion.budget_left
            amount = shipping_left if budget is None else min(shipping_left, budget)
            if amount == 0:
                skipped.append((promotion.id, "nothing_to_take"))
                continue
            shipping_left -= amount  # two free-shipping offers do not pay the shipping twice
            applied.append(Discount(promotion.id, promotion.name, amount, on_shipping=True))
        else:
            amount = saving(promotion, base)
            if amount == 0:
                skipped.append((promotion.id, "nothing_to_take"))
                continue
            shares = spread(amount, [remaining[p.line.key] for p in eligible])
            for p, share in zip(eligible, shares, strict=True):
                if share:
                    remaining[p.line.key] -= share
                    per_line[p.line.key].append(Discount(promotion.id, promotion.name, share))
            applied.append(Discount(promotion.id, promotion.name, amount))
        if not promotion.combines:
            break
    return Priced(
        lines=tuple(
            PricedLine(p.line, p.unit_price, p.subtotal, tuple(per_line[p.line.key]), p.catalogue)
            for p in priced
        ),
        shipping=shipping,
        discounts=tuple(applied),
        not_applied=tuple(skipped),
    )


def _combines(discount: Discount, promotions: Sequence[Promotion]) -> bool:
    return next(p.combines for p in promotions if p.id == discount.promotion_id)
