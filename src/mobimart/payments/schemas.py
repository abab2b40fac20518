from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mobimart.web.schemas import MAX_ID, InputModel


class PayIn(InputModel):
    order_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=20)
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

    @classmethod
    def of(cls, payment: object, redirect_url: str | None = None) -> PaymentOut:
        out = cls.model_validate(payment, from_attributes=True)
        out.redirect_url = redirect_url
        return out


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


class CommissionIn(InputModel):
    commission_bps: int = Field(ge=0, le=5_000, description="500 = 5 % of each order")
    reason: str = Field("", max_length=200)


class PayoutIn(InputModel):
    amount_minor: int = Field(ge=1, le=1_000_000_000)


class PayoutOut(BaseModel):
    id: int
    amount_minor: int
    currency: str
    created_at: dt.datetime


# --- face to face and pay-for-me -------------------------------------------------------------


class CollectionIn(InputModel):
    amount_minor: int = Field(ge=1, le=10_000_000)
    note: str = Field("", max_length=80, description="shown to the payer, e.g. 'table 4'")


class CollectionOut(BaseModel):
    id: int
    token: str
    url: str = Field(description="what the QR encodes: the payer opens it to pay")
    amount_minor: int
    currency: str
    note: str
    status: Literal["open", "paid", "expired"]
    expires_at: dt.datetime
    payment_id: int | None


class PublicCollectionOut(BaseModel):
    shop_name: str
    amount_minor: int
    currency: str
    note: str
    status: Literal["open", "paid", "expired"]
    expires_at: dt.datetime


class CollectionPayIn(InputModel):
    amount_minor: int = Field(
        ge=1, le=10_000_000, description="the amount the payer saw and confirmed"
    )


class PaymentCodeOut(BaseModel):
    code: str = Field(description="18 digits; show it as a QR and as text")
    expires_at: dt.datetime


class CodeChargeIn(InputModel):
    code: str = Field(min_length=1, max_length=40, description="the customer's payment code")
    amount_minor: int = Field(ge=1, le=10_000_000)
    note: str = Field("", max_length=80)


class ShareOut(BaseModel):
    url: str = Field(description="send it to the friend who pays")
    expires_at: dt.datetime


class SharedLineOut(BaseModel):
    name: str
    options: dict[str, str]
    quantity: int
    unit_price_minor: int
    total_minor: int


class SharedOrderOut(BaseModel):
    """What the friend pays for: no address, phone number or note of the buyer's."""

    shop_name: str
    requested_by: str
    currency: str
    lines: list[SharedLineOut]
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    shipping_discount_minor: int
    total_minor: int
    expires_at: dt.datetime


class SharedPayIn(InputModel):
    method: Literal["wallet", "gateway"] = "wallet"
    return_url: str = Field("", max_length=500, description="where the gateway sends the payer")
