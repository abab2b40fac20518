from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow
from mobimart.infra.pii import Encrypted


class Address(Base):
    """A delivery address; the person's name, number and street are personal data."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    recipient: Mapped[str] = mapped_column(Encrypted())
    phone: Mapped[str] = mapped_column(Encrypted())
    region: Mapped[str] = mapped_column(String(80))  # province, city, district
    detail: Mapped[str] = mapped_column(Encrypted())
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Cart(Base):
    """A signed-in person's cart, or a guest's (found by the hash of its cookie token)."""

    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    guest_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class CartLine(Base):
    __tablename__ = "cart_lines"
    __table_args__ = (UniqueConstraint("cart_id", "variant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Order(Base):
    """One shop's part of a checkout. Amounts are kept as they were when it was placed."""

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_user_id_id", "user_id", "id"),
        Index("ix_orders_merchant_id_id", "merchant_id", "id"),
        Index("ix_orders_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    checkout_ref: Mapped[str] = mapped_column(String(32), index=True)  # orders placed together
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int]  # after catalogue prices
    discount_minor: Mapped[int]  # order promotions and coupons on the items
    shipping_minor: Mapped[int]
    shipping_discount_minor: Mapped[int]
    total_minor: Mapped[int]
    refunded_minor: Mapped[int] = mapped_column(default=0)
    # A snapshot (encrypted JSON): later edits of the address book do not move a parcel.
    address: Mapped[str | None] = mapped_column(Encrypted())
    note: Mapped[str] = mapped_column(String(200), default="")
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    # Pay-for-me: the hash of the share link's token, while one is open.
    share_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]  # unpaid after this, the job cancels and releases stock
    paid_at: Mapped[dt.datetime | None]
    shipped_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")


class OrderLine(Base):
    __tablename__ = "order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    flash_sale_id: Mapped[int | None] = mapped_column(ForeignKey("flash_sales.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    list_price_minor: Mapped[int]
    unit_price_minor: Mapped[int]  # after the catalogue promotion or flash price
    quantity: Mapped[int]
    discount_minor: Mapped[int]  # this line's share of order discounts
    total_minor: Mapped[int]
    refunded_minor: Mapped[int] = mapped_column(default=0)


class OrderDiscount(Base):
    """Why an order costs what it does: every promotion applied, on a line or the order."""

    __tablename__ = "order_discounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    promotion_id: Mapped[int | None] = mapped_column(
        ForeignKey("promotions.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(80))
    amount_minor: Mapped[int]
    on_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
