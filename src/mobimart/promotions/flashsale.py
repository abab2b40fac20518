"""秒杀: a time-boxed price on a limited quantity with a per-person limit.

The sale's units leave the variant's stock when it is created, so buying touches only the
sale's counter. That counter is one conditional UPDATE on the sale's row, or, when Redis is
configured, one Lua script there (the row is then left alone while the sale runs and its
`sold` is written when the sale closes). Either way a unit is counted before the order that
holds it is written and given back if that write fails, so nothing is oversold and nothing
is lost. A sold-out sale is refused from a read, without taking the database's write lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog.models import Product, ProductChange, Variant
from mobimart.checkout import service as checkout
from mobimart.checkout.domain import Status
from mobimart.checkout.models import Order, OrderLine
from mobimart.db import after_commit, utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.infra import redis as redis_clients
from mobimart.promotions import allowance
from mobimart.promotions.models import FlashSale
from mobimart.settings import get_settings

CLOSE_AFTER = dt.timedelta(minutes=1)


class SoldOut(Conflict):
    def __init__(self) -> None:
        super().__init__("sold_out", "Sold out.")


class OverLimit(Conflict):
    def __init__(self, limit: int) -> None:
        super().__init__("limit_reached", f"At most {limit} per person in this sale.")


def _subject(sale_id: int) -> str:
    return f"flash:{sale_id}"


class Counter(Protocol):
    async def take(self, session: AsyncSession, sale: FlashSale, user_id: int, n: int) -> None:
        """Count `n` units for the person or raise SoldOut / OverLimit."""

    async def give_back(self, session: AsyncSession, sale: FlashSale, user_id: int, n: int) -> None:
        """Undo a take (an order that was not written, or was cancelled unpaid)."""

    async def sold(self, session: AsyncSession, sale: FlashSale) -> int: ...


class DatabaseCounter:
    async def take(self, session: AsyncSession, sale: FlashSale, user_id: int, n: int) -> None:
        taken = await session.execute(
            update(FlashSale)
            .where(
                FlashSale.id == sale.id,
                FlashSale.closed_at.is_(None),
                FlashSale.sold + n <= FlashSale.quantity,
            )
            .values(sold=FlashSale.sold + n)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise SoldOut()
        if not await allowance.take(
            session, subject=_subject(sale.id), user_id=user_id, n=n, limit=sale.per_person
        ):
            raise OverLimit(sale.per_person)

    async def give_back(self, session: AsyncSession, sale: FlashSale, user_id: int, n: int) -> None:
        await session.execute(
            update(FlashSale)
            .where(FlashSale.id == sale.id)
            .values(sold=FlashSale.sold - n)
            .execution_options(synchronize_session=False)
        )
        await allowance.give_back(session, subject=_subject(sale.id), user_id=user_id, n=n)

    async def sold(self, session: AsyncSession, sale: FlashSale) -> int:
        return await session.scalar(select(FlashSale.sold).where(FlashSale.id == sale.id)) or 0


# KEYS: sold, buyers. ARGV: n, quantity, limit, user. Returns 1 taken, 0 sold out, -1 over
# the person's limit, -2 the counter is not loaded (Redis restarted: load it from orders).
_TAKE = """
local sold = redis.call('GET', KEYS[1])
if not sold then return -2 end
local n = tonumber(ARGV[1])
if tonumber(sold) + n > tonumber(ARGV[2]) then return 0 end
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[4]) or '0')
if mine + n > tonumber(ARGV[3]) then return -1 end
redis.call('INCRBY', KEYS[1], n)
redis.call('HINCRBY', KEYS[2], ARGV[4], n)
return 1
"""
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  redis.call('HINCRBY', KEYS[2], ARGV[2], -tonumber(ARGV[1]))
end
return 1
"""


class RedisCounter:
    """The hot counter in Redis. Redis's view is rebuilt from the orders when it has none
    (first use, or a Redis that lost its data), so it never starts from zero by mistake."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _keys(self, sale: FlashSale) -> list[str]:
        # The creation time makes a key unique to one sale even when several databases (tests,
        # a restored backup) share one Redis and reuse ids.
        base = f"mm:flash:{sale.id}:{int(sale.created_at.timestamp() * 1e6)}"
        return [f"{base}:sold", f"{base}:buyers"]

    async def take(self, session: AsyncSession, sale: FlashSale, user_id: int, n: int) -> None:
        redis = redis_clients.client(self.url)
        for _ in range(2):
            result = await redis.eval(
                _TAKE, 2, *self._keys(sale), n, sale.quantity, sale.per_person, user_id
            )
            if result == 1:
                return
            if result == 0:
                raise SoldOut()
            if result == -1:
                raise OverLimit(sale.per_person)
            await self._load(session, sale)
        raise RuntimeError("flash sale counter could not be loaded")

    async def _load(self, session: AsyncSession, sale: FlashSale) -> None:
        rows = await session.execute(
            select(Order.user_id, func.sum(OrderLine.quantity))
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.flash_sale_id == sale.id, Order.status != Status.cancelled.value)
            .group_by(Order.user_id)
        )
        per_user = {str(user): int(q) for user, q in rows}
        sold_key, buyers_key = self._keys(sale)
        redis = redis_clients.client(self.url)
        async with redis.pipeline(transaction=True) as pipe:
            # SET NX: a parallel loader that won keeps its (equal) figures.
            pipe.set(sold_key, sum(per_user.values()), nx=True)
            if per_user:
                pipe.hset(buyers_key, mapping=per_user)  # type: ignore[arg-type]
            gone = sale.ends_at + dt.timedelta(days=1)  # the sale closes from the orders
            pipe.expireat(sold_key, gone)
            pipe.expireat(buyers_key, gone)
            await pipe.execute()

    async def give_back(self, session: AsyncSession, sale: FlashSale, user_id: int, n: int) -> None:
        redis = redis_clients.client(self.url)
        await redis.eval(_GIVE_BACK, 2, *self._keys(sale), n, user_id)

    async def sold(self, session: AsyncSession, sale: FlashSale) -> int:
        value = await redis_clients.client(self.url).get(self._keys(sale)[0])
        return int(value) if value is not None else await DatabaseCounter().sold(session, sale)


def counter() -> Counter:
    url = get_settings().redis_url
    return RedisCounter(url) if url else DatabaseCounter()


# --- managing sales --------------------------------------------------------------------------


@dataclass(frozen=True)
class SaleSpec:
    variant_id: int
    price_minor: int
    quantity: int
    per_person: int
    starts_at: dt.datetime
    ends_at: dt.datetime


async def create(session: AsyncSession, *, merchant_id: int, spec: SaleSpec) -> FlashSale:
    variant = await session.get(Variant, spec.variant_id)
    if variant is None or variant.merchant_id != merchant_id:
        raise NotFound("Variant")
    if not 0 < spec.price_minor < variant.price_minor:
        raise DomainError(
            "invalid_sale", "A flash price is above zero and below the usual price.", 422
        )
    if spec.quantity <= 0 or spec.per_person <= 0:
        raise DomainError("invalid_sale", "Quantity and the limit per person are at least 1.", 422)
    if spec.ends_at <= spec.starts_at or spec.ends_at <= utcnow():
        raise DomainError("invalid_sale", "The sale must end after it starts, in the future.", 422)
    if spec.ends_at - spec.starts_at > dt.timedelta(days=7):
        raise DomainError("invalid_sale", "A flash sale lasts at most 7 days.", 422)
    taken = await session.execute(
        update(Variant)
        .where(Variant.id == variant.id, Variant.stock >= spec.quantity)
        .values(stock=Variant.stock - spec.quantity)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("out_of_stock", "Not enough stock for that many units.")
    await session.execute(
        update(Product)
        .where(Product.id == variant.product_id)
        .values(stock=Product.stock - spec.quantity)
        .execution_options(synchronize_session=False)
    )
    session.add(ProductChange(product_id=variant.product_id))
    sale = FlashSale(
        merchant_id=merchant_id,
        product_id=variant.product_id,
        variant_id=variant.id,
        price_minor=spec.price_minor,
        quantity=spec.quantity,
        per_person=spec.per_person,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
    )
    session.add(sale)
    await session.commit()
    return sale


async def get(session: AsyncSession, *, sale_id: int) -> FlashSale:
    sale = await session.get(FlashSale, sale_id)
    if sale is None:
        raise NotFound("Flash sale")
    return sale


async def check_open(
    session: AsyncSession, *, sale_id: int, count: Counter | None = None
) -> FlashSale:
    """The sale if it is on and has units left, decided from reads alone: the crowd that
    comes after the last unit is turned away without taking a write lock anywhere."""
    sale = await get(session, sale_id=sale_id)
    now = utcnow()
    if now < sale.starts_at:
        raise Conflict("not_started", "The sale has not started yet.")
    if now >= sale.ends_at or sale.closed_at is not None:
        raise Conflict("ended", "The sale has ended.")
    if await (count or counter()).sold(session, sale) >= sale.quantity:
        raise SoldOut()
    return sale


async def buy(
    session: AsyncSession,
    *,
    sale_id: int,
    user: User,
    quantity: int,
    address_id: int,
    count: Counter | None = None,
) -> Order:
    """An order for `quantity` units at the flash price, held for payment like any order."""
    count = count or counter()
    now = utcnow()
    sale = await check_open(session, sale_id=sale_id, count=count)
    if not 1 <= quantity <= sale.per_person:
        raise OverLimit(sale.per_person)
    address = await checkout.own_address(session, user_id=user.id, address_id=address_id)
    quote = await checkout.quote(
        session,
        entries=[(sale.variant_id, quantity)],
        user_id=user.id,
        now=now,
        flash=(sale.id, sale.price_minor),
    )
    if quote.unavailable:
        raise Conflict("unavailable", "This product is no longer sold.")
    await count.take(session, sale, user.id, quantity)
    try:
        orders = await checkout.write_orders(
            session, quote_=quote, user=user, address=address, note="", now=now
        )
        await session.commit()
    except BaseException:
        await session.rollback()
        if isinstance(count, RedisCounter):  # the database's own take went with the rollback
            await count.give_back(session, sale, user.id, quantity)
        raise
    return orders[0]


async def give_back(session: AsyncSession, *, sale_id: int, user_id: int, quantity: int) -> None:
    """Called when an unpaid flash order is cancelled, in its transaction."""
    sale = await get(session, sale_id=sale_id)
    # Whether the sale is still open is decided by a write on its row, which waits for a
    # closing in progress: the unit goes to the sale or to the stock, never to neither.
    still_open = await session.execute(
        update(FlashSale)
        .where(FlashSale.id == sale.id, FlashSale.closed_at.is_(None))
        .values(closed_at=None)
        .execution_options(synchronize_session=False)
    )
    if still_open.rowcount == 1:  # type: ignore[attr-defined]
        count = counter()
        if isinstance(count, RedisCounter):
            # Redis is outside the transaction: the unit is freed there once the cancellation
            # has committed, never before (a rollback would leave it sold twice).
            after_commit(session, lambda: count.give_back(session, sale, user_id, quantity))
        else:
            await count.give_back(session, sale, user_id, quantity)
    else:  # the sale is over: the unit goes back to the variant's stock
        await session.execute(
            update(Variant)
            .where(Variant.id == sale.variant_id)
            .values(stock=Variant.stock + quantity)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Product)
            .where(Product.id == sale.product_id)
            .values(stock=Product.stock + quantity)
            .execution_options(synchronize_session=False)
        )
        session.add(ProductChange(product_id=sale.product_id))


async def close_ended(session: AsyncSession, *, now: dt.datetime | None = None) -> int:
    """Return ended sales' unsold units to their variants (the job runs every minute).
    A sale closes a minute after its end, when no purchase that began before it is still
    being written."""
    now = now or utcnow()
    closed = 0
    for sale in list(
        await session.scalars(
            select(FlashSale).where(
                FlashSale.closed_at.is_(None), FlashSale.ends_at <= now - CLOSE_AFTER
            )
        )
    ):
        # Close first, then count: a cancellation racing with this either gave its unit back
        # to the sale before the close (and is not counted as sold) or sees the sale closed
        # and returns the unit to the stock itself.
        result = await session.execute(
            update(FlashSale)
            .where(FlashSale.id == sale.id, FlashSale.closed_at.is_(None))
            .values(closed_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue  # closed by another worker
        sold = await session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0))
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.flash_sale_id == sale.id, Order.status != Status.cancelled.value)
        )
        await session.execute(
            update(FlashSale)
            .where(FlashSale.id == sale.id)
            .values(sold=sold)
            .execution_options(synchronize_session=False)
        )
        unsold = sale.quantity - int(sold or 0)
        if unsold > 0:
            await session.execute(
                update(Variant)
                .where(Variant.id == sale.variant_id)
                .values(stock=Variant.stock + unsold)
                .execution_options(synchronize_session=False)
            )
            await session.execute(
                update(Product)
                .where(Product.id == sale.product_id)
                .values(stock=Product.stock + unsold)
                .execution_options(synchronize_session=False)
            )
            session.add(ProductChange(product_id=sale.product_id))
        await session.commit()
        closed += 1
    return closed
