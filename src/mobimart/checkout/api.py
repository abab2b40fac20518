"""Cart, addresses, checkout and the buyer's orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from mobimart.checkout import service as checkout
from mobimart.checkout import views
from mobimart.checkout.domain import Status
from mobimart.checkout.models import Address
from mobimart.checkout.schemas import (
    AddressIn,
    AddressOut,
    CartItemIn,
    CartOut,
    CheckoutIn,
    MerchantOrderDetailOut,
    MerchantOrderOut,
    OrderOut,
    PlacedOut,
    ReceiptOut,
)
from mobimart.db import utcnow
from mobimart.infra import idempotency
from mobimart.infra.idempotency import IdempotencyKey
from mobimart.logistics import service as logistics
from mobimart.merchants import service as merchants
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, encode_cursor, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["checkout"])

Codes = Annotated[list[str], Query(max_length=5, description="coupon codes to try")]


@router.get("/cart")
async def get_cart(user: CurrentUser, session: Session, code: Codes = []) -> CartOut:  # noqa: B006
    """The cart priced now: every discount on the line it lands on, and why others did not
    apply."""
    cart = await checkout.cart_of(session, user_id=user.id)
    entries = await checkout.cart_entries(session, cart=cart)
    quote = await checkout.quote(
        session, entries=entries, codes=code, user_id=user.id, now=utcnow()
    )
    return views.cart_out(quote)


@router.put("/cart/items/{variant_id}")
async def put_cart_item(
    variant_id: IdPath, body: CartItemIn, user: CurrentUser, session: Session
) -> CartOut:
    cart = await checkout.cart_of(session, user_id=user.id)
    await checkout.put(session, cart=cart, variant_id=variant_id, quantity=body.quantity)
    return await get_cart(user, session)


@router.delete("/cart/items/{variant_id}")
async def delete_cart_item(variant_id: IdPath, user: CurrentUser, session: Session) -> CartOut:
    cart = await checkout.cart_of(session, user_id=user.id)
    await checkout.put(session, cart=cart, variant_id=variant_id, quantity=0)
    return await get_cart(user, session)


def _address_out(a: Address) -> AddressOut:
    return AddressOut.model_validate(a, from_attributes=True)


@router.get("/me/addresses")
async def list_addresses(user: CurrentUser, session: Session) -> list[AddressOut]:
    return [_address_out(a) for a in await checkout.addresses(session, user_id=user.id)]


@router.post("/me/addresses", status_code=201)
async def add_address(body: AddressIn, user: CurrentUser, session: Session) -> AddressOut:
    spec = checkout.AddressSpec(
        recipient=body.recipient, phone=body.phone, region=body.region, detail=body.detail
    )
    return _address_out(
        await checkout.add_address(session, user=user, spec=spec, default=body.default)
    )


@router.delete("/me/addresses/{address_id}", status_code=204)
async def delete_address(address_id: IdPath, user: CurrentUser, session: Session) -> None:
    await checkout.delete_address(session, user_id=user.id, address_id=address_id)


@router.post("/orders", status_code=201, response_model=PlacedOut)
async def place_orders(
    body: CheckoutIn, user: CurrentUser, session: Session, key: IdempotencyKey = None
) -> object:
    """Check out the cart: one order per shop, stock held until paid or until
    `order_payment_timeout_s` passes."""

    async def work() -> PlacedOut:
        orders = await checkout.place(
            session, user=user, address_id=body.address_id, codes=body.codes, note=body.note
        )
        out = await views.orders_out(session, orders)
        return PlacedOut(orders=out, total_minor=sum(o.total_minor for o in out))

    return await idempotency.run(
        session, user_id=user.id, scope="POST /orders", key=key, request=body, work=work, status=201
    )


@router.get("/orders")
async def my_orders(
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[OrderOut]:
    rows = await checkout.orders_of(
        session, user_id=user.id, status=status, before=page.before_id, limit=page.fetch
    )
    items = rows[: page.limit]
    return Page[OrderOut](
        items=await views.orders_out(session, items),
        next_cursor=encode_cursor(items[-1].id) if len(rows) > page.limit and items else None,
    )


@router.get("/orders/{order_id}")
async def my_order(order_id: IdPath, user: CurrentUser, session: Session) -> OrderOut:
    order = await checkout.own_order(session, user_id=user.id, order_id=order_id)
    return (await views.orders_out(session, [order]))[0]


@router.post("/orders/{order_id}/cancel")
async def cancel_order(order_id: IdPath, user: CurrentUser, session: Session) -> OrderOut:
    order = await checkout.cancel(session, user=user, order_id=order_id)
    return (await views.orders_out(session, [order]))[0]


@router.post("/orders/{order_id}/receive")
async def receive_order(order_id: IdPath, user: CurrentUser, session: Session) -> OrderOut:
    """Confirm the parcel arrived: the order completes and the shop is paid. Without it, a
    delivered order completes by itself after `auto_complete_days`."""
    order = await logistics.receive(session, user=user, order_id=order_id)
    return (await views.orders_out(session, [order]))[0]


@router.get("/orders/{order_id}/receipt")
async def receipt(order_id: IdPath, user: CurrentUser, session: Session) -> ReceiptOut:
    order = await checkout.receipted_order(session, user_id=user.id, order_id=order_id)
    return await views.receipt_out(session, order)


# --- the shop's side -------------------------------------------------------------------------


@router.get("/merchants/{merchant_id}/orders")
async def merchant_orders(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    status: Status | None = None,
) -> Page[MerchantOrderOut]:
    """The shop's orders, newest first; buyers' numbers are masked."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await checkout.orders_of(
        session,
        merchant_id=merchant_id,
        status=status.value if status else None,
        before=page.before_id,
        limit=page.fetch,
    )
    items = rows[: page.limit]
    return Page[MerchantOrderOut](
        items=await views.merchant_orders_out(session, items),
        next_cursor=encode_cursor(items[-1].id) if len(rows) > page.limit and items else None,
    )


@router.get("/merchants/{merchant_id}/orders/{order_id}")
async def merchant_order(
    merchant_id: IdPath, order_id: IdPath, user: CurrentUser, session: Session
) -> MerchantOrderDetailOut:
    """One order with its lines, discounts, refunds, shipment and tracking events."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    order = await checkout.merchant_order(session, merchant_id=merchant_id, order_id=order_id)
    return await views.merchant_order_detail(session, order)
