"""Chat requests and answers over REST (the socket speaks the same message shape)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from mobimart.web.schemas import MAX_ID, InputModel


class OpenConversationIn(InputModel):
    shop_id: int = Field(ge=1, le=MAX_ID)
    product_id: int | None = Field(None, ge=1, le=MAX_ID)
    order_id: int | None = Field(None, ge=1, le=MAX_ID)


class SendIn(InputModel):
    client_id: str = Field(min_length=1, max_length=40)
    body: str = Field(min_length=1, max_length=4000)


class ReadIn(InputModel):
    seq: int = Field(ge=0, le=MAX_ID)


class TransferIn(InputModel):
    user_id: int = Field(ge=1, le=MAX_ID)


class CardOut(BaseModel):
    title: str
    subtitle: str | None
    url: str | None
    image_url: str | None


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    seq: int
    side: Literal["consumer", "shop"]
    sender_id: int | None
    kind: Literal["text", "image", "product", "order"]
    body: str
    ref_id: int | None
    card: CardOut | None
    image_url: str | None
    client_id: str | None
    created_at: dt.datetime
    hidden: bool


class ConversationOut(BaseModel):
    id: int
    shop_id: int
    shop_name: str
    merchant_id: int
    # The consumer as the shop sees them: chosen name or masked number.
    customer_name: str
    assignee_id: int | None
    assignee_name: str
    last_seq: int
    last_message_at: dt.datetime | None
    consumer_read_seq: int
    shop_read_seq: int
    unread: int = Field(description="Messages from the other side the caller has not read")
    last_message: MessageOut | None


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class HistoryOut(BaseModel):
    conversation: ConversationOut
    items: list[MessageOut]


class ReadOut(BaseModel):
    conversation_id: int
    seq: int
