from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from mobimart.logistics.schemas import ShipmentOut
from mobimart.payments.schemas import RefundOut
from mobimart.web.schemas import MAX_ID, InputModel


class CartItemIn(InputModel):
    quantity: int = Field(ge=0, le=99, description="0 removes the item")


class DiscountOut(BaseModel):
    promotion_id: int | None
    name: str
    amount_minor: int


class CartLineOut(BaseModel):
    variant_id: int
    product_id: int
    shop_id: int
    name: str
    sku: str
    options: dict[str, str]
    quantity: int
    list_price_minor: int
    unit_price_minor: int
    subtotal_minor: int
    discounts: list[DiscountOut] = Field(description="every saving on this line, with its reason")
    total_minor: int
    in_stock: bool


class CartShopOut(BaseModel):
    shop_id: int
    shop_name: str
    shipping_minor: int
    shipping_discount_minor: int
    total_minor: int


class CartOut(BaseModel):
    currency: str
    lines: list[CartLineOut]
    shops: list[CartShopOut]
    order_discounts: list[DiscountOut]
    not_applied: list[dict[str, Any]]
    unknown_codes: list[str]
    unavailable_variant_ids: list[int]
    subtotal_minor: int
    shipping_minor: int
    discount_minor: int
    total_minor: int


class AddressIn(InputModel):
    recipient: str = Field(min_length=1, max_length=40)
    phone: str = Field(min_length=5, max_length=20)
    region: str = Field(min_length=1, max_length=80)
    detail: str = Field(min_length=1, max_length=200)
    default: bool = False


class AddressOut(BaseModel):
    id: int
    recipient: str
    phone: str
    region: str
    detail: str
    is_default: bool


class CheckoutIn(InputModel):
    address_id: int = Field(ge=1, le=MAX_ID)
    codes: list[str] = Field(default_factory=list, max_length=5)
    note: str = Field("", max_length=200)


class OrderLineOut(BaseModel):
    id: int
    product_id: int
    variant_id: int
    name: str
    sku: str
    options: dict[str, Any]
    quantity: int
    list_price_minor: int
    unit_price_minor: int
    discount_minor: int
    total_minor: int
    refunded_minor: int
    flash_sale_id: int | None


class OrderOut(BaseModel):
    id: int
    number: str
    status: str
    shop_id: int
    merchant_id: int
    currency: str
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    shipping_discount_minor: int
    total_minor: int
    refunded_minor: int
    created_at: dt.datetime
    expires_at: dt.datetime
    paid_at: dt.datetime | None
    shipped_at: dt.datetime | None
    delivered_at: dt.datetime | None
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    cancel_reason: str
    lines: list[OrderLineOut]
    discounts: list[DiscountOut]


class PlacedOut(BaseModel):
    orders: list[OrderOut]
    total_minor: int


class ShippingAddressOut(BaseModel):
    """Where the parcel goes, as a shop sees it: the number masked (138****5678)."""

    recipient: str
    phone_masked: str
    region: str
    detail: str


class MerchantOrderOut(OrderOut):
    note: str
    address: ShippingAddressOut | None
    carrier: str | None
    tracking_number: str | None


class MerchantOrderDetailOut(MerchantOrderOut):
    refunds: list[RefundOut]
    shipment: ShipmentOut | None = Field(description="with its tracking events, oldest first")


class ReceiptOut(BaseModel):
    number: str
    shop_name: str
    currency: str
    lines: list[OrderLineOut]
    discounts: list[DiscountOut]
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    shipping_discount_minor: int
    total_minor: int
    payment_method: str = Field(description="wallet or gateway")
    paid_at: dt.datetime
    refunds: list[RefundOut]
    refunded_minor: int
    net_minor: int = Field(description="what the buyer paid, less refunds")
