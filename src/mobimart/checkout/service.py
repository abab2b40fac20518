"""Carts, pricing a cart, placing orders (one per shop) and cancelling unpaid ones."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog import feed
from mobimart.catalog.models import Product, ProductChange, Shop, Variant
from mobimart.catalog.view import ProductView, VariantView
from mobimart.checkout import domain
from mobimart.checkout.domain import Status
from mobimart.checkout.models import Address, Cart, CartLine, Order, OrderDiscount, OrderLine
from mobimart.db import utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.notifications import service as notifications
from mobimart.promotions import domain as pricing
from mobimart.promotions import service as promotions
from mobimart.settings import get_settings
from mobimart.signing import token_digest
from mobimart.text import clean, clean_name
from mobimart.webhooks import service as webhooks

MAX_LINES = 50
MAX_QUANTITY = 99


# --- carts -----------------------------------------------------------------------------------


def new_guest_token() -> str:
    return secrets.token_urlsafe(24)


async def cart_of(
    session: AsyncSession, *, user_id: int | None = None, guest_token: str | None = None
) -> Cart:
    """The person's (or the guest token's) cart, made on first use."""
    if user_id is None and guest_token is None:
        raise ValueError("a cart belongs to a person or a guest token")
    where = (
        Cart.user_id == user_id
        if user_id is not None
        else Cart.guest_hash == token_digest(guest_token or "")
    )
    cart = await session.scalar(select(Cart).where(where))
    if cart is not None:
        return cart
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = (
        {"user_id": user_id}
        if user_id is not None
        else {"guest_hash": token_digest(guest_token or "")}
    )
    await session.execute(
        insert(Cart).values(**values, updated_at=utcnow()).on_conflict_do_nothing()
    )
    cart = await session.scalar(select(Cart).where(where))
    assert cart is not None
    return cart


async def cart_entries(session: AsyncSession, *, cart: Cart) -> list[tuple[int, int]]:
    rows = await session.execute(
        select(CartLine.variant_id, CartLine.quantity)
        .where(CartLine.cart_id == cart.id)
        .order_by(CartLine.id)
    )
    return [(v, q) for v, q in rows]


async def put(
    session: AsyncSession, *, cart: Cart, variant_id: int, quantity: int, add: bool = False
) -> None:
    """Set (or with `add`, raise) a line's quantity; 0 removes it."""
    live = await feed.replica(session)
    if quantity < 0 or quantity > MAX_QUANTITY:
        raise DomainError("invalid_quantity", f"A quantity is 0 to {MAX_QUANTITY}.", 422)
    if quantity and _variant(live, variant_id) is None:
        raise NotFound("Product")
    line = await session.scalar(
        select(CartLine).where(CartLine.cart_id == cart.id, CartLine.variant_id == variant_id)
    )
    target = min(MAX_QUANTITY, quantity + (line.quantity if line and add else 0))
    if line is None and target:
        count = await session.scalar(
            select(func.count(CartLine.id)).where(CartLine.cart_id == cart.id)
        )
        if (count or 0) >= MAX_LINES:
            raise DomainError("cart_full", f"A cart holds at most {MAX_LINES} items.", 422)
        session.add(CartLine(cart_id=cart.id, variant_id=variant_id, quantity=target))
    elif line is not None and target:
        line.quantity = target
    elif line is not None:
        await session.delete(line)
    cart.updated_at = utcnow()
    await session.commit()


async def merge_guest(session: AsyncSession, *, guest_token: str, user: User) -> None:
    """On sign-in the guest's lines join the person's cart (quantities add up)."""
    guest = await session.scalar(select(Cart).where(Cart.guest_hash == token_digest(guest_token)))
    if guest is None:
        return
    entries = await cart_entries(session, cart=guest)
    own = await cart_of(session, user_id=user.id)
    mine = dict(await cart_entries(session, cart=own))
    for variant_id, quantity in entries:
        target = min(MAX_QUANTITY, quantity + mine.get(variant_id, 0))
        if variant_id in mine:
            await session.execute(
                update(CartLine)
                .where(CartLine.cart_id == own.id, CartLine.variant_id == variant_id)
                .values(quantity=target)
            )
        elif len(mine) < MAX_LINES:
            session.add(CartLine(cart_id=own.id, variant_id=variant_id, quantity=target))
            mine[variant_id] = target
    await session.delete(guest)
    await session.commit()


# --- pricing ---------------------------------------------------------------------------------


class _VariantIndex:
    """variant -> (product, variant), following the catalogue replica."""

    def __init__(self) -> None:
        self.index: dict[int, tuple[ProductView, VariantView]] = {}
        self._of: dict[int, tuple[int, ...]] = {}  # product -> its variants

    def apply(self, changed: list[ProductView], removed: list[int]) -> None:
        for product_id in [*removed, *(v.id for v in changed)]:
            for variant_id in self._of.pop(product_id, ()):
                self.index.pop(variant_id, None)
        for view in changed:
            self._of[view.id] = tuple(v.id for v in view.variants)
            for variant in view.variants:
                self.index[variant.id] = (view, variant)


def _variant_index(live: feed.Replica) -> dict[int, tuple[ProductView, VariantView]]:
    return feed.follower(live, "variants", _VariantIndex).index


def _variant(live: feed.Replica, variant_id: int) -> tuple[ProductView, VariantView] | None:
    return _variant_index(live).get(variant_id)


@dataclass(frozen=True)
class Item:
    product: ProductView
    variant: VariantView
    quantity: int
    unit_price: int  # the database's price when placing, the replica's when showing a cart
    flash_sale_id: int | None = None


@dataclass(frozen=True)
class Quote:
    items: tuple[Item, ...]
    priced: pricing.Priced
    shops: dict[int, Shop]
    shipping: dict[int, int]  # shop -> fee
    shipping_off: dict[int, int]  # shop -> its share of shipping discounts
    loaded: promotions.Loaded | None
    currency: str
    unavailable: tuple[int, ...] = ()  # variants no longer sold
    unknown_codes: tuple[str, ...] = ()

    def shop_total(self, shop_id: int) -> int:
        lines = [p for p in self.priced.lines if p.line.shop_id == shop_id]
        return (
            sum(p.total for p in lines) + self.shipping[shop_id] - self.shipping_off.get(shop_id, 0)
        )

    @property
    def total(self) -> int:
        return self.priced.total


async def quote(
    session: AsyncSession,
    *,
    entries: Sequence[tuple[int, int]],
    codes: Sequence[str] = (),
    user_id: int | None,
    now: dt.datetime,
    fresh_prices: bool = False,
    flash: tuple[int, int] | None = None,  # (sale, price): a flash sale's one line
) -> Quote:
    live = await feed.replica(session)
    index = _variant_index(live)
    prices: dict[int, int] = {}
    if fresh_prices and entries:
        prices = dict(
            (
                await session.execute(
                    select(Variant.id, Variant.price_minor).where(
                        Variant.id.in_([v for v, _ in entries])
                    )
                )
            ).all()
        )
    items: list[Item] = []
    unavailable: list[int] = []
    for variant_id, quantity in entries:
        found = index.get(variant_id)
        if found is None:
            unavailable.append(variant_id)
            continue
        view, variant = found
        unit = prices.get(variant_id, variant.price_minor)
        if flash is not None:
            unit = flash[1]
        items.append(Item(view, variant, quantity, unit, flash[0] if flash else None))
    currencies = {i.product.currency for i in items}
    if len(currencies) > 1:
        raise DomainError(
            "mixed_currencies", "Items priced in different currencies are paid separately.", 422
        )
    shop_ids = sorted({i.product.shop_id for i in items})
    shops = {s.id: s for s in await session.scalars(select(Shop).where(Shop.id.in_(shop_ids)))}
    lines = [
        pricing.Line(
            key=i.variant.id,
            product_id=i.product.id,
            shop_id=i.product.shop_id,
            unit_price=i.unit_price,
            quantity=i.quantity,
            category_ids=frozenset(i.product.category_path),
        )
        for i in items
    ]
    subtotals: dict[int, int] = defaultdict(int)
    for line in lines:
        subtotals[line.shop_id] += line.unit_price * line.quantity
    shipping = {
        s: domain.shipping_fee(
            subtotals[s], fee=shops[s].shipping_minor, free_over=shops[s].free_shipping_over_minor
        )
        for s in shop_ids
    }
    loaded = None
    rules: tuple[pricing.Promotion, ...] = ()
    if flash is None and items:
        loaded = await promotions.for_cart(
            session,
            shops={shops[s].merchant_id: s for s in shop_ids},
            codes=codes,
            user_id=user_id,
            now=now,
        )
        rules = loaded.rules
    priced = pricing.price(
        lines,
        rules,
        now=now,
        codes=frozenset(promotions.normalise_code(c) for c in codes),
        shipping=sum(shipping.values()),
        uses_left_for_person=loaded.personal if loaded else None,
    )
    shares = domain.shipping_shares(priced.discounts, [shipping[s] for s in shop_ids])
    return Quote(
        items=tuple(items),
        priced=priced,
        shops=shops,
        shipping=shipping,
        shipping_off=dict(zip(shop_ids, shares, strict=True)),
        loaded=loaded,
        currency=currencies.pop() if currencies else get_settings().default_currency,
        unavailable=tuple(unavailable),
        unknown_codes=loaded.unknown_codes if loaded else (),
    )


# --- addresses -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressSpec:
    recipient: str
    phone: str
    region: str
    detail: str


async def add_address(
    session: AsyncSession, *, user: User, spec: AddressSpec, default: bool = False
) -> Address:
    from mobimart.accounts import domain as accounts_domain

    recipient = clean_name(spec.recipient, 40)
    region = clean_name(spec.region, 80)
    detail = clean(spec.detail, 200)
    if not (recipient and region and detail):
        raise DomainError(
            "invalid_address", "Give the recipient's name, the region and the street address.", 422
        )
    phone = accounts_domain.normalize_phone(spec.phone, get_settings().default_region)
    count = await session.scalar(select(func.count(Address.id)).where(Address.user_id == user.id))
    if (count or 0) >= 20:
        raise DomainError("too_many_addresses", "An address book holds at most 20 addresses.", 422)
    if default or not count:
        await session.execute(
            update(Address).where(Address.user_id == user.id).values(is_default=False)
        )
    address = Address(
        user_id=user.id,
        recipient=recipient,
        phone=phone,
        region=region,
        detail=detail,
        is_default=bool(default or not count),
    )
    session.add(address)
    await session.commit()
    return address


async def addresses(session: AsyncSession, *, user_id: int) -> list[Address]:
    return list(
        await session.scalars(
            select(Address)
            .where(Address.user_id == user_id)
            .order_by(Address.is_default.desc(), Address.id.desc())
        )
    )


async def delete_address(session: AsyncSession, *, user_id: int, address_id: int) -> None:
    result = await session.execute(
        delete(Address).where(Address.id == address_id, Address.user_id == user_id)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("Address")
    await session.commit()


async def own_address(session: AsyncSession, *, user_id: int, address_id: int) -> Address:
    address = await session.get(Address, address_id)
    if address is None or address.user_id != user_id:
        raise NotFound("Address")
    return address


def address_snapshot(address: Address) -> str:
    return json.dumps(
        {
            "recipient": address.recipient,
            "phone": address.phone,
            "region": address.region,
            "detail": address.detail,
        },
        ensure_ascii=False,
    )


def address_of(order: Order) -> dict[str, str] | None:
    """The address the order ships to, as it was when placed."""
    return json.loads(order.address) if order.address else None


# --- placing orders --------------------------------------------------------------------------


async def take_stock(session: AsyncSession, items: Sequence[Item]) -> None:
    """Reserve stock for the items in the caller's transaction (variant order avoids
    deadlocks between two carts holding the same items)."""
    wanted: dict[int, int] = defaultdict(int)
    products: dict[int, int] = defaultdict(int)
    names: dict[int, str] = {}
    for item in items:
        wanted[item.variant.id] += item.quantity
        products[item.product.id] += item.quantity
        names[item.variant.id] = item.product.name
    for variant_id, quantity in sorted(wanted.items()):
        taken = await session.execute(
            update(Variant)
            .where(Variant.id == variant_id, Variant.stock >= quantity)
            .values(stock=Variant.stock - quantity)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("out_of_stock", f"Not enough “{names[variant_id]}” left.")
    for product_id, quantity in sorted(products.items()):
        await session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(stock=Product.stock - quantity)
            .execution_options(synchronize_session=False)
        )
        session.add(ProductChange(product_id=product_id))


async def return_stock(session: AsyncSession, lines: Sequence[OrderLine]) -> None:
    for line in sorted(lines, key=lambda x: x.variant_id):
        await session.execute(
            update(Variant)
            .where(Variant.id == line.variant_id)
            .values(stock=Variant.stock + line.quantity)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Product)
            .where(Product.id == line.product_id)
            .values(stock=Product.stock + line.quantity)
            .execution_options(synchronize_session=False)
        )
        session.add(ProductChange(product_id=line.product_id))


async def take_promotions(session: AsyncSession, *, quote_: Quote, user_id: int) -> None:
    if quote_.loaded is None:
        return
    spent: dict[int, int] = defaultdict(int)
    for line in quote_.priced.lines:
        if line.catalogue is not None:
            spent[line.catalogue.promotion_id] += line.catalogue.amount
    for discount in quote_.priced.discounts:
        spent[discount.promotion_id] += discount.amount
    for promotion_id, amount in sorted(spent.items()):
        await promotions.take(
            session, row=quote_.loaded.rows[promotion_id], amount=amount, user_id=user_id
        )


async def write_orders(
    session: AsyncSession,
    *,
    quote_: Quote,
    user: User,
    address: Address | None,
    note: str,
    now: dt.datetime,
) -> list[Order]:
    """One order per shop with its lines and the explanation of every discount."""
    ref = uuid.uuid4().hex
    timeout = dt.timedelta(seconds=get_settings().order_payment_timeout_s)
    snapshot = address_snapshot(address) if address else None
    orders: list[Order] = []
    by_shop: dict[int, list[pricing.PricedLine]] = defaultdict(list)
    for priced_line in quote_.priced.lines:
        by_shop[priced_line.line.shop_id].append(priced_line)
    items = {i.variant.id: i for i in quote_.items}
    for shop_id, lines in sorted(by_shop.items()):
        shop = quote_.shops[shop_id]
        item_discount = sum(d.amount for p in lines for d in p.discounts)
        order = Order(
            number="tmp-" + secrets.token_hex(8),
            checkout_ref=ref,
            user_id=user.id,
            merchant_id=shop.merchant_id,
            shop_id=shop_id,
            status=Status.pending_payment.value,
            currency=quote_.currency,
            subtotal_minor=sum(p.subtotal for p in lines),
            discount_minor=item_discount,
            shipping_minor=quote_.shipping[shop_id],
            shipping_discount_minor=quote_.shipping_off.get(shop_id, 0),
            total_minor=quote_.shop_total(shop_id),
            address=snapshot,
            note=clean(note, 200),
            created_at=now,
            expires_at=now + timeout,
        )
        session.add(order)
        await session.flush()
        order.number = domain.order_number(order.id, now.year)
        for p in lines:
            item = items[p.line.key]
            line = OrderLine(
                order_id=order.id,
                product_id=item.product.id,
                variant_id=item.variant.id,
                flash_sale_id=item.flash_sale_id,
                name=item.product.name,
                sku=item.variant.sku,
                options=dict(item.variant.options),
                list_price_minor=item.unit_price,
                unit_price_minor=p.unit_price,
                quantity=p.line.quantity,
                discount_minor=sum(d.amount for d in p.discounts),
                total_minor=p.total,
            )
            session.add(line)
            await session.flush()
            shown = ([p.catalogue] if p.catalogue else []) + list(p.discounts)
            for d in shown:
                session.add(
                    OrderDiscount(
                        order_id=order.id,
                        line_id=line.id,
                        promotion_id=d.promotion_id,
                        name=d.name,
                        amount_minor=d.amount,
                    )
                )
        if order.shipping_discount_minor:
            names = [d for d in quote_.priced.discounts if d.on_shipping]
            session.add(
                OrderDiscount(
                    order_id=order.id,
                    promotion_id=names[0].promotion_id if names else None,
                    name=names[0].name if names else "Free shipping",
                    amount_minor=order.shipping_discount_minor,
                    on_shipping=True,
                )
            )
        orders.append(order)
    return orders


async def place(
    session: AsyncSession,
    *,
    user: User,
    address_id: int | None,
    codes: Sequence[str] = (),
    note: str = "",
) -> list[Order]:
    """Turn the person's cart into orders: prices from the database, stock reserved,
    promotions taken, the bought lines removed from the cart; all or nothing."""
    now = utcnow()
    cart = await cart_of(session, user_id=user.id)
    entries = await cart_entries(session, cart=cart)
    if not entries:
        raise DomainError("empty_cart", "Your cart is empty.", 422)
    address = (
        await own_address(session, user_id=user.id, address_id=address_id)
        if address_id is not None
        else None
    )
    if address is None:
        raise DomainError("address_required", "Choose a delivery address.", 422)
    quote_ = await quote(
        session, entries=entries, codes=codes, user_id=user.id, now=now, fresh_prices=True
    )
    if quote_.unavailable:
        raise Conflict("unavailable", "Some items are no longer sold; remove them first.")
    if quote_.unknown_codes:
        raise DomainError(
            "unknown_coupon",
            f"Coupon {', '.join(quote_.unknown_codes)} is not valid now.",
            422,
        )
    _require_coupons(quote_)
    # Claim the cart first: of two taps on "Place order" (or two devices), the second finds
    # the lines gone and stops here; a failure below rolls the claim back with everything.
    claimed = await session.execute(delete(CartLine).where(CartLine.cart_id == cart.id))
    if claimed.rowcount != len(entries):  # type: ignore[attr-defined]
        raise Conflict("cart_changed", "Your cart changed meanwhile; look at it again.")
    await take_stock(session, quote_.items)
    await take_promotions(session, quote_=quote_, user_id=user.id)
    orders = await write_orders(
        session, quote_=quote_, user=user, address=address, note=note, now=now
    )
    await session.commit()
    return orders


_WHY = {
    "below_threshold": "the items it covers do not reach its minimum spend",
    "no_eligible_items": "it covers none of these items",
    "does_not_combine": "it does not combine with another discount applied",
    "nothing_to_take": "it takes nothing off this order",
}


def _require_coupons(quote_: Quote) -> None:
    """A coupon the buyer typed is applied or the checkout is refused with the reason; an
    order never goes through silently without it."""
    assert quote_.loaded is not None
    applied = {d.promotion_id for d in quote_.priced.discounts}
    skipped = dict(quote_.priced.not_applied)
    for row in quote_.loaded.rows.values():
        if row.code is None or row.id in applied:
            continue
        why = _WHY.get(skipped.get(row.id, ""), "it has been used up or you have used it already")
        raise DomainError("coupon_not_applied", f"Coupon {row.code} cannot be used: {why}.", 422)


# --- reading and cancelling ------------------------------------------------------------------


async def own_order(session: AsyncSession, *, user_id: int, order_id: int) -> Order:
    order = await session.get(Order, order_id)
    if order is None or order.user_id != user_id:
        raise NotFound("Order")
    return order


async def receipted_order(session: AsyncSession, *, user_id: int, order_id: int) -> Order:
    """The person's order if it was paid: a receipt is issued for money taken."""
    order = await own_order(session, user_id=user_id, order_id=order_id)
    if order.paid_at is None or order.payment_id is None:
        raise Conflict("not_paid", "A receipt is issued once the order is paid.")
    return order


async def merchant_order(session: AsyncSession, *, merchant_id: int, order_id: int) -> Order:
    order = await session.get(Order, order_id)
    if order is None or order.merchant_id != merchant_id:
        raise NotFound("Order")
    return order


async def lines_of(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, list[OrderLine]]:
    found: dict[int, list[OrderLine]] = defaultdict(list)
    for line in await session.scalars(
        select(OrderLine).where(OrderLine.order_id.in_(order_ids)).order_by(OrderLine.id)
    ):
        found[line.order_id].append(line)
    return found


async def discounts_of(
    session: AsyncSession, order_ids: Sequence[int]
) -> dict[int, list[OrderDiscount]]:
    found: dict[int, list[OrderDiscount]] = defaultdict(list)
    for d in await session.scalars(
        select(OrderDiscount)
        .where(OrderDiscount.order_id.in_(order_ids))
        .order_by(OrderDiscount.id)
    ):
        found[d.order_id].append(d)
    return found


async def orders_of(
    session: AsyncSession,
    *,
    user_id: int | None = None,
    merchant_id: int | None = None,
    status: str | None = None,
    before: int | None,
    limit: int,
) -> list[Order]:
    query = select(Order)
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    if merchant_id is not None:
        query = query.where(Order.merchant_id == merchant_id)
    if status is not None:
        query = query.where(Order.status == status)
    if before is not None:
        query = query.where(Order.id < before)
    return list(await session.scalars(query.order_by(Order.id.desc()).limit(limit)))


async def move(session: AsyncSession, *, order: Order, target: Status, **stamps: object) -> bool:
    """Move the order on if it is still where the caller saw it: one conditional UPDATE, so
    two people acting at once move it once."""
    if not domain.can_move(order.status, target):
        return False
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == order.status)
        .values(status=target.value, **stamps)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await session.refresh(order)
    return True


async def release(session: AsyncSession, *, order: Order, reason: str) -> bool:
    """Cancel an order that has not shipped and give back what it held: stock, flash-sale units,
    promotion uses and budget. False when it was paid (or cancelled) meanwhile."""
    from mobimart.promotions import flashsale

    if not await move(
        session,
        order=order,
        target=Status.cancelled,
        cancelled_at=utcnow(),
        cancel_reason=reason,
    ):
        return False
    lines = (await lines_of(session, [order.id]))[order.id]
    await return_stock(session, [line for line in lines if line.flash_sale_id is None])
    for line in lines:
        if line.flash_sale_id is not None:
            await flashsale.give_back(
                session, sale_id=line.flash_sale_id, user_id=order.user_id, quantity=line.quantity
            )
    given: dict[int, int] = defaultdict(int)
    for d in (await discounts_of(session, [order.id]))[order.id]:
        if d.promotion_id is not None:
            given[d.promotion_id] += d.amount_minor
    # A checkout takes one use of a promotion however many shops' orders share it: the use
    # comes back with the last of them, the budget with each.
    still_used = set(
        await session.scalars(
            select(OrderDiscount.promotion_id)
            .join(Order, Order.id == OrderDiscount.order_id)
            .where(
                Order.checkout_ref == order.checkout_ref,
                Order.id != order.id,
                Order.status != Status.cancelled.value,
                OrderDiscount.promotion_id.in_(list(given)),
            )
        )
    )
    for promotion_id, amount in sorted(given.items()):
        await promotions.give_back(
            session,
            promotion_id=promotion_id,
            amount=amount,
            user_id=order.user_id,
            uses=0 if promotion_id in still_used else 1,
        )
    await webhooks.emit(
        session,
        merchant_id=order.merchant_id,
        event="order.cancelled",
        data={"order": order.number, "reason": reason},
    )
    return True


async def cancel(session: AsyncSession, *, user: User, order_id: int) -> Order:
    order = await own_order(session, user_id=user.id, order_id=order_id)
    if order.status != Status.pending_payment:
        raise Conflict(
            "not_cancellable",
            "Only an unpaid order can be cancelled here; ask the shop for a refund.",
        )
    if not await release(session, order=order, reason="cancelled by the buyer"):
        raise Conflict("order_changed", "The order changed meanwhile; look at it again.")
    await session.commit()
    return order


async def release_expired(session: AsyncSession, *, now: dt.datetime | None = None) -> int:
    """Cancel orders left unpaid past their time (the job runs every minute)."""
    now = now or utcnow()
    expired = list(
        await session.scalars(
            select(Order)
            .where(Order.status == Status.pending_payment.value, Order.expires_at <= now)
            .order_by(Order.id)
            .limit(500)
        )
    )
    released = 0
    for order in expired:
        if await release(session, order=order, reason="not paid in time"):
            await notifications.order_update(session, order=order, event="cancelled")
            released += 1
        await session.commit()
    return released
