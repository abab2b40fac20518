"""Wi-Fi portals: a venue's captive-portal page for openNDS (see wifi_fas.py for the
protocol). A visitor verifies their number with a texted code, may agree to marketing texts,
and becomes a contact in the venue's segment; the browser then goes back to the gateway to get
online. The portal does not sign anyone in to the site: it is served over plain http on an
open network (openNDS opens its walled garden to `fasport` 80), where a session cookie could
be read by anyone nearby; the welcome page, on the site's https address, offers the sign-in.

A merchant's portal shows the merchant's current promotions; the platform's (a mall's, with
`merchant_id` null, managed by admins) the platform's."""

from __future__ import annotations

import secrets

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import domain as accounts_domain
from mobimart.accounts import privacy
from mobimart.accounts import service as accounts
from mobimart.campaigns import events, segments, wifi_fas
from mobimart.campaigns.events import Kind
from mobimart.campaigns.models import WifiPortal
from mobimart.db import utcnow
from mobimart.errors import DomainError, NotFound
from mobimart.promotions.models import Promotion
from mobimart.settings import get_settings
from mobimart.text import clean_name
from mobimart.web.i18n import stored as _  # marks the messages for the catalogue

MIN_SESSION_MINUTES = 5
MAX_SESSION_MINUTES = 7 * 24 * 60
SHOWN_PROMOTIONS = 6  # one phone screen above the sign-in form
# Texted codes a portal may ask for in an hour, all visitors together: a busy mall entrance
# signs up a few hundred people an hour; each code is a paid text, so not unlimited either.
OTP_PER_PORTAL_PER_HOUR = 600


def new_fas_key() -> str:
    """32 hex characters: openNDS takes letters and digits only, and 32 bytes is exactly an
    AES-256 key at level 2 (a longer key is cut, a shorter one padded with NULs)."""
    return secrets.token_hex(16)


async def create(
    session: AsyncSession, *, merchant_id: int | None, name: str, session_minutes: int = 240
) -> WifiPortal:
    """The portal and its segment "Wi-Fi: <name>" of the people who signed in through it."""
    name = clean_name(name, 60)
    if not name:
        raise DomainError("invalid_name", _("Give the venue a name."), 422)
    if not MIN_SESSION_MINUTES <= session_minutes <= MAX_SESSION_MINUTES:
        raise DomainError(
            "invalid_session",
            _("The session length must be between 5 minutes and 7 days."),
            422,
        )
    portal = WifiPortal(
        merchant_id=merchant_id,
        name=name,
        token=secrets.token_urlsafe(12),  # 16 characters, 96 random bits
        fas_key=new_fas_key(),
        session_minutes=session_minutes,
    )
    session.add(portal)
    await session.flush()
    segment = await segments.create(
        session,
        merchant_id=merchant_id,
        name=f"Wi-Fi: {name}",
        match="all",
        conditions=[{"kind": "joined_wifi", "portal_id": portal.id}],
    )
    portal.segment_id = segment.id
    await session.commit()
    return portal


async def listed(
    session: AsyncSession, *, merchant_id: int | None, before: int | None, limit: int
) -> list[WifiPortal]:
    """Newest first; `before` an id, for the next page."""
    query = select(WifiPortal).where(
        WifiPortal.merchant_id.is_(None)
        if merchant_id is None
        else WifiPortal.merchant_id == merchant_id
    )
    if before is not None:
        query = query.where(WifiPortal.id < before)
    return list(await session.scalars(query.order_by(WifiPortal.id.desc()).limit(limit)))


async def owned(session: AsyncSession, *, portal_id: int, merchant_id: int | None) -> WifiPortal:
    row = await session.get(WifiPortal, portal_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound("Wi-Fi portal")
    return row


async def delete(session: AsyncSession, *, portal_id: int, merchant_id: int | None) -> None:
    """The portal goes; its segment stays, with the contacts it brought."""
    row = await owned(session, portal_id=portal_id, merchant_id=merchant_id)
    await session.delete(row)
    await session.commit()


async def rotate_key(session: AsyncSession, *, portal_id: int, merchant_id: int | None) -> str:
    row = await owned(session, portal_id=portal_id, merchant_id=merchant_id)
    row.fas_key = new_fas_key()
    await session.commit()
    return row.fas_key


async def by_token(session: AsyncSession, *, token: str) -> WifiPortal:
    row = await session.scalar(select(WifiPortal).where(WifiPortal.token == token[:16]))
    if row is None:
        raise NotFound("Wi-Fi portal")
    return row


async def current_promotions(session: AsyncSession, *, portal: WifiPortal) -> list[Promotion]:
    """The venue's running promotions, newest first, chosen in SQL: single-use coupon copies
    (draw prizes, automation gifts: `total_uses` 1, someone's personal code) carry the
    merchant's id too, and after enough of them a window of the newest rows read in Python
    held nothing else."""
    now = utcnow()
    query = select(Promotion).where(
        Promotion.merchant_id.is_(None)
        if portal.merchant_id is None
        else Promotion.merchant_id == portal.merchant_id,
        Promotion.active.is_(True),
        or_(Promotion.starts_at.is_(None), Promotion.starts_at <= now),
        or_(Promotion.ends_at.is_(None), Promotion.ends_at > now),
        or_(
            Promotion.total_uses.is_(None),
            and_(Promotion.total_uses > 1, Promotion.used < Promotion.total_uses),
        ),
    )
    rows = await session.scalars(query.order_by(Promotion.id.desc()).limit(SHOWN_PROMOTIONS))
    return list(rows)


def otp_budget(portal: WifiPortal, params: wifi_fas.FasParams) -> accounts.SharedAddress:
    """Every visitor at a venue reaches us from the gateway's one public address, so the
    per-address limit on texted codes (30 an hour) would shut the portal after 30 sign-ups.
    Here it is kept per client the gateway named (`hid`, and the MAC when given), and the
    portal as a whole may ask for OTP_PER_PORTAL_PER_HOUR."""
    return accounts.SharedAddress(
        device=f"wifi:{portal.id}:{params.hid}:{params.clientmac}",
        network=f"wifi:{portal.id}",
        per_hour=OTP_PER_PORTAL_PER_HOUR,
    )


def landing_url(portal: WifiPortal) -> str:
    """Where openNDS sends the browser once it is online: our own page, absolute, because
    the gateway redirects to it from its own address."""
    return f"{get_settings().base_url.rstrip('/')}/wifi/{portal.token}/welcome"


async def signed_up(
    session: AsyncSession,
    *,
    portal: WifiPortal,
    user_id: int,
    marketing_sms: bool,
    device: str = "",
) -> None:
    """The visitor verified their number at the venue: consent if given (never assumed: the
    box starts unticked), and the sign-up event, which puts them in the venue's segment and
    starts its automations."""
    if marketing_sms:
        await privacy.set_consent(
            session,
            user_id=user_id,
            channel=accounts_domain.Channel.sms,
            granted=True,
            source=f"wifi:{portal.id}",
        )
    await events.record(
        session,
        kind=Kind.wifi_signup,
        user_id=user_id,
        merchant_id=portal.merchant_id,
        subject_id=portal.id,
        device=device,
    )
    await session.commit()
