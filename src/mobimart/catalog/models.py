from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow


class Shop(Base):
    """An approved merchant's storefront."""

    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), unique=True
    )
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    # A flat fee per order, and the order subtotal from which delivery is free (none: never).
    shipping_minor: Mapped[int] = mapped_column(default=0, server_default="0")
    free_shipping_over_minor: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name_en: Mapped[str] = mapped_column(String(60))
    name_zh: Mapped[str] = mapped_column(String(60))


class Brand(Base):
    """A brand with its public page. Created by a merchant (who then manages it) or an admin."""

    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    story: Mapped[str] = mapped_column(Text, default="")
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="SET NULL"), index=True
    )
    # Kept by follow/unfollow in the same transaction as the follow row (see service.follow).
    follower_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BrandFollow(Base):
    __tablename__ = "brand_follows"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    brand_id: Mapped[int] = mapped_column(
        ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ShopFollow(Base):
    """A person following a shop (its news, draws that ask for a follower)."""

    __tablename__ = "shop_follows"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (Index("ix_products_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    brand_id: Mapped[int | None] = mapped_column(
        ForeignKey("brands.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The lowest variant price and the total variant stock, kept by the service for listings.
    price_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(10))  # draft | published | archived
    # Kept by orders and reviews; listings sort and filter on them.
    sales: Mapped[int] = mapped_column(default=0)
    rating_count: Mapped[int] = mapped_column(default=0)
    rating_total: Mapped[int] = mapped_column(default=0)  # sum of 1-5 stars
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Variant(Base):
    """What is bought: one combination of option values with its own SKU, price and stock.
    Every product has at least one (a product without options has one with none)."""

    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("merchant_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"colour": "red"}
    price_minor: Mapped[int]
    stock: Mapped[int] = mapped_column(default=0)
    position: Mapped[int] = mapped_column(default=0)


class Media(Base):
    """An uploaded image or video of a product (its gallery) or a brand (logo, banner)."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    brand_id: Mapped[int | None] = mapped_column(
        ForeignKey("brands.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(8))  # gallery | logo | banner
    kind: Mapped[str] = mapped_column(String(5))  # image | video
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProductChange(Base):
    """The catalogue's change feed: one row per product change, written in the same
    transaction. Readers (each process's search index) apply the rows after the last id they
    saw, so a change is visible everywhere at their next query."""

    __tablename__ = "product_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(index=True)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
