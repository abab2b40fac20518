"""Pay-for-me: a buyer sends a link to an unpaid order and a friend pays it.

The link carries a random token; the order keeps only its hash (`Order.share_hash`). The link
works while the order waits for payment: paying clears the hash (`service._mark_paid`), and a
cancelled or timed-out order is no longer found by it. A new link replaces the old one.

What the friend sees is what is bought and what it costs: never the delivery address, the
buyer's phone number or the order's note.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog.models import Shop
from mobimart.checkout import service as checkout
from mobimart.checkout.domain import Status
from mobimart.checkout.models import Order, OrderLine
from mobimart.db import utcnow
from mobimart.errors import Conflict, DomainError
from mobimart.payments import service as payments
from mobimart.payments.models import Payment
from mobimart.settings import get_settings
from mobimart.signing import token_digest

SHARE_PATH = "/pay/s/"


def share_url(token: str) -> str:
    return get_settings().base_url.rstrip("/") + SHARE_PATH + token


@dataclass(frozen=True)
class SharedOrder:
    order: Order
    lines: Sequence[OrderLine]
    shop_name: str
    requested_by: str  # the buyer's display name, if they set one


async def create_link(
    session: AsyncSession, *, user: User, order_id: int
) -> tuple[str, dt.datetime]:
    """A link to the buyer's unpaid order; it dies with the order's payment window."""
    order = await checkout.own_order(session, user_id=user.id, order_id=order_id)
    token = secrets.token_urlsafe(24)
    moved = await session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.status == Status.pending_payment.value,
            Order.expires_at > utcnow(),
        )
        .values(share_hash=token_digest(token))
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("not_payable", "Only an order waiting for payment can be shared.")
    await session.commit()
    return token, order.expires_at


class LinkDead(DomainError):
    def __init__(self, status: int) -> None:
        super().__init__(
            "share_link_dead",
            "This link no longer works: the order was paid, cancelled or ran out of time.",
            status,
        )


async def _order(session: AsyncSession, token: str) -> Order:
    order = await session.scalar(select(Order).where(Order.share_hash == token_digest(token)))
    if order is None:
        raise LinkDead(404)  # never made, or paid (paying clears the hash)
    if order.status != Status.pending_payment or order.expires_at <= utcnow():
        raise LinkDead(410)
    return order


async def shared_order(session: AsyncSession, *, token: str) -> SharedOrder:
    order = await _order(session, token)
    lines = (await checkout.lines_of(session, [order.id]))[order.id]
    shop = await session.scalar(select(Shop.name).where(Shop.id == order.shop_id))
    buyer = await session.get(User, order.user_id)
    return SharedOrder(
        order=order,
        lines=lines,
        shop_name=shop or "",
        requested_by=(buyer.display_name if buyer else "") or "",
    )


async def pay_shared(
    session: AsyncSession, *, payer: User, token: str, method: str, return_url: str = ""
) -> tuple[Payment, str | None]:
    """The friend pays: from their wallet at once, or at the gateway."""
    order = await _order(session, token)
    return await payments.pay(
        session,
        payer=payer,
        order_ids=[order.id],
        method=method,
        return_url=return_url,
        shared=True,
    )
