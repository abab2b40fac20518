from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from mobimart.web.schemas import InputModel
from mobimart.webhooks.domain import EVENTS


class EndpointIn(InputModel):
    url: str = Field(min_length=8, max_length=500, description="http(s) URL that takes a POST")
    events: list[str] = Field(
        min_length=1,
        max_length=len(EVENTS),
        json_schema_extra={"items": {"type": "string", "enum": list(EVENTS)}},
    )


class EndpointOut(BaseModel):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: dt.datetime


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(description="signs every delivery; shown this once only")


class DeliveryOut(BaseModel):
    id: int
    delivery_id: str = Field(description="the Mobimart-Delivery header; same on every retry")
    event: str
    payload: dict[str, Any]
    status: str = Field(description="pending, delivered or failed (every retry spent)")
    attempts: int
    last_status: int | None = Field(description="the receiver's last HTTP status")
    last_error: str
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
