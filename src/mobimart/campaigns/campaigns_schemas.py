"""Campaign authoring and reports over the API: drafts, estimate, schedule, the report, the
merchant's marketing overview."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mobimart.campaigns import campaigns, report
from mobimart.campaigns.models import Campaign
from mobimart.web.schemas import MAX_ID, InputModel

Channel = Literal["sms", "push", "inbox"]
Name = Annotated[str, Field(min_length=1, max_length=80)]
Template = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description="Text with {name}, {shop} and {link} ({link} needs link_url); {{ and }} are "
        "literal braces. SMS get the opt-out hint appended unless they carry one.",
    ),
]
LinkUrl = Annotated[
    str | None,
    Field(max_length=500, description="Where each person's short link goes: /path or https://"),
]
SegmentId = Annotated[int | None, Field(ge=1, le=MAX_ID)]
Throttle = Annotated[
    int | None, Field(ge=1, le=100_000, description="messages per second; null: as fast as taken")
]


class CampaignIn(InputModel):
    name: Name
    channel: Channel
    template: Template
    segment_id: SegmentId = None
    link_url: LinkUrl = None
    throttle_per_s: Throttle = None

    def spec(self) -> campaigns.Spec:
        return campaigns.Spec(**self.model_dump())


class CampaignPatch(InputModel):
    """Only the fields given change; null clears segment, link or throttle."""

    name: Name | None = None
    channel: Channel | None = None
    template: Template | None = None
    segment_id: SegmentId = None
    link_url: LinkUrl = None
    throttle_per_s: Throttle = None

    def changes(self) -> dict[str, object]:
        given = self.model_dump(exclude_unset=True)
        required = ("name", "channel", "template")
        return {k: v for k, v in given.items() if v is not None or k not in required}


class ScheduleIn(InputModel):
    at: AwareDatetime = Field(description="When to send, with its offset (e.g. ...Z for UTC)")


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    merchant_id: int | None
    name: str
    channel: str
    segment_id: int | None
    template: str
    link_url: str | None
    status: str = Field(description="draft | scheduled | sending | paused | sent | cancelled")
    scheduled_at: dt.datetime | None
    throttle_per_s: int | None
    cost_per_part_minor: int
    currency: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignOut:
        return cls.model_validate(campaign)


class EstimateOut(BaseModel):
    channel: str
    recipients: int = Field(description="the segment's members now")
    text: str = Field(description="the message as a sample person gets it")
    encoding: str | None = Field(description="GSM-7 or UCS-2 (SMS only)")
    characters: int
    parts: int = Field(description="SMS parts per message (0 for push and inbox)")
    cost_per_part_minor: int
    cost_minor: int = Field(description="recipients × parts × cost per part")
    currency: str

    @classmethod
    def of(cls, est: campaigns.CostEstimate) -> EstimateOut:
        return cls(**dataclasses.asdict(est))


class PointOut(BaseModel):
    at: dt.datetime = Field(description="start of the hour or day (UTC)")
    sent: int
    delivered: int
    clicked: int
    converted: int


class ReportOut(BaseModel):
    campaign_id: int
    channel: str
    status: str
    currency: str
    recipients: int
    pending: int
    sent: int
    delivered: int
    failed: int
    skipped: dict[str, int] = Field(description="reason -> messages skipped for it")
    clicked: int
    converted: int = Field(description="orders credited to the campaign (last touch)")
    revenue_minor: int
    cost_minor: int
    return_ratio: float | None = Field(description="(revenue - cost) / cost; null if no cost")
    unit: Literal["hour", "day"]
    series: list[PointOut]

    @classmethod
    def of(cls, r: report.Report) -> ReportOut:
        return cls.model_validate(dataclasses.asdict(r))


class ChannelOut(BaseModel):
    channel: str
    campaigns: int
    sent: int
    delivered: int
    touches: int = Field(description="link clicks, or scans / sign-ups / geofence entries")
    converted: int
    revenue_minor: int
    cost_minor: int
    return_ratio: float | None


class QrOut(BaseModel):
    qr_id: int
    label: str
    scans: int
    converted: int
    revenue_minor: int


class OverviewOut(BaseModel):
    currency: str
    since: dt.datetime
    channels: list[ChannelOut]
    qr_codes: list[QrOut]
    series: list[PointOut] = Field(description="per day (UTC); clicked includes QR scans")

    @classmethod
    def of(cls, o: report.Overview) -> OverviewOut:
        return cls.model_validate(dataclasses.asdict(o))
