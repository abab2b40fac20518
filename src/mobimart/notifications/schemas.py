from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field

from mobimart.web.schemas import MAX_ID, InputModel

NotificationId = Annotated[int, Field(ge=1, le=MAX_ID)]


class NotificationOut(BaseModel):
    id: int
    kind: str
    title: str
    body: str
    link: str
    read: bool
    created_at: dt.datetime


class UnreadCountOut(BaseModel):
    unread: int


class MarkReadIn(InputModel):
    ids: list[NotificationId] | None = Field(
        default=None, max_length=100, description="the notifications to mark read; none: all"
    )


class MarkedOut(BaseModel):
    marked: int
    unread: int
