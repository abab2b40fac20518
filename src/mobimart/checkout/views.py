"""Orders and carts as the API and the pages show them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.checkout import service as checkout
from mobimart.checkout.models import Order
from mobimart.checkout.schemas import (
    CartLineOut,
    CartOut,
    CartShopOut,
    DiscountOut,
    OrderLineOut,
    OrderOut,
)


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
