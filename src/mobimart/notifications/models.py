from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow


class Notification(Base):
    """One line in a user's in-app inbox. `key` groups repeats of one thing (the chat with a
    shop, the updates of one order): a new one with the same key replaces the old, so an
    active chat raises one line, not one per message."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_user_id_key", "user_id", "key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))  # order | answer | chat | review | system
    key: Mapped[str | None] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(String(300), default="")
    link: Mapped[str] = mapped_column(String(200), default="")  # a page path on this site
    read_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PushSubscription(Base):
    """A browser's Web Push subscription (RFC 8030 endpoint + RFC 8291 keys). The endpoint
    is found by its SHA-256; a subscription the push service calls gone (404/410) is removed."""

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000))
    endpoint_hash: Mapped[str] = mapped_column(String(64), unique=True)
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(80), default="")  # "Chrome on Android"
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_sent_at: Mapped[dt.datetime | None]
