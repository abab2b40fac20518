from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, Field

from mobimart.promotions.domain import Kind, Scope
from mobimart.web.schemas import MAX_ID, InputModel

Money = Field(ge=0, le=100_000_000)


class PromotionIn(InputModel):
    name: str = Field(min_length=1, max_length=80)
    kind: Kind
    scope: Scope
    value: int = Field(0, ge=0, le=100_000_000, description="amount off, or basis points")
    threshold_minor: int = Field(0, ge=0, le=100_000_000)
    cap_minor: int | None = Field(None, ge=1, le=100_000_000)
    code: str | None = Field(None, min_length=1, max_length=32)
    product_ids: list[int] | None = Field(None, max_length=500)
    category_ids: list[int] | None = Field(None, max_length=100)
    priority: int = Field(0, ge=-100, le=100)
    combines: bool = False
    budget_minor: int | None = Field(None, ge=1, le=1_000_000_000)
    total_uses: int | None = Field(None, ge=1, le=10_000_000)
    per_person: int | None = Field(None, ge=1, le=1000)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class PromotionOut(BaseModel):
    id: int
    merchant_id: int | None
    name: str
    kind: str
    scope: str
    value: int
    threshold_minor: int
    cap_minor: int | None
    code: str | None
    product_ids: list[int] | None
    category_ids: list[int] | None
    priority: int
    combines: bool
    budget_minor: int | None
    spent_minor: int
    total_uses: int | None
    used: int
    per_person: int | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    active: bool


class FlashSaleIn(InputModel):
    variant_id: int = Field(ge=1, le=MAX_ID)
    price_minor: int = Field(ge=1, le=100_000_000)
    quantity: int = Field(ge=1, le=1_000_000)
    per_person: int = Field(1, ge=1, le=100)
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class FlashSaleOut(BaseModel):
    id: int
    merchant_id: int
    product_id: int
    variant_id: int
    price_minor: int
    quantity: int
    sold: int
    per_person: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    closed_at: dt.datetime | None


class FlashBuyIn(InputModel):
    quantity: int = Field(1, ge=1, le=100)
    address_id: int = Field(ge=1, le=MAX_ID)
