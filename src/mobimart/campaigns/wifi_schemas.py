"""Request and response bodies of the Wi-Fi portal management API."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from mobimart.web.schemas import InputModel


class WifiPortalIn(InputModel):
    name: str = Field(min_length=1, max_length=60)
    session_minutes: int = Field(
        240,
        ge=5,
        le=7 * 24 * 60,
        description="For your notes only: the gateway's openNDS `sessiontimeout` decides",
    )


class WifiPortalOut(BaseModel):
    id: int
    merchant_id: int | None
    name: str
    token: str
    fas_key: str = Field(description="openNDS `faskey`: shared with the gateway, keep secret")
    faspath: str = Field(description="openNDS `faspath`: the portal's path on this site")
    portal_url: str
    segment_id: int | None
    session_minutes: int = Field(description="For your notes; openNDS `sessiontimeout` decides")
    created_at: dt.datetime
