from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
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
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name_en: Mapped[str] = mapped_column(String(60))
    name_zh: Mapped[str] = mapped_column(String(60))


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (Index("ix_products_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(10))  # draft | published | archived
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProductChange(Base):
    """The catalogue's change feed: one row per product change, written in the same
    transaction. Readers (each process's search index) apply the rows after the last id they
    saw, so a change is visible everywhere at their next query."""

    __tablename__ = "product_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(index=True)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
