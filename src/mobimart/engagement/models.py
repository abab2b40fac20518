from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow


class PointsEntry(Base):
    """Points are a ledger: a person's balance is the sum of their entries. `key` makes each
    award happen once ("draw-entry:42"), whoever retries it."""

    __tablename__ = "points_entries"
    __table_args__ = (Index("ix_points_entries_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    delta: Mapped[int]
    reason: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
