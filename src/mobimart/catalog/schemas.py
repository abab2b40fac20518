from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from mobimart.catalog.domain import MAX_PRICE_MINOR, MAX_STOCK, NAME_MAX, ProductStatus
from mobimart.web.schemas import MAX_ID, InputModel


class ProductIn(InputModel):
    name: str = Field(min_length=1, max_length=NAME_MAX)
    description: str = Field("", max_length=5000)
    price_minor: int = Field(gt=0, le=MAX_PRICE_MINOR, description="Price in minor units (fen)")
    stock: int = Field(0, ge=0, le=MAX_STOCK)
    category_id: int | None = Field(None, ge=1, le=MAX_ID)
    publish: bool = False


class ProductUpdate(InputModel):
    """Only the fields sent change."""

    name: str = Field(None, min_length=1, max_length=NAME_MAX)  # type: ignore[assignment]
    description: str = Field(None, max_length=5000)  # type: ignore[assignment]
    price_minor: int = Field(None, gt=0, le=MAX_PRICE_MINOR)  # type: ignore[assignment]
    stock: int = Field(None, ge=0, le=MAX_STOCK)  # type: ignore[assignment]
    category_id: int | None = Field(None, ge=1, le=MAX_ID)


class ProductOut(BaseModel):
    id: int
    shop_id: int
    merchant_id: int
    category_id: int | None
    name: str
    description: str
    price_minor: int
    currency: str
    stock: int
    status: ProductStatus
    created_at: dt.datetime


class ShopOut(BaseModel):
    id: int
    merchant_id: int
    name: str
    description: str


class CategoryOut(BaseModel):
    id: int
    parent_id: int | None
    slug: str
    name_en: str
    name_zh: str
