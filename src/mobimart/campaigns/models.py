"""Marketing: what people did (events), who a message goes to (segments), what was sent
(campaigns and their messages), and the channels that bring people in (QR codes, lucky
draws, the Wi-Fi portal, stores and geofences) with the automations that answer them.

`merchant_id` is null on rows of the platform (the mall operator), which admins manage."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow
from mobimart.infra.pii import Encrypted

_MERCHANT = "merchants.id"
_USER = "users.id"


class MarketingEvent(Base):
    """One thing a person did that marketing reacts to: a QR scan, a short-link click, a Wi-Fi
    sign-up, entering a geofence, a draw entry, a product view. `subject_id` is the id of the
    code, message, portal, fence, draw or product; `visitor` the browser's random cookie,
    which sign-in links to the account."""

    __tablename__ = "marketing_events"
    __table_args__ = (
        Index("ix_marketing_events_user_kind_at", "user_id", "kind", "at"),
        Index("ix_marketing_events_kind_subject_at", "kind", "subject_id", "at"),
        Index("ix_marketing_events_campaign_kind_at", "campaign_id", "kind", "at"),
        Index("ix_marketing_events_merchant_at", "merchant_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey(_MERCHANT, ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"))
    visitor: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int | None]
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    device: Mapped[str] = mapped_column(String(10), default="")  # phone | tablet | desktop | bot
    referrer: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Segment(Base):
    """People picked by rules over attributes and behaviour (see rules.py for their shape).
    Members are kept up to date as events happen; `member_count` moves with them."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey(_MERCHANT, ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    match: Mapped[str] = mapped_column(String(3), default="all")  # all | any
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    member_count: Mapped[int] = mapped_column(default=0)
    evaluated_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SegmentMember(Base):
    """`recheck_at`: when a time-window rule may stop holding (the qualifying event ages out);
    the sweep re-evaluates only those members, never the whole segment."""

    __tablename__ = "segment_members"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey(_USER, ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recheck_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class Campaign(Base):
    """A message to a segment on one channel (sms | push | inbox), sent now or at a time."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey(_MERCHANT, ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    channel: Mapped[str] = mapped_column(String(8))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    template: Mapped[str] = mapped_column(Text)  # with {name}, {link}, {shop}...
    link_url: Mapped[str | None] = mapped_column(String(500))  # where each person's link goes
    # draft | scheduled | sending | paused | sent | cancelled
    status: Mapped[str] = mapped_column(String(10), default="draft")
    scheduled_at: Mapped[dt.datetime | None]
    throttle_per_s: Mapped[int | None]  # none: as fast as the gateway takes them
    cost_per_part_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    created_by: Mapped[int | None] = mapped_column(ForeignKey(_USER, ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class CampaignMessage(Base):
    """One recipient of one campaign: made once when the send starts (unique per campaign and
    person), then claimed, handed to the gateway and confirmed by its delivery report.

    status: queued | deferred (quiet hours, until `not_before`) | sending (claimed: handed to
    the gateway or about to be) | accepted | delivered | failed | skipped (`reason` says why)."""

    __tablename__ = "campaign_messages"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id"),
        Index("ix_campaign_messages_campaign_status_id", "campaign_id", "status", "id"),
        Index("ix_campaign_messages_user_sent", "user_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    reason: Mapped[str] = mapped_column(String(20), default="")
    not_before: Mapped[dt.datetime | None]
    link_token: Mapped[str | None] = mapped_column(String(16), unique=True)  # /s/<token>
    parts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]  # the gateway took it
    delivered_at: Mapped[dt.datetime | None]
    dlr_status: Mapped[int | None]  # Kannel's last delivery report (1 delivered, 2 failed...)
    clicked_at: Mapped[dt.datetime | None]


class QrCode(Base):
    """A printed code. Every code encodes `/q/<token>`; a static one's target (a product or a
    shop) is fixed when it is made, a dynamic one's (a campaign, a draw, a page) can change
    after printing."""

    __tablename__ = "qr_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey(_MERCHANT, ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(String(16), unique=True)
    dynamic: Mapped[bool] = mapped_column(Boolean, default=False)
    label: Mapped[str] = mapped_column(String(80))
    target_kind: Mapped[str] = mapped_column(String(10))  # product | shop | draw | url
    target_id: Mapped[int | None]
    target_url: Mapped[str | None] = mapped_column(String(500))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    scans: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[dt.datetime | None]


class Draw(Base):
    """A lucky draw. Provably fair: `seed_hash` (SHA-256 of the secret seed) is public from
    the start, the seed only once the draw has closed; each entry's roll is HMAC(seed, entry
    id), so anyone can recompute every result."""

    __tablename__ = "draws"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey(_MERCHANT, ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    # Eligibility: {"per_day": 1, "must_follow": true, "min_order_minor": 5000, ...}
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seed: Mapped[str] = mapped_column(Encrypted())
    seed_hash: Mapped[str] = mapped_column(String(64))
    opens_at: Mapped[dt.datetime]
    closes_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DrawPrize(Base):
    """`chance_ppm`: the probability in millionths; `awarded` rises by a conditional update
    (`WHERE awarded < quantity`), so parallel entries never award more than stocked."""

    __tablename__ = "draw_prizes"

    id: Mapped[int] = mapped_column(primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("draws.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(10))  # coupon | points | physical
    chance_ppm: Mapped[int]
    quantity: Mapped[int]
    awarded: Mapped[int] = mapped_column(default=0)
    promotion_id: Mapped[int | None] = mapped_column(
        ForeignKey("promotions.id", ondelete="SET NULL")
    )  # coupon: each winner gets a single-use code of it
    points: Mapped[int | None]
    position: Mapped[int] = mapped_column(default=0)


class DrawEntry(Base):
    """One go at a draw. `period` keys the eligibility limit ("2026-12-01" for once a day),
    unique per person, so two taps at once make one entry."""

    __tablename__ = "draw_entries"
    __table_args__ = (UniqueConstraint("draw_id", "user_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("draws.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"), index=True)
    period: Mapped[str] = mapped_column(String(10))
    roll: Mapped[int | None]  # 0..999,999 from HMAC(seed, entry id)
    prize_id: Mapped[int | None] = mapped_column(ForeignKey("draw_prizes.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(12), default="")  # won | lost | out_of_stock
    coupon_code: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(Encrypted())  # physical prizes: where to send
    claimed_at: Mapped[dt.datetime | None]
    source: Mapped[str] = mapped_column(String(10), default="")  # qr | link | page
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WifiPortal(Base):
    """A venue's captive portal for openNDS (forwarding authentication service). `fas_key` is
    the gateway's `faskey`, shared to verify and answer its requests."""

    __tablename__ = "wifi_portals"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey(_MERCHANT, ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    token: Mapped[str] = mapped_column(String(16), unique=True)  # in the portal's address
    fas_key: Mapped[str] = mapped_column(Encrypted())
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    session_minutes: Mapped[int] = mapped_column(default=240)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StoreLocation(Base):
    """A physical store. `h3` is its cell at resolution 9 (about 0.1 km²) for "near me"."""

    __tablename__ = "store_locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey(_MERCHANT, ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    address: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float] = mapped_column(Float)
    lng: Mapped[float] = mapped_column(Float)
    h3: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Geofence(Base):
    """An area: a circle (`lat`, `lng`, `radius_m`) or a set of H3 `cells`."""

    __tablename__ = "geofences"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey(_MERCHANT, ondelete="CASCADE"), index=True)
    store_id: Mapped[int | None] = mapped_column(
        ForeignKey("store_locations.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(80))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None]
    cells: Mapped[list[str] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GeoOffer(Base):
    __tablename__ = "geo_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    geofence_id: Mapped[int] = mapped_column(
        ForeignKey("geofences.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(String(300), default="")
    promotion_id: Mapped[int | None] = mapped_column(
        ForeignKey("promotions.id", ondelete="SET NULL")
    )
    starts_at: Mapped[dt.datetime | None]
    ends_at: Mapped[dt.datetime | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Automation(Base):
    """trigger → wait → condition → action. `trigger` is an event kind (qr_scan,
    geofence_enter, wifi_signup, cart_abandoned, first_order) optionally narrowed to one
    subject; `condition` a segment rule list; `action` sms | push | coupon | points."""

    __tablename__ = "automations"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey(_MERCHANT, ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    trigger: Mapped[str] = mapped_column(String(20))
    trigger_subject_id: Mapped[int | None]
    wait_minutes: Mapped[int] = mapped_column(default=0)
    condition: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    action: Mapped[str] = mapped_column(String(10))
    action_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    once_per_person: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AutomationRun(Base):
    """One person going through one flow. `run_key` is "<automation>:<user>" for flows run
    once per person (the unique index makes that hold under races), plus ":<event>" otherwise."""

    __tablename__ = "automation_runs"
    __table_args__ = (Index("ix_automation_runs_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    automation_id: Mapped[int] = mapped_column(ForeignKey("automations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey(_USER, ondelete="CASCADE"), index=True)
    run_key: Mapped[str] = mapped_column(String(60), unique=True)
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_events.id", ondelete="SET NULL")
    )
    # waiting | running (claimed by a worker) | done | skipped
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    result: Mapped[str] = mapped_column(String(60), default="")
    due_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None]


class OrderAttribution(Base):
    """The marketing touch an order is credited to: the person's last event with a campaign,
    QR code or other source in the attribution window before it was paid (last touch)."""

    __tablename__ = "order_attributions"
    __table_args__ = (
        Index("ix_order_attributions_campaign_id", "campaign_id"),
        Index("ix_order_attributions_qr_code_id", "qr_code_id"),
    )

    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    # An erased account's events go; the credit stays (it holds no personal data).
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_events.id", ondelete="SET NULL")
    )
    merchant_id: Mapped[int] = mapped_column(ForeignKey(_MERCHANT, ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    qr_code_id: Mapped[int | None] = mapped_column(ForeignKey("qr_codes.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(10))  # sms | push | inbox | qr | wifi | geo
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
