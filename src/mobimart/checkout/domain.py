"""Order rules. Pure: the lifecycle, shipping fees and their discounts, order numbers."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from mobimart.promotions.domain import Discount, spread


class Status(enum.StrEnum):
    pending_payment = "pending_payment"
    paid = "paid"
    shipped = "shipped"
    delivered = "delivered"
    completed = "completed"
    cancelled = "cancelled"


# Who moves an order where. Cancelling a paid order refunds it in full; after shipping,
# money goes back only through refunds. A buyer who has the parcel before the carrier says
# so completes a shipped order directly.
NEXT: Mapping[Status, frozenset[Status]] = {
    Status.pending_payment: frozenset({Status.paid, Status.cancelled}),
    Status.paid: frozenset({Status.shipped, Status.cancelled}),
    Status.shipped: frozenset({Status.delivered, Status.completed}),
    Status.delivered: frozenset({Status.completed}),
    Status.completed: frozenset(),
    Status.cancelled: frozenset(),
}

REFUNDABLE = frozenset({Status.paid, Status.shipped, Status.delivered})


def can_move(current: str, target: Status) -> bool:
    return target in NEXT[Status(current)]


def shipping_fee(subtotal: int, *, fee: int, free_over: int | None) -> int:
    return 0 if free_over is not None and subtotal >= free_over else fee


def shipping_shares(discounts: Sequence[Discount], fees: Sequence[int]) -> list[int]:
    """Shipping discounts spread over the orders in proportion to their fees; a share never
    exceeds its order's fee because the discounts never exceed the fees' sum."""
    total = sum(d.amount for d in discounts if d.on_shipping)
    return spread(total, fees)


def order_number(order_id: int, year: int) -> str:
    """Readable on the phone and over it: MM2026-000123."""
    return f"MM{year}-{order_id:06d}"
