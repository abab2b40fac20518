"""What a campaign did: sent, delivered, failed, skipped (and why), clicked, converted
(orders credited to it in order_attributions), revenue, cost and return, with a series over
time; and the merchant's marketing as a whole, per channel and per QR code.

Every figure is a grouped query over the campaign's messages (a 1,000,000-recipient
campaign is counted in the database, never loaded). Attribution rows are written by
attribution.py (last touch); QR codes' own detail page is qr.py's."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, String, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns import campaigns
from mobimart.campaigns.events import Kind
from mobimart.campaigns.models import (
    Campaign,
    CampaignMessage,
    MarketingEvent,
    OrderAttribution,
    QrCode,
)
from mobimart.db import utcnow

# Hourly points while a campaign is young (a send and its clicks happen within hours),
# daily once its figures span more than 3 days; at most a year of days in one chart.
HOURLY_SPAN = dt.timedelta(days=3)
MAX_POINTS = 366
OVERVIEW_DAYS = 30
# Where touches that are not campaign messages come from (attribution's channel names).
TOUCH_KINDS = {"qr": Kind.qr_scan, "wifi": Kind.wifi_signup, "geo": Kind.geofence_enter}
CHANNELS = ("sms", "push", "inbox", "qr", "wifi", "geo")


@dataclass(frozen=True)
class Point:
    at: dt.datetime  # start of the hour or day, UTC
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    converted: int = 0


@dataclass(frozen=True)
class Report:
    campaign_id: int
    channel: str
    status: str
    currency: str
    recipients: int  # messages made (one per member when the send started)
    pending: int  # not handed to the gateway yet: queued, deferred (quiet hours), claimed
    sent: int  # the gateway (or inbox/push service) took it
    delivered: int
    failed: int
    skipped: dict[str, int]  # reason -> count
    clicked: int  # messages whose link was opened at least once
    converted: int  # orders credited to the campaign
    revenue_minor: int
    cost_minor: int  # SMS parts of sent messages × the price per part
    return_ratio: float | None  # (revenue - cost) / cost; None when nothing cost anything
    unit: str  # hour | day
    series: list[Point] = field(default_factory=list)


def return_of(revenue_minor: int, cost_minor: int) -> float | None:
    return (revenue_minor - cost_minor) / cost_minor if cost_minor else None


def utc_bucket(column: Any, unit: str, dialect: str) -> ColumnElement[str]:
    """A timestamp's UTC hour ("YYYY-MM-DD HH") or day ("YYYY-MM-DD") as text, for GROUP BY:
    the one per-dialect spelling, used by the campaign report and the QR code stats."""
    if dialect == "postgresql":
        pattern = "YYYY-MM-DD HH24" if unit == "hour" else "YYYY-MM-DD"
        return func.to_char(func.timezone("UTC", column), pattern)
    # SQLite keeps UTC as "YYYY-MM-DD HH:MM:SS...": the prefix is the bucket.
    return func.substr(cast(column, String), 1, 13 if unit == "hour" else 10)


def _parse_bucket(label: str) -> dt.datetime:
    if len(label) == 10:
        return dt.datetime.fromisoformat(label).replace(tzinfo=dt.UTC)
    return dt.datetime.strptime(label, "%Y-%m-%d %H").replace(tzinfo=dt.UTC)


def _floor(at: dt.datetime, unit: str) -> dt.datetime:
    at = at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if unit == "day" else at


def _steps(first: dt.datetime, last: dt.datetime, unit: str) -> list[dt.datetime]:
    step = dt.timedelta(hours=1) if unit == "hour" else dt.timedelta(days=1)
    start, end = _floor(first, unit), _floor(last, unit)
    count = min(int((end - start) / step) + 1, MAX_POINTS)
    start = end - step * (count - 1)  # too long a span: keep the newest points
    return [start + step * i for i in range(count)]


async def _series(
    session: AsyncSession,
    columns: dict[str, tuple[Any, list[ColumnElement[bool]]]],
    first: dt.datetime | None,
    last: dt.datetime | None,
    unit: str,
) -> list[Point]:
    """One grouped count per figure; every bucket from `first` to `last`, zeros included."""
    if first is None or last is None:
        return []
    dialect = session.get_bind().dialect.name
    counts: dict[str, dict[str, int]] = {}
    for name, (column, where) in columns.items():
        bucket = utc_bucket(column, unit, dialect).label("bucket")
        rows = await session.execute(
            select(bucket, func.count().label("n"))
            .where(*where, column.is_not(None), column >= _floor(first, unit))
            .group_by(bucket)
        )
        counts[name] = {row.bucket: row.n for row in rows}
    points = []
    for at in _steps(first, last, unit):
        label = at.strftime("%Y-%m-%d %H" if unit == "hour" else "%Y-%m-%d")
        points.append(Point(at, **{name: counts[name].get(label, 0) for name in columns}))
    return points


def _latest(*moments: dt.datetime | None) -> dt.datetime | None:
    present = [m for m in moments if m is not None]
    return max(present) if present else None


async def campaign_report(
    session: AsyncSession, *, merchant_id: int | None, campaign_id: int
) -> Report:
    campaign = await campaigns.get(session, merchant_id=merchant_id, campaign_id=campaign_id)
    mine = CampaignMessage.campaign_id == campaign.id
    was_sent = CampaignMessage.sent_at.is_not(None)
    totals = (
        await session.execute(
            select(
                func.count().label("recipients"),
                func.count(CampaignMessage.sent_at).label("sent"),
                func.count(case((CampaignMessage.status == "delivered", 1))).label("delivered"),
                func.count(case((CampaignMessage.status == "failed", 1))).label("failed"),
                func.count(
                    case((CampaignMessage.status.in_(("queued", "deferred", "sending")), 1))
                ).label("pending"),
                func.count(CampaignMessage.clicked_at).label("clicked"),
                func.coalesce(func.sum(case((was_sent, CampaignMessage.parts), else_=0)), 0).label(
                    "parts"
                ),
                func.min(CampaignMessage.sent_at).label("first"),
                func.max(CampaignMessage.sent_at).label("last_sent"),
                func.max(CampaignMessage.delivered_at).label("last_delivered"),
                func.max(CampaignMessage.clicked_at).label("last_clicked"),
            ).where(mine)
        )
    ).one()
    skipped = {
        row.reason: row.n
        for row in await session.execute(
            select(CampaignMessage.reason, func.count().label("n"))
            .where(mine, CampaignMessage.status == "skipped")
            .group_by(CampaignMessage.reason)
            .order_by(CampaignMessage.reason)
        )
    }
    credited = OrderAttribution.campaign_id == campaign.id
    orders = (
        await session.execute(
            select(
                func.count().label("n"),
                func.coalesce(func.sum(OrderAttribution.amount_minor), 0).label("revenue"),
                func.max(OrderAttribution.at).label("last"),
            ).where(credited, OrderAttribution.currency == campaign.currency)
        )
    ).one()
    cost = int(totals.parts) * campaign.cost_per_part_minor
    revenue = int(orders.revenue)
    first = totals.first
    last = _latest(totals.last_sent, totals.last_delivered, totals.last_clicked, orders.last)
    if first is not None and last is not None and last < first:
        last = first
    # SQLite gives aggregates of timestamps back as text: parse them through the column type.
    first, last = _aware(first), _aware(last)
    unit = "hour" if first is None or last is None or last - first <= HOURLY_SPAN else "day"
    series = await _series(
        session,
        {
            "sent": (CampaignMessage.sent_at, [mine]),
            "delivered": (CampaignMessage.delivered_at, [mine]),
            "clicked": (CampaignMessage.clicked_at, [mine]),
            "converted": (OrderAttribution.at, [credited]),
        },
        first,
        last,
        unit,
    )
    return Report(
        campaign_id=campaign.id,
        channel=campaign.channel,
        status=campaign.status,
        currency=campaign.currency,
        recipients=totals.recipients,
        pending=totals.pending,
        sent=totals.sent,
        delivered=totals.delivered,
        failed=totals.failed,
        skipped=skipped,
        clicked=totals.clicked,
        converted=orders.n,
        revenue_minor=revenue,
        cost_minor=cost,
        return_ratio=return_of(revenue, cost),
        unit=unit,
        series=series,
    )


def _aware(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# --- the merchant's marketing as a whole -----------------------------------------------------


@dataclass(frozen=True)
class ChannelTotals:
    channel: str  # sms | push | inbox | qr | wifi | geo
    campaigns: int  # campaigns on the channel (message channels only)
    sent: int  # messages sent (message channels)
    delivered: int
    touches: int  # clicks on message links; scans, sign-ups, geofence entries otherwise
    converted: int
    revenue_minor: int
    cost_minor: int
    return_ratio: float | None


@dataclass(frozen=True)
class QrFigures:
    qr_id: int
    label: str
    scans: int
    converted: int
    revenue_minor: int


@dataclass(frozen=True)
class Overview:
    currency: str
    channels: list[ChannelTotals]
    qr_codes: list[QrFigures]
    since: dt.datetime
    series: list[Point]  # per day: sent, delivered, clicked (link clicks + scans), converted


def _merchant_scope(column: Any, merchant_id: int | None) -> ColumnElement[bool]:
    scope: ColumnElement[bool] = column.is_(None) if merchant_id is None else column == merchant_id
    return scope


async def channel_totals(
    session: AsyncSession, *, merchant_id: int | None, currency: str = "CNY"
) -> list[ChannelTotals]:
    """All time, one row per channel (a channel never used shows zeros)."""
    of_merchant = _merchant_scope(Campaign.merchant_id, merchant_id)
    messages = {
        row.channel: row
        for row in await session.execute(
            select(
                Campaign.channel,
                func.count(func.distinct(Campaign.id)).label("campaigns"),
                func.count(CampaignMessage.sent_at).label("sent"),
                func.count(case((CampaignMessage.status == "delivered", 1))).label("delivered"),
                func.count(CampaignMessage.clicked_at).label("clicked"),
                func.coalesce(
                    func.sum(
                        case(
                            (
                                CampaignMessage.sent_at.is_not(None),
                                CampaignMessage.parts * Campaign.cost_per_part_minor,
                            ),
                            else_=0,
                        )
                    ),
                    0,
                ).label("cost"),
            )
            .select_from(Campaign)
            .outerjoin(CampaignMessage, CampaignMessage.campaign_id == Campaign.id)
            .where(of_merchant)
            .group_by(Campaign.channel)
        )
    }
    kinds = {kind.value: channel for channel, kind in TOUCH_KINDS.items()}
    touches = {
        kinds[row.kind]: row.n
        for row in await session.execute(
            select(MarketingEvent.kind, func.count().label("n"))
            .where(
                _merchant_scope(MarketingEvent.merchant_id, merchant_id),
                MarketingEvent.kind.in_(list(kinds)),
            )
            .group_by(MarketingEvent.kind)
        )
    }
    credited: dict[str, tuple[int, int]] = {}
    if merchant_id is not None:  # attributions always name the order's merchant
        credited = {
            row.channel: (row.n, int(row.revenue))
            for row in await session.execute(
                select(
                    OrderAttribution.channel,
                    func.count().label("n"),
                    func.coalesce(func.sum(OrderAttribution.amount_minor), 0).label("revenue"),
                )
                .where(
                    OrderAttribution.merchant_id == merchant_id,
                    OrderAttribution.currency == currency,
                )
                .group_by(OrderAttribution.channel)
            )
        }
    else:  # the platform's own campaigns, whichever merchant sold
        credited = {
            row.channel: (row.n, int(row.revenue))
            for row in await session.execute(
                select(
                    Campaign.channel,
                    func.count().label("n"),
                    func.coalesce(func.sum(OrderAttribution.amount_minor), 0).label("revenue"),
                )
                .join(Campaign, Campaign.id == OrderAttribution.campaign_id)
                .where(Campaign.merchant_id.is_(None), OrderAttribution.currency == currency)
                .group_by(Campaign.channel)
            )
        }
    out = []
    for channel in CHANNELS:
        m = messages.get(channel)
        converted, revenue = credited.get(channel, (0, 0))
        cost = int(m.cost) if m is not None else 0
        out.append(
            ChannelTotals(
                channel=channel,
                campaigns=m.campaigns if m is not None else 0,
                sent=m.sent if m is not None else 0,
                delivered=m.delivered if m is not None else 0,
                touches=(m.clicked if m is not None else 0) + touches.get(channel, 0),
                converted=converted,
                revenue_minor=revenue,
                cost_minor=cost,
                return_ratio=return_of(revenue, cost),
            )
        )
    return out


async def qr_figures(
    session: AsyncSession, *, merchant_id: int, limit: int = 50
) -> list[QrFigures]:
    """Each live code's scans (its counter) and the orders credited to it, most scanned
    first; a code's day-by-day detail is on its own page (qr.py)."""
    credited = (
        select(
            OrderAttribution.qr_code_id.label("qr_id"),
            func.count().label("n"),
            func.sum(OrderAttribution.amount_minor).label("revenue"),
        )
        .where(
            OrderAttribution.merchant_id == merchant_id, OrderAttribution.qr_code_id.is_not(None)
        )
        .group_by(OrderAttribution.qr_code_id)
        .subquery()
    )
    rows = await session.execute(
        select(QrCode.id, QrCode.label, QrCode.scans, credited.c.n, credited.c.revenue)
        .outerjoin(credited, credited.c.qr_id == QrCode.id)
        .where(QrCode.merchant_id == merchant_id, QrCode.archived_at.is_(None))
        .order_by(QrCode.scans.desc(), QrCode.id.desc())
        .limit(limit)
    )
    return [
        QrFigures(row.id, row.label, row.scans, row.n or 0, int(row.revenue or 0)) for row in rows
    ]


async def overview(
    session: AsyncSession,
    *,
    merchant_id: int | None,
    days: int = OVERVIEW_DAYS,
    now: dt.datetime | None = None,
) -> Overview:
    now = now or utcnow()
    since = _floor(now - dt.timedelta(days=days - 1), "day")
    own_messages = CampaignMessage.campaign_id.in_(
        select(Campaign.id).where(_merchant_scope(Campaign.merchant_id, merchant_id))
    )
    own_events = _merchant_scope(MarketingEvent.merchant_id, merchant_id)
    touch_kinds = [Kind.link_click.value, *(k.value for k in TOUCH_KINDS.values())]
    own_orders: ColumnElement[bool]
    if merchant_id is None:
        own_orders = OrderAttribution.campaign_id.in_(
            select(Campaign.id).where(Campaign.merchant_id.is_(None))
        )
    else:
        own_orders = OrderAttribution.merchant_id == merchant_id
    series = await _series(
        session,
        {
            "sent": (CampaignMessage.sent_at, [own_messages]),
            "delivered": (CampaignMessage.delivered_at, [own_messages]),
            "clicked": (MarketingEvent.at, [own_events, MarketingEvent.kind.in_(touch_kinds)]),
            "converted": (OrderAttribution.at, [own_orders]),
        },
        since,
        now,
        "day",
    )
    return Overview(
        currency="CNY",
        channels=await channel_totals(session, merchant_id=merchant_id),
        qr_codes=[] if merchant_id is None else await qr_figures(session, merchant_id=merchant_id),
        since=since,
        series=series,
    )


@dataclass(frozen=True)
class Headline:
    sent: int = 0
    clicked: int = 0
    converted: int = 0
    revenue_minor: int = 0


async def headlines(session: AsyncSession, *, campaign_ids: list[int]) -> dict[int, Headline]:
    """The figures a list of campaigns shows, in two grouped queries for the whole page."""
    if not campaign_ids:
        return {}
    sent = {
        row.campaign_id: (row.sent, row.clicked)
        for row in await session.execute(
            select(
                CampaignMessage.campaign_id,
                func.count(CampaignMessage.sent_at).label("sent"),
                func.count(CampaignMessage.clicked_at).label("clicked"),
            )
            .where(CampaignMessage.campaign_id.in_(campaign_ids))
            .group_by(CampaignMessage.campaign_id)
        )
    }
    orders = {
        row.campaign_id: (row.n, int(row.revenue or 0))
        for row in await session.execute(
            select(
                OrderAttribution.campaign_id,
                func.count().label("n"),
                func.sum(OrderAttribution.amount_minor).label("revenue"),
            )
            .where(OrderAttribution.campaign_id.in_(campaign_ids))
            .group_by(OrderAttribution.campaign_id)
        )
    }
    return {cid: Headline(*sent.get(cid, (0, 0)), *orders.get(cid, (0, 0))) for cid in campaign_ids}
