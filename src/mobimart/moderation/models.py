from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow


class BlockedWord(Base):
    """A word the platform refuses in user content; managed by admins."""

    __tablename__ = "blocked_words"
    # Ids are never reused (SQLite would reuse a deleted newest one): each process tells that
    # the list changed by its count and newest id, see service.word_filter.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    word: Mapped[str] = mapped_column(String(60), unique=True)  # normalised (NFKC, casefold)
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Report(Base):
    """A user's flag on a piece of content, queued for an admin to remove or dismiss."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("reporter_id", "subject", "subject_id"),
        Index("ix_reports_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(8))  # review | question | answer | message
    subject_id: Mapped[int]
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(9), default="open")  # open | removed | dismissed
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
