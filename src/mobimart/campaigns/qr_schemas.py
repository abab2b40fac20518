"""Marketing QR codes as JSON."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mobimart.campaigns import qr
from mobimart.campaigns.models import QrCode
from mobimart.web.schemas import MAX_ID, InputModel

Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class TargetIn(InputModel):
    kind: Literal["product", "shop", "draw", "url"]
    id: Id | None = Field(None, description="the product's or draw's id (the shop: optional)")
    url: str | None = Field(
        None, max_length=500, description="url: a path on this site (/…) or an https:// address"
    )

    def target(self) -> qr.Target:
        return qr.Target(qr.TargetKind(self.kind), self.id, self.url)


class QrCodeIn(InputModel):
    label: str = Field(min_length=1, max_length=80)
    dynamic: bool = Field(False, description="a dynamic code's target can change after printing")
    target: TargetIn = Field(
        description="static codes: product or shop; dynamic codes: any kind (draw, url too)"
    )
    campaign_id: Id | None = None

    def spec(self) -> qr.Spec:
        return qr.Spec(self.label, self.target.target(), self.dynamic, self.campaign_id)


class QrCodePatch(InputModel):
    label: str | None = Field(None, min_length=1, max_length=80)
    target: TargetIn | None = Field(None, description="dynamic codes only (409 for static)")
    campaign_id: Id | None = Field(None, description="null (given) clears it")

    def change(self) -> qr.Change:
        return qr.Change(
            label=self.label,
            target=self.target.target() if self.target else None,
            campaign_id=self.campaign_id,
            clear_campaign="campaign_id" in self.model_fields_set and self.campaign_id is None,
        )


class TargetOut(BaseModel):
    kind: str
    id: int | None
    url: str | None


class QrCodeOut(BaseModel):
    id: int
    merchant_id: int
    token: str
    url: str = Field(description="what the code encodes")
    dynamic: bool
    label: str
    target: TargetOut
    campaign_id: int | None
    scans: int
    created_at: dt.datetime
    archived_at: dt.datetime | None

    @classmethod
    def of(cls, code: QrCode) -> QrCodeOut:
        return cls(
            id=code.id,
            merchant_id=code.merchant_id,
            token=code.token,
            url=qr.url_of(code.token),
            dynamic=code.dynamic,
            label=code.label,
            target=TargetOut(kind=code.target_kind, id=code.target_id, url=code.target_url),
            campaign_id=code.campaign_id,
            scans=code.scans,
            created_at=code.created_at,
            archived_at=code.archived_at,
        )


class DayOut(BaseModel):
    day: dt.date
    scans: int


class RevenueOut(BaseModel):
    currency: str
    amount_minor: int


class QrStatsOut(BaseModel):
    qr_id: int
    days: int
    since: dt.datetime
    total_scans: int = Field(description="all time, bots excluded")
    by_day: list[DayOut] = Field(description="every UTC day of the window, oldest first")
    devices: dict[str, int] = Field(description="scans in the window by device class")
    located: int = Field(description="scans in the window with a shared position")
    orders: int = Field(description="paid orders attributed to the code (last touch)")
    revenue: list[RevenueOut] = Field(description="their totals, per currency")

    @classmethod
    def of(cls, s: qr.Stats) -> QrStatsOut:
        return cls(
            qr_id=s.qr_id,
            days=s.days,
            since=s.since,
            total_scans=s.total_scans,
            by_day=[DayOut(day=d.day, scans=d.scans) for d in s.by_day],
            devices=s.devices,
            located=s.located,
            orders=s.orders,
            revenue=[
                RevenueOut(currency=r.currency, amount_minor=r.amount_minor) for r in s.revenue
            ],
        )
