"""Request and response bodies of the lucky-draw API."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from mobimart.web.schemas import MAX_ID, InputModel


class PrizeIn(InputModel):
    name: str = Field(min_length=1, max_length=80)
    kind: Literal["coupon", "points", "physical"]
    chance_ppm: int = Field(ge=1, le=1_000_000, description="probability in millionths")
    quantity: int = Field(ge=1, le=1_000_000)
    promotion_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="coupon prizes: the coupon each winner gets a copy of"
    )
    points: int | None = Field(None, ge=1, le=1_000_000, description="points prizes")


class RulesIn(InputModel):
    per_day: Literal[0, 1] = Field(
        0, description="1: once per person per local day in `zone`; 0: once for the whole draw"
    )
    zone: str = Field("Asia/Shanghai", min_length=1, max_length=64)
    must_follow: bool = False
    min_order_minor: int = Field(0, ge=0, le=100_000_000)
    order_days: int = Field(30, ge=1, le=366)


class DrawIn(InputModel):
    name: str = Field(min_length=1, max_length=80)
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    rules: RulesIn = Field(default_factory=RulesIn)
    prizes: list[PrizeIn] = Field(min_length=1, max_length=20)


class DrawUpdate(InputModel):
    name: str = Field(min_length=1, max_length=80)


class PrizeOut(BaseModel):
    id: int
    name: str
    kind: str
    chance_ppm: int
    quantity: int
    awarded: int
    points: int | None
    band_start: int
    band_end: int


class DrawOut(BaseModel):
    id: int
    merchant_id: int
    name: str
    rules: dict[str, object]
    opens_at: dt.datetime
    closes_at: dt.datetime
    closed: bool
    seed_hash: str
    seed: str | None = Field(description="revealed once the draw has closed")
    prizes: list[PrizeOut]
    url: str


class MerchantDrawOut(DrawOut):
    entries: int
    prize_promotions: dict[int, int | None] = Field(
        description="prize id -> the coupon it gives a copy of"
    )


class EntryIn(InputModel):
    source: Literal["qr", "link", "page"] = "page"
    qr: str | None = Field(None, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")


class EntryOut(BaseModel):
    id: int
    draw_id: int
    period: str
    roll: int | None
    outcome: str
    prize_id: int | None
    prize_name: str | None
    prize_kind: str | None
    coupon_code: str | None
    points: int | None
    claimed: bool
    created_at: dt.datetime


class ClaimIn(InputModel):
    name: str = Field(min_length=1, max_length=40)
    phone: str = Field(min_length=5, max_length=20)
    address: str = Field(min_length=5, max_length=200)


class ClaimOut(BaseModel):
    entry_id: int
    prize: str
    name: str
    phone_masked: str
    address: str
    claimed_at: dt.datetime


class PublicEntryOut(BaseModel):
    id: int
    roll: int | None
    prize_id: int | None
    outcome: str


class VerifyOut(BaseModel):
    draw_id: int
    seed_hash: str
    seed: str | None
    formula: str
    bands: list[PrizeOut]
    items: list[PublicEntryOut]
    next_cursor: str | None
