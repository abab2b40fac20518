from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow


class Promotion(Base):
    """A catalogue promotion, an order promotion or a coupon (an order promotion with a code).
    Uses and budget are taken by conditional updates when an order is placed and given back
    when it is cancelled unpaid."""

    __tablename__ = "promotions"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )  # none: the platform's, for every shop
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(10))
    value: Mapped[int] = mapped_column(default=0)
    threshold_minor: Mapped[int] = mapped_column(default=0)
    cap_minor: Mapped[int | None]
    code: Mapped[str | None] = mapped_column(String(32), unique=True)
    product_ids: Mapped[list[int] | None] = mapped_column(JSON)
    category_ids: Mapped[list[int] | None] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(default=0)
    combines: Mapped[bool] = mapped_column(Boolean, default=False)
    budget_minor: Mapped[int | None]
    spent_minor: Mapped[int] = mapped_column(default=0)
    total_uses: Mapped[int | None]
    used: Mapped[int] = mapped_column(default=0)
    per_person: Mapped[int | None]
    starts_at: Mapped[dt.datetime | None]
    ends_at: Mapped[dt.datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FlashSale(Base):
    """秒杀: `quantity` units of a variant at `price_minor` between two times. The units are
    taken from the variant's stock when the sale is created and the unsold ones go back when
    it ends, so buying in the sale touches only this row (or Redis's counter)."""

    __tablename__ = "flash_sales"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    price_minor: Mapped[int]
    quantity: Mapped[int]
    sold: Mapped[int] = mapped_column(default=0)
    per_person: Mapped[int] = mapped_column(default=1)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]  # unsold units returned to the variant
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Allowance(Base):
    """What one person has taken of something limited per person (a coupon's uses, a flash
    sale's units); raised only by a conditional upsert, so parallel requests cannot pass it."""

    __tablename__ = "allowances"

    subject: Mapped[str] = mapped_column(String(40), primary_key=True)  # "promotion:7"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    taken: Mapped[int] = mapped_column(default=0)
