from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from mobimart.web.schemas import InputModel


class PayIn(InputModel):
    order_ids: list[int] = Field(min_length=1, max_length=20)
    method: Literal["wallet", "gateway"]
    return_url: str = Field("", max_length=500, description="where the gateway sends the payer")


class PaymentOut(BaseModel):
    id: int
    purpose: str
    method: str
    status: str
    amount_minor: int
    currency: str
    refunded_minor: int
    order_ids: list[int]
    created_at: dt.datetime
    succeeded_at: dt.datetime | None
    redirect_url: str | None = Field(None, description="open this to pay at the gateway")


class TopUpIn(InputModel):
    amount_minor: int = Field(ge=100, le=10_000_000)
    return_url: str = Field("", max_length=500)


class WalletEntryOut(BaseModel):
    id: int
    kind: str
    amount_minor: int
    balance_after_minor: int
    created_at: dt.datetime


class WalletOut(BaseModel):
    currency: str
    balance_minor: int
    entries: list[WalletEntryOut]
    next_cursor: str | None


class RefundIn(InputModel):
    amount_minor: int | None = Field(None, ge=1, le=100_000_000, description="none: all left")
    reason: str = Field("", max_length=200)


class RefundOut(BaseModel):
    id: int
    order_id: int | None
    amount_minor: int
    currency: str
    status: str
    reason: str
    created_at: dt.datetime
    refunded_at: dt.datetime | None


class BalanceOut(BaseModel):
    currency: str
    pending_minor: int
    available_minor: int
    commission_bps: int


class PayoutIn(InputModel):
    amount_minor: int = Field(ge=1, le=1_000_000_000)


class PayoutOut(BaseModel):
    id: int
    amount_minor: int
    currency: str
    created_at: dt.datetime
