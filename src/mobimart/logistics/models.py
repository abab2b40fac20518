from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow


class Shipment(Base):
    __tablename__ = "shipments"
    # Carriers' callbacks find a parcel by carrier and tracking number.
    __table_args__ = (Index("ix_shipments_carrier_tracking_number", "carrier", "tracking_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), unique=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(20))
    tracking_number: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TrackingEvent(Base):
    """A step of a parcel's journey, from the carrier's callback or entered by shop staff.
    A carrier's event id is unique per shipment, so a repeated callback is recorded once."""

    __tablename__ = "tracking_events"
    __table_args__ = (UniqueConstraint("shipment_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(80), default="")
    occurred_at: Mapped[dt.datetime]
    source: Mapped[str] = mapped_column(String(10))  # carrier | staff
    external_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
