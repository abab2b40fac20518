from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow


class SynonymGroup(Base):
    """Words that find each other in search. A merchant's group reaches only its products;
    a platform group (no merchant, made by an admin) reaches every product."""

    __tablename__ = "synonym_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    words: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
