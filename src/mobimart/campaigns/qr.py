"""Marketing QR codes: made by a merchant, printed, scanned.

Every code encodes `{base_url}/q/<token>` with a random token, so a printed code keeps
working when a dynamic code's target changes, and nobody can guess another shop's codes.
A static code's target (a product or the shop) is fixed when it is made; a dynamic code's
(a draw, a page of this site or an https address, or a product or the shop) can change."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns import events, report
from mobimart.campaigns.events import Kind
from mobimart.campaigns.models import Campaign, Draw, MarketingEvent, OrderAttribution, QrCode
from mobimart.catalog.models import Product, Shop
from mobimart.db import utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.settings import get_settings
from mobimart.text import clean, clean_name
from mobimart.web.forms import safe_link

PATH = "/q/"
# A location shared from the landing page belongs to the scan just made: the page posts it
# within seconds, and 30 minutes covers a slow permission prompt and a phone put away.
LOCATION_WINDOW = dt.timedelta(minutes=30)
MAX_STATS_DAYS = 365
SHEET_CODES = 60  # different codes on one request's sheets (5 pages of 12)
DEFAULT_STATS_DAYS = 30


class TargetKind(enum.StrEnum):
    product = "product"
    shop = "shop"
    draw = "draw"
    url = "url"


STATIC_KINDS = frozenset({TargetKind.product, TargetKind.shop})


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    id: int | None = None  # product or draw id; the shop: its own (optional)
    url: str | None = None  # url: a path on this site or an https address


@dataclass(frozen=True)
class Spec:
    label: str
    target: Target
    dynamic: bool = False
    campaign_id: int | None = None


def url_of(token: str) -> str:
    return get_settings().base_url.rstrip("/") + PATH + token


async def _resolve(session: AsyncSession, *, merchant_id: int, target: Target) -> Target:
    """The target, checked to be the merchant's own, in its stored form."""
    if target.kind == TargetKind.url:
        if not target.url:
            raise DomainError("invalid_target", "Give the address the code opens.", 422)
        return Target(TargetKind.url, None, safe_link(target.url))
    if target.kind == TargetKind.shop:
        shop_id = await session.scalar(select(Shop.id).where(Shop.merchant_id == merchant_id))
        if shop_id is None or (target.id is not None and target.id != shop_id):
            raise NotFound("Shop")
        return Target(TargetKind.shop, shop_id)
    if target.id is None:
        raise DomainError("invalid_target", f"Choose the {target.kind} the code opens.", 422)
    model = Product if target.kind == TargetKind.product else Draw
    found = await session.scalar(
        select(model.id).where(model.id == target.id, model.merchant_id == merchant_id)
    )
    if found is None:
        raise NotFound(target.kind.capitalize())
    return Target(target.kind, target.id)


async def _check_campaign(session: AsyncSession, *, merchant_id: int, campaign_id: int) -> None:
    found = await session.scalar(
        select(Campaign.id).where(Campaign.id == campaign_id, Campaign.merchant_id == merchant_id)
    )
    if found is None:
        raise NotFound("Campaign")


async def create(session: AsyncSession, *, merchant_id: int, spec: Spec) -> QrCode:
    label = clean_name(spec.label, 80)
    if not label:
        raise DomainError("invalid_label", "Give the code a label to tell it apart.", 422)
    if not spec.dynamic and spec.target.kind not in STATIC_KINDS:
        raise DomainError(
            "invalid_target",
            "A static code opens a product or the shop; make a dynamic code for draws and pages.",
            422,
        )
    target = await _resolve(session, merchant_id=merchant_id, target=spec.target)
    if spec.campaign_id is not None:
        await _check_campaign(session, merchant_id=merchant_id, campaign_id=spec.campaign_id)
    code = QrCode(
        merchant_id=merchant_id,
        # 8 random bytes: 11 characters, 2^64 codes; the URL stays short enough for a
        # version-3 symbol that scans at 3 cm.
        token=secrets.token_urlsafe(8),
        dynamic=spec.dynamic,
        label=label,
        target_kind=target.kind.value,
        target_id=target.id,
        target_url=target.url,
        campaign_id=spec.campaign_id,
    )
    session.add(code)
    await session.commit()
    return code


async def get(session: AsyncSession, *, merchant_id: int, qr_id: int) -> QrCode:
    code = await session.get(QrCode, qr_id)
    if code is None or code.merchant_id != merchant_id:
        raise NotFound("QR code")
    return code


async def listed(
    session: AsyncSession,
    *,
    merchant_id: int,
    before: int | None,
    limit: int,
    archived: bool = False,
) -> list[QrCode]:
    """Newest first; live codes, or only the archived ones."""
    stmt = select(QrCode).where(
        QrCode.merchant_id == merchant_id,
        QrCode.archived_at.is_not(None) if archived else QrCode.archived_at.is_(None),
    )
    if before is not None:
        stmt = stmt.where(QrCode.id < before)
    return list(await session.scalars(stmt.order_by(QrCode.id.desc()).limit(limit)))


async def several(
    session: AsyncSession, *, merchant_id: int, qr_ids: list[int] | None
) -> list[QrCode]:
    """The merchant's codes among `qr_ids`, in that order, for a sheet; None or none: the
    newest codes in use, as many as a request prints (60). An archived code is refused: once
    printed it would only open "this code has ended"."""
    if not qr_ids:
        return await listed(session, merchant_id=merchant_id, before=None, limit=SHEET_CODES)
    rows = await session.scalars(
        select(QrCode).where(QrCode.merchant_id == merchant_id, QrCode.id.in_(qr_ids))
    )
    found = {code.id: code for code in rows}
    if len(found) != len(set(qr_ids)):
        raise NotFound("QR code")
    archived = [code.label for code in found.values() if code.archived_at is not None]
    if archived:
        raise Conflict(
            "archived",
            f"Archived codes open nothing, so they are not printed: {', '.join(sorted(archived))}.",
        )
    return [found[i] for i in dict.fromkeys(qr_ids)]


@dataclass(frozen=True)
class Change:
    label: str | None = None
    target: Target | None = None
    campaign_id: int | None = None
    clear_campaign: bool = False


async def change(session: AsyncSession, *, merchant_id: int, qr_id: int, change: Change) -> QrCode:
    """Relabel any code; retarget only a dynamic one (a static code's print says where it goes)."""
    code = await get(session, merchant_id=merchant_id, qr_id=qr_id)
    if code.archived_at is not None:
        raise Conflict("archived", "This code is archived.")
    # Everything checked before anything changes: a refusal leaves the loaded code as it was.
    target = None
    if change.target is not None:
        if not code.dynamic:
            raise Conflict(
                "static_code", "A static code's target is fixed; make a dynamic code to change it."
            )
        target = await _resolve(session, merchant_id=merchant_id, target=change.target)
    label = None
    if change.label is not None:
        label = clean_name(change.label, 80)
        if not label:
            raise DomainError("invalid_label", "Give the code a label to tell it apart.", 422)
    if change.campaign_id is not None and not change.clear_campaign:
        await _check_campaign(session, merchant_id=merchant_id, campaign_id=change.campaign_id)
    if target is not None:
        code.target_kind, code.target_id, code.target_url = target.kind.value, target.id, target.url
    if label is not None:
        code.label = label
    if change.clear_campaign:
        code.campaign_id = None
    elif change.campaign_id is not None:
        code.campaign_id = change.campaign_id
    await session.commit()
    return code


async def archive(session: AsyncSession, *, merchant_id: int, qr_id: int) -> QrCode:
    """The code stops opening anything (its landing says so); its scans and stats stay."""
    code = await get(session, merchant_id=merchant_id, qr_id=qr_id)
    if code.archived_at is None:
        code.archived_at = utcnow()
        await session.commit()
    return code


# --- scanning --------------------------------------------------------------------------------


async def by_token(session: AsyncSession, *, token: str) -> QrCode:
    code = await session.scalar(select(QrCode).where(QrCode.token == token[:16]))
    if code is None or code.archived_at is not None:
        raise NotFound("QR code")
    return code


async def scan(
    session: AsyncSession,
    *,
    code: QrCode,
    user_id: int | None,
    visitor: str | None,
    user_agent: str,
    referrer: str,
) -> MarketingEvent | None:
    """Count a scan (the caller commits). Link-preview fetchers (chat apps unfurling a
    pasted link) are not people scanning: not counted, None."""
    device = events.device_class(user_agent)
    if device == "bot":
        return None
    event = await events.record(
        session,
        kind=Kind.qr_scan,
        user_id=user_id,
        visitor=visitor,
        merchant_id=code.merchant_id,
        subject_id=code.id,
        campaign_id=code.campaign_id,
        device=device,
        referrer=clean(referrer, 200),
    )
    # One statement: concurrent scans each add one, none is lost to a read-then-write.
    await session.execute(
        update(QrCode)
        .where(QrCode.id == code.id)
        .values(scans=QrCode.scans + 1)
        .execution_options(synchronize_session=False)
    )
    return event


def check_position(lat: float, lng: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):
        raise DomainError("invalid_position", "Latitude -90..90, longitude -180..180.", 422)


async def locate(
    session: AsyncSession,
    *,
    code: QrCode,
    visitor: str | None,
    user_id: int | None,
    lat: float,
    lng: float,
) -> bool:
    """Put the position the landing page shared on this browser's scan of the code just made;
    False if there is no such scan (nothing to locate)."""
    check_position(lat, lng)
    mine: list[ColumnElement[bool]] = []
    if visitor is not None:
        mine.append(MarketingEvent.visitor == visitor)
    if user_id is not None:
        mine.append(MarketingEvent.user_id == user_id)
    if not mine:
        return False
    event_id = await session.scalar(
        select(MarketingEvent.id)
        .where(
            MarketingEvent.kind == Kind.qr_scan.value,
            MarketingEvent.subject_id == code.id,
            MarketingEvent.at >= utcnow() - LOCATION_WINDOW,
            mine[0] if len(mine) == 1 else (mine[0] | mine[1]),
        )
        .order_by(MarketingEvent.id.desc())
        .limit(1)
    )
    if event_id is None:
        return False
    await session.execute(
        update(MarketingEvent)
        .where(MarketingEvent.id == event_id)
        .values(lat=round(lat, 6), lng=round(lng, 6))
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return True


# --- stats -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: dt.date
    scans: int


@dataclass(frozen=True)
class Revenue:
    currency: str
    amount_minor: int


@dataclass(frozen=True)
class Stats:
    qr_id: int
    days: int
    since: dt.datetime
    total_scans: int  # all time (the code's counter)
    by_day: list[Day]  # every day of the window, oldest first, zeros included
    devices: dict[str, int]  # over the window
    located: int  # scans in the window with a shared position
    orders: int  # attributed to the code, all time
    revenue: list[Revenue] = field(default_factory=list)


async def stats(
    session: AsyncSession, *, merchant_id: int, qr_id: int, days: int = DEFAULT_STATS_DAYS
) -> Stats:
    code = await get(session, merchant_id=merchant_id, qr_id=qr_id)
    now = utcnow()
    first = (now - dt.timedelta(days=days - 1)).date()
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    scanned = (
        MarketingEvent.kind == Kind.qr_scan.value,
        MarketingEvent.subject_id == code.id,
        MarketingEvent.merchant_id == merchant_id,
        MarketingEvent.at >= since,
    )
    day = report.utc_bucket(MarketingEvent.at, "day", session.get_bind().dialect.name).label("day")
    per_day = {
        row.day: row.n
        for row in await session.execute(
            select(day, func.count().label("n")).where(*scanned).group_by(day)
        )
    }
    devices = Counter(
        {
            row.device: row.n
            for row in await session.execute(
                select(MarketingEvent.device, func.count().label("n"))
                .where(*scanned)
                .group_by(MarketingEvent.device)
            )
        }
    )
    located = await session.scalar(
        select(func.count()).where(*scanned, MarketingEvent.lat.is_not(None))
    )
    credited = (
        await session.execute(
            select(
                OrderAttribution.currency,
                func.count().label("n"),
                func.sum(OrderAttribution.amount_minor).label("total"),
            )
            .where(
                OrderAttribution.qr_code_id == code.id,
                OrderAttribution.merchant_id == merchant_id,
            )
            .group_by(OrderAttribution.currency)
            .order_by(OrderAttribution.currency)
        )
    ).all()
    return Stats(
        qr_id=code.id,
        days=days,
        since=since,
        total_scans=code.scans,
        by_day=[
            Day(d, per_day.get(d.isoformat(), 0))
            for d in (first + dt.timedelta(days=i) for i in range(days))
        ],
        devices=dict(devices.most_common()),
        located=located or 0,
        orders=sum(row.n for row in credited),
        revenue=[Revenue(row.currency, int(row.total or 0)) for row in credited],
    )
