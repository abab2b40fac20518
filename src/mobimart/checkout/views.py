"""Orders and carts as the API and the pages show them."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.domain import mask_phone
from mobimart.catalog.models import Shop
from mobimart.checkout import service as checkout
from mobimart.checkout.models import Order
from mobimart.checkout.schemas import (
    CartLineOut,
    CartOut,
    CartShopOut,
    DiscountOut,
    MerchantOrderDetailOut,
    MerchantOrderOut,
    OrderLineOut,
    OrderOut,
    ReceiptOut,
    ShippingAddressOut,
)
from mobimart.logistics import service as logistics
from mobimart.logistics.domain import CARRIERS
from mobimart.logistics.views import shipment_out
from mobimart.payments import service as payments
from mobimart.payments.models import Payment
from mobimart.payments.schemas import RefundOut


async def orders_out(session: AsyncSession, orders: Sequence[Order]) -> list[OrderOut]:
    ids = [o.id for o in orders]
    lines = await checkout.lines_of(session, ids)
    discounts = await checkout.discounts_of(session, ids)
    return [
        OrderOut.model_validate(
            {
                **{k: getattr(o, k) for k in OrderOut.model_fields if hasattr(o, k)},
                "lines": [
                    OrderLineOut.model_validate(line, from_attributes=True) for line in lines[o.id]
                ],
                "discounts": [
                    DiscountOut(
                        promotion_id=d.promotion_id, name=d.name, amount_minor=d.amount_minor
                    )
                    for d in discounts[o.id]
                ],
            }
        )
        for o in orders
    ]


def masked_address(snapshot: str | None) -> ShippingAddressOut | None:
    """An order's delivery address for the shop: everything but the full phone number."""
    if not snapshot:
        return None
    data = json.loads(snapshot)
    try:
        phone = mask_phone(data["phone"])
    except Exception:  # an unreadable number shows as nothing, never as itself
        phone = "****"
    return ShippingAddressOut(
        recipient=data["recipient"],
        phone_masked=phone,
        region=data["region"],
        detail=data["detail"],
    )


async def merchant_orders_out(
    session: AsyncSession, orders: Sequence[Order]
) -> list[MerchantOrderOut]:
    shipments = await logistics.shipments_of(session, [o.id for o in orders])
    out = []
    for order, base in zip(orders, await orders_out(session, orders), strict=True):
        shipment = shipments.get(order.id)
        out.append(
            MerchantOrderOut(
                **base.model_dump(),
                note=order.note,
                address=masked_address(order.address),
                carrier=shipment.carrier if shipment else None,
                tracking_number=shipment.tracking_number if shipment else None,
            )
        )
    return out


async def merchant_order_detail(session: AsyncSession, order: Order) -> MerchantOrderDetailOut:
    (base,) = await merchant_orders_out(session, [order])
    shipment = await logistics.shipment_of(session, order_id=order.id)
    events = await logistics.timeline(session, order_id=order.id) if shipment else []
    return MerchantOrderDetailOut(
        **base.model_dump(),
        refunds=[
            RefundOut.model_validate(r, from_attributes=True)
            for r in await payments.refunds_of(session, order_id=order.id)
        ],
        shipment=shipment_out(shipment, events) if shipment else None,
    )


async def order_page_context(session: AsyncSession, order: Order) -> dict[str, object]:
    """What the shopper's and the shop's order pages both show: the order, where it goes,
    its parcel's timeline and its refunds."""
    return {
        "order": (await orders_out(session, [order]))[0],
        "address": checkout.address_of(order),
        "shipment": await logistics.shipment_of(session, order_id=order.id),
        "events": await logistics.timeline(session, order_id=order.id),
        "refunds": await payments.refunds_of(session, order_id=order.id),
        "carriers": CARRIERS,
    }


async def receipt_out(session: AsyncSession, order: Order) -> ReceiptOut:
    """A paid order's receipt (the caller checked it was paid)."""
    assert order.payment_id is not None
    assert order.paid_at is not None
    (base,) = await orders_out(session, [order])
    payment = await session.get(Payment, order.payment_id)
    shop = await session.get(Shop, order.shop_id)
    assert payment is not None
    assert shop is not None
    return ReceiptOut(
        number=order.number,
        shop_name=shop.name,
        currency=order.currency,
        lines=base.lines,
        discounts=base.discounts,
        subtotal_minor=order.subtotal_minor,
        discount_minor=order.discount_minor,
        shipping_minor=order.shipping_minor,
        shipping_discount_minor=order.shipping_discount_minor,
        total_minor=order.total_minor,
        payment_method=payment.method,
        paid_at=order.paid_at,
        refunds=[
            RefundOut.model_validate(r, from_attributes=True)
            for r in await payments.refunds_of(session, order_id=order.id)
        ],
        refunded_minor=order.refunded_minor,
        net_minor=order.total_minor - order.refunded_minor,
    )


def cart_out(quote: checkout.Quote) -> CartOut:
    items = {i.variant.id: i for i in quote.items}
    lines = []
    for p in quote.priced.lines:
        item = items[p.line.key]
        shown = ([p.catalogue] if p.catalogue else []) + list(p.discounts)
        lines.append(
            CartLineOut(
                variant_id=item.variant.id,
                product_id=item.product.id,
                shop_id=item.product.shop_id,
                name=item.product.name,
                sku=item.variant.sku,
                options=dict(item.variant.options),
                quantity=item.quantity,
                list_price_minor=item.unit_price,
                unit_price_minor=p.unit_price,
                subtotal_minor=p.subtotal,
                discounts=[
                    DiscountOut(promotion_id=d.promotion_id, name=d.name, amount_minor=d.amount)
                    for d in shown
                ],
                total_minor=p.total,
                in_stock=item.variant.stock >= item.quantity,
            )
        )
    shops = [
        CartShopOut(
            shop_id=shop_id,
            shop_name=shop.name,
            shipping_minor=quote.shipping[shop_id],
            shipping_discount_minor=quote.shipping_off.get(shop_id, 0),
            total_minor=quote.shop_total(shop_id),
        )
        for shop_id, shop in sorted(quote.shops.items())
    ]
    priced = quote.priced
    return CartOut(
        currency=quote.currency,
        lines=lines,
        shops=shops,
        order_discounts=[
            DiscountOut(promotion_id=d.promotion_id, name=d.name, amount_minor=d.amount)
            for d in priced.discounts
        ],
        not_applied=[{"promotion_id": pid, "reason": why} for pid, why in priced.not_applied],
        unknown_codes=list(quote.unknown_codes),
        unavailable_variant_ids=list(quote.unavailable),
        subtotal_minor=priced.subtotal,
        shipping_minor=priced.shipping,
        discount_minor=sum(d.amount for d in priced.discounts),
        total_minor=priced.total,
    )
