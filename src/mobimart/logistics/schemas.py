from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mobimart.logistics.domain import CARRIERS, TrackingStatus
from mobimart.web.schemas import InputModel


class ShipIn(InputModel):
    carrier: str = Field(
        max_length=20, json_schema_extra={"enum": list(CARRIERS)}, description="a carrier code"
    )
    tracking_number: str = Field(min_length=4, max_length=60)


class TrackingEventIn(InputModel):
    status: TrackingStatus
    description: str = Field("", max_length=200)
    location: str = Field("", max_length=80)
    occurred_at: AwareDatetime | None = Field(None, description="default: now")


class TrackingEventOut(BaseModel):
    id: int
    status: str
    description: str
    location: str
    occurred_at: dt.datetime
    source: str = Field(description="carrier or staff")


class ShipmentOut(BaseModel):
    id: int
    order_id: int
    carrier: str
    carrier_name: str
    tracking_number: str
    created_at: dt.datetime
    events: list[TrackingEventOut] = Field(description="oldest first")


class CarrierEventIn(InputModel):
    # Carriers add fields over time; what we do not know, we ignore.
    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=r"^[!-~]{1,64}$", description="the carrier's event id")
    status: TrackingStatus
    description: str = Field("", max_length=200)
    location: str = Field("", max_length=80)
    occurred_at: AwareDatetime


class CarrierEventsIn(InputModel):
    model_config = ConfigDict(extra="ignore")

    tracking_number: str = Field(min_length=4, max_length=60)
    events: list[CarrierEventIn] = Field(min_length=1, max_length=100)


class CarrierAckOut(BaseModel):
    recorded: int
    duplicates: int = Field(description="events sent before, ignored")


class TrackingOut(BaseModel):
    order_id: int
    order_status: str
    shipment: ShipmentOut | None = Field(description="null until the shop ships")
