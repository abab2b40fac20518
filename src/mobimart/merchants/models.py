from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow
from mobimart.infra.pii import Encrypted


class Merchant(Base):
    """A business on the platform, and its verification (KYC) application."""

    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), index=True)
    licence_number: Mapped[str] = mapped_column(String(18))
    legal_rep_name: Mapped[str] = mapped_column(Encrypted())
    legal_rep_id_number: Mapped[str] = mapped_column(Encrypted())
    legal_rep_id_hash: Mapped[str] = mapped_column(String(64), index=True)
    contact_phone: Mapped[str] = mapped_column(Encrypted())
    contact_phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    review_reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[dt.datetime | None]
    decided_at: Mapped[dt.datetime | None]
    # The platform's share of each completed order, in basis points (500 = 5 %).
    commission_bps: Mapped[int] = mapped_column(default=500, server_default="500")


class MerchantMember(Base):
    __tablename__ = "merchant_members"
    __table_args__ = (UniqueConstraint("merchant_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KycDocument(Base):
    __tablename__ = "kyc_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(40), unique=True)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StaffInvitation(Base):
    """A pending invitation to join a merchant's team; the invitee accepts or declines it.
    Rows are deleted when answered or cancelled (the audit log keeps the story)."""

    __tablename__ = "staff_invitations"
    __table_args__ = (UniqueConstraint("merchant_id", "phone_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(Encrypted())
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
