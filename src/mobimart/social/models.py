from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow


class Review(Base):
    """A buyer's review of one delivered order line (hence unique on the line)."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_product_id_id", "product_id", "id"),
        Index("ix_reviews_shop_id_id", "shop_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_line_id: Mapped[int] = mapped_column(
        ForeignKey("order_lines.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    stars: Mapped[int]
    body: Mapped[str] = mapped_column(Text, default="")
    reply: Mapped[str] = mapped_column(Text, default="")  # the shop's answer, one per review
    replied_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    replied_at: Mapped[dt.datetime | None]
    helpful_count: Mapped[int] = mapped_column(default=0)
    hidden_at: Mapped[dt.datetime | None]  # removed by moderation: kept, not shown
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReviewPhoto(Base):
    __tablename__ = "review_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(64), unique=True)
    position: Mapped[int] = mapped_column(default=0)


class ReviewVote(Base):
    """One "helpful" per person per review; the review's helpful_count moves with it."""

    __tablename__ = "review_votes"

    review_id: Mapped[int] = mapped_column(
        ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RatingSummary(Base):
    """Visible reviews per star of a product or a shop, moved by atomic increments in the
    transaction that adds, edits, hides or restores a review (see social.domain.Rating)."""

    __tablename__ = "rating_summaries"

    subject: Mapped[str] = mapped_column(String(7), primary_key=True)  # product | shop
    subject_id: Mapped[int] = mapped_column(primary_key=True)
    stars_1: Mapped[int] = mapped_column(default=0)
    stars_2: Mapped[int] = mapped_column(default=0)
    stars_3: Mapped[int] = mapped_column(default=0)
    stars_4: Mapped[int] = mapped_column(default=0)
    stars_5: Mapped[int] = mapped_column(default=0)


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (Index("ix_questions_product_id_id", "product_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(String(500))
    answer_count: Mapped[int] = mapped_column(default=0)
    hidden_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (Index("ix_answers_question_id_id", "question_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    by_shop: Mapped[bool] = mapped_column(default=False)  # written by the shop's staff
    body: Mapped[str] = mapped_column(String(1000))
    hidden_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    """One thread between a consumer and a shop. Messages are numbered 1, 2, 3... within it
    (`seq`, taken under this row's lock), so a client that has seen up to n knows exactly what
    it missed; each side's read position is the seq it has read up to, which gives both the
    unread count and the read receipt."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("user_id", "shop_id"),
        Index("ix_conversations_merchant_id_last_message_at", "merchant_id", "last_message_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    # The staff member handling it; none until someone picks it up from the shared inbox.
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    last_seq: Mapped[int] = mapped_column(default=0)
    last_message_at: Mapped[dt.datetime | None]
    consumer_read_seq: Mapped[int] = mapped_column(default=0)
    shop_read_seq: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # A client's own id for each message it sends: a resend after a reconnect is the
        # same message, not a second one.
        UniqueConstraint("conversation_id", "sender_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    seq: Mapped[int]
    side: Mapped[str] = mapped_column(String(8))  # consumer | shop
    kind: Mapped[str] = mapped_column(String(7))  # text | image | product | order
    body: Mapped[str] = mapped_column(Text, default="")
    ref_id: Mapped[int | None]  # the product or order a card shows
    storage_key: Mapped[str | None] = mapped_column(String(64))  # an image message's file
    client_id: Mapped[str | None] = mapped_column(String(40))
    hidden_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
