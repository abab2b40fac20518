"""Sending a campaign: one message row per segment member (`start`), then the worker's loop
(`run`) claims rows in batches, screens them (consent, weekly cap, an address), defers those
in their quiet hours, renders each text and hands it to the channel: Kannel's sendsms for
SMS, the in-app inbox, or Web Push.

Exactly once, across crashes (docs/adr/0009): a row is sent only by the run that claimed it
(`status` queued → sending by a conditional UPDATE), and a row a dead worker left `sending`
is settled by its delivery report (dlr.py) or, when none came within
`campaign_resolve_after_s`, queued again. A run never hands over a row it claimed more than
half that long ago, so a row queued again can never also be in flight in the run that
claimed it first.

Memory stays flat in the number of recipients: rows are made, claimed and written back in
batches of at most `BATCH`; no list of all recipients exists anywhere. Numbers and texts
are never logged."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.tzdata import TIMEZONE_DATA
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import audience, composing, dlr, limits, segments
from mobimart.campaigns.models import Campaign, CampaignMessage
from mobimart.db import Database, insert_or_skip, utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.infra.pii import get_vault
from mobimart.infra.sms import kannel
from mobimart.infra.sms.models import SmsMessage
from mobimart.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Rows made per INSERT and claimed per UPDATE: 1,000 keeps each statement ~10 ms on
# PostgreSQL and its IN lists under SQLite's 32,766-variable limit, and the rows in flight a
# few hundred kB.
BATCH = 1000
MAKE_CHUNK = 5000
# Sent rows are written back at least this often (and every BATCH rows), so a crash leaves
# at most this much for the delivery reports to settle.
FLUSH_S = 0.5
# This many failed connections in a row: Kannel is down; stop, and let the periodic tick
# start the send again once its rows are settled.
MAX_GATEWAY_ERRORS = 50
IN_FLIGHT = ("queued", "deferred", "sending")
# A row Kannel took that has had no report for this long is taken to have lost it, and no
# longer holds back the resolution of a dead worker's rows (requeue_stale).
LOST_AFTER_S = 20 * 60


async def start(session: AsyncSession, *, campaign_id: int) -> int:
    """Make one queued message per segment member (a random short-link token each when the
    campaign has a link) and mark the campaign sending; commits chunk by chunk. Idempotent:
    a member who already has a message gets no second one. Returns the campaign's message
    count."""
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("Campaign")
    if campaign.status in ("sent", "cancelled"):
        raise Conflict("campaign_status", "This campaign has already been sent or cancelled.")
    if campaign.segment_id is None:
        raise DomainError("invalid_campaign", "Choose who gets it: a segment.", 422)
    segment_id, with_link = campaign.segment_id, campaign.link_url is not None
    statement = insert_or_skip(session, CampaignMessage, index_elements=["campaign_id", "user_id"])
    after: int | None = None
    while True:
        user_ids = await segments.members(
            session, segment_id=segment_id, after_user_id=after, limit=MAKE_CHUNK
        )
        if not user_ids:
            break
        after = user_ids[-1]
        for attempt in range(3):
            rows = [
                {
                    "campaign_id": campaign_id,
                    "user_id": user_id,
                    "status": "queued",
                    "reason": "",
                    "parts": 0,
                    # 64 random bits: a million links leave a guess a 1-in-18-trillion chance.
                    "link_token": secrets.token_urlsafe(8) if with_link else None,
                }
                for user_id in user_ids
            ]
            try:
                await session.execute(statement, rows)
                await session.commit()
                break
            except IntegrityError:  # two tokens alike (about once in 10^8 sends): new ones
                await session.rollback()
                if attempt == 2:
                    raise
    now = utcnow()
    await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.not_in(("sent", "cancelled")))
        .values(status="sending", started_at=func.coalesce(Campaign.started_at, now))
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    count = await session.scalar(
        select(func.count()).where(CampaignMessage.campaign_id == campaign_id)
    )
    return int(count or 0)


# --- claiming and settling ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    user_id: int
    link_token: str | None


async def claim(
    session: AsyncSession, *, campaign_id: int, limit: int, now: dt.datetime
) -> list[Claimed]:
    """Take up to `limit` queued messages for this run (committed): a conditional UPDATE, so
    two workers never take one row. PostgreSQL skips rows another claimer has locked rather
    than waiting for them; SQLite has one writer at a time."""
    pick = (
        select(CampaignMessage.id)
        .where(CampaignMessage.campaign_id == campaign_id, CampaignMessage.status == "queued")
        .order_by(CampaignMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    result = await session.execute(
        update(CampaignMessage)
        .where(CampaignMessage.id.in_(pick.scalar_subquery()), CampaignMessage.status == "queued")
        .values(status="sending", claimed_at=now)
        .returning(CampaignMessage.id, CampaignMessage.user_id, CampaignMessage.link_token)
        .execution_options(synchronize_session=False)
    )
    rows = [Claimed(*row) for row in result.all()]
    await session.commit()
    rows.sort(key=lambda r: r.id)
    return rows


def reported(channel: str, settings: Settings) -> bool:
    """Whether the campaign's messages go through a gateway that reports on each (Kannel)."""
    return channel == "sms" and settings.sms_backend == "kannel"


async def requeue_stale(
    session: AsyncSession, *, campaign_id: int, now: dt.datetime, after_s: int, reported: bool
) -> int:
    """Rows a dead worker left `sending` with no delivery report after `after_s`: nothing
    proves the gateway has them, so they go out again (a report, which moves a row out of
    `sending`, proves it has). The caller commits.

    Where the gateway reports (`reported`: SMS through Kannel), silence means something
    only once the reports have caught up: in a large send Kannel's callbacks can run minutes
    behind. A row waits until every row the gateway took that was claimed up to `after_s / 2`
    after it has its report (reports come back in about the order of sending), or until the
    unreported ones are `LOST_AFTER_S` old (a report Kannel lost would hold it back for good)."""
    cutoff = now - dt.timedelta(seconds=after_s)
    m = CampaignMessage
    if reported:
        behind = await session.scalar(
            select(func.min(m.claimed_at)).where(
                m.campaign_id == campaign_id,
                m.status == "accepted",
                m.dlr_status.is_(None),
                m.claimed_at > now - dt.timedelta(seconds=LOST_AFTER_S),
            )
        )
        if behind is not None:
            cutoff = min(cutoff, behind - dt.timedelta(seconds=after_s / 2))
    result = await session.execute(
        update(m)
        .where(m.campaign_id == campaign_id, m.status == "sending", m.claimed_at < cutoff)
        .values(status="queued", claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def wake_deferred(session: AsyncSession, *, campaign_id: int, now: dt.datetime) -> int:
    """Messages whose quiet hours have ended are queued again. The caller commits."""
    result = await session.execute(
        update(CampaignMessage)
        .where(
            CampaignMessage.campaign_id == campaign_id,
            CampaignMessage.status == "deferred",
            CampaignMessage.not_before <= now,
        )
        .values(status="queued", not_before=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def has_status(session: AsyncSession, *, campaign_id: int, status: str) -> bool:
    found = await session.scalar(
        select(CampaignMessage.id)
        .where(CampaignMessage.campaign_id == campaign_id, CampaignMessage.status == status)
        .limit(1)
    )
    return found is not None


async def finish_if_done(session: AsyncSession, *, campaign_id: int) -> bool:
    """Mark a sending campaign sent once none of its messages is queued, deferred or in
    flight (delivery reports may still arrive: they change messages, not the campaign)."""
    for status in IN_FLIGHT:
        if await has_status(session, campaign_id=campaign_id, status=status):
            return False
    result = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == "sending")
        .values(status="sent", finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- one batch: screen, defer, render -----------------------------------------------------------


@lru_cache(maxsize=256)
def _single_zone(country_code: str) -> ZoneInfo | None:
    """The zone of a country with one (China: every +86 number is Asia/Shanghai), else None.
    Parsing a number for its zone costs ~18 µs, 18 s of a million-person send; a country
    with one zone needs no parsing, and gets the zone `limits.zone_for_number` would give."""
    zones = {
        z
        for prefix, names in TIMEZONE_DATA.items()
        if prefix.startswith(country_code)
        for z in names
    }
    return ZoneInfo(zones.pop()) if len(zones) == 1 else None


def zone_of(phone: str) -> ZoneInfo:
    digits = phone.removeprefix("+")
    for n in (1, 2, 3):  # country codes are prefix-free, one to three digits
        code = digits[:n]
        if code.isdigit() and int(code) in COUNTRY_CODE_TO_REGION_CODE:
            single = _single_zone(code)
            if single is not None:
                return single
            break
    return limits.zone_for_number(phone)


@dataclass(frozen=True)
class Outgoing:
    id: int
    user_id: int
    to: str
    text: str
    link: str  # the person's short link as a path ("" without one), for inbox and push
    parts: int
    claimed: float  # time.monotonic() of the claim


@dataclass
class Context:
    campaign_id: int
    channel: str
    template: str
    title: str
    shop: str
    base_url: str
    quiet: limits.QuietHours
    default_zone: ZoneInfo
    throttle_per_s: int | None


async def _context(session: AsyncSession, campaign: Campaign, settings: Settings) -> Context:
    from mobimart.campaigns import campaigns  # it imports this module for send_now

    return Context(
        campaign_id=campaign.id,
        channel=campaign.channel,
        template=campaign.template,
        title=campaign.name,
        shop=await campaigns.sender_name(session, campaign.merchant_id),
        base_url=settings.base_url.rstrip("/"),
        quiet=limits.QuietHours.parse(settings.quiet_hours),
        default_zone=ZoneInfo("Asia/Shanghai"),
        throttle_per_s=campaign.throttle_per_s,
    )


async def prepare(
    session: AsyncSession, ctx: Context, claimed: Sequence[Claimed], *, now: dt.datetime
) -> list[Outgoing]:
    """Screen a claimed batch (one query per concern for the whole batch), mark who is
    skipped and why, defer who is in their quiet hours, and render the rest. Commits."""
    at = time.monotonic()
    verdicts = await audience.screen(
        session, channel=ctx.channel, user_ids=[c.user_id for c in claimed], now=now
    )
    people = {
        user_id: (phone, name)
        for user_id, phone, name in await session.execute(
            select(User.id, User.phone, User.display_name).where(
                User.id.in_([c.user_id for c in claimed])
            )
        )
    }
    skipped: dict[str, list[int]] = defaultdict(list)
    deferred: dict[dt.datetime, list[int]] = defaultdict(list)
    out: list[Outgoing] = []
    for c in claimed:
        phone, name = people.get(c.user_id, (None, ""))
        # Someone the screen has no word on is not messaged: consent is never assumed.
        skip = verdicts.get(c.user_id, limits.Skip.no_consent)
        if skip is None and ctx.channel == "sms" and not phone:
            skip = limits.Skip.no_address
        if skip is not None:
            skipped[skip.value].append(c.id)
            continue
        # The inbox makes no sound: only texts and push notifications wait out the night.
        if ctx.channel != "inbox":
            zone = zone_of(phone) if phone else ctx.default_zone
            later = ctx.quiet.next_allowed(now, zone)
            if later is not None:
                deferred[later].append(c.id)
                continue
        link = composing.short_link(ctx.base_url, c.link_token) if c.link_token else ""
        text = composing.render(
            ctx.template,
            {
                "name": composing.name_or_greeting(name, ctx.template),
                "shop": ctx.shop,
                "link": link,
            },
        )
        parts = limits.sms_size(text).parts if ctx.channel == "sms" else 0
        path = link.removeprefix(ctx.base_url)
        out.append(Outgoing(c.id, c.user_id, phone or "", text, path, parts, at))
    for reason, ids in skipped.items():
        await session.execute(
            update(CampaignMessage)
            .where(CampaignMessage.id.in_(ids), CampaignMessage.status == "sending")
            .values(status="skipped", reason=reason)
            .execution_options(synchronize_session=False)
        )
    for not_before, ids in deferred.items():
        await session.execute(
            update(CampaignMessage)
            .where(CampaignMessage.id.in_(ids), CampaignMessage.status == "sending")
            .values(status="deferred", not_before=not_before, claimed_at=None)
            .execution_options(synchronize_session=False)
        )
    await session.commit()
    return out


async def mark_sent(
    session: AsyncSession, *, by_parts: dict[int, list[int]], now: dt.datetime
) -> None:
    """Rows the gateway took: accepted, unless a delivery report got there first. Commits."""
    await dlr.lock(session, [i for ids in by_parts.values() for i in ids])
    for parts, ids in by_parts.items():
        await session.execute(
            update(CampaignMessage)
            .where(CampaignMessage.id.in_(ids))
            .values(
                parts=parts,
                sent_at=func.coalesce(CampaignMessage.sent_at, now),
                status=case(
                    (CampaignMessage.status == "sending", "accepted"),
                    else_=CampaignMessage.status,
                ),
            )
            .execution_options(synchronize_session=False)
        )
    await session.commit()


async def mark_failed(session: AsyncSession, *, ids: Sequence[int], reason: str) -> None:
    await dlr.lock(session, ids)
    await session.execute(
        update(CampaignMessage)
        .where(CampaignMessage.id.in_(ids), CampaignMessage.status == "sending")
        .values(status="failed", reason=reason[:20])
        .execution_options(synchronize_session=False)
    )
    await session.commit()


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Tally:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    failed: int = 0
    unsure: int = 0  # connection lost mid-request, or claimed too long ago: left to reports
    requeued: int = 0
    first_at: float | None = None
    last_at: float | None = None  # monotonic: the last message the gateway took

    def as_dict(self) -> dict[str, int]:
        return {
            k: v for k, v in vars(self).items() if isinstance(v, int) and not isinstance(v, bool)
        }


class _Pacer:
    """`throttle_per_s` as evenly spaced start times shared by every connection."""

    def __init__(self, per_s: int | None) -> None:
        self.gap = 1 / per_s if per_s else 0.0
        self.next = time.monotonic()

    async def wait(self) -> None:
        if not self.gap:
            return
        now = time.monotonic()
        slot = max(self.next, now)
        self.next = slot + self.gap
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass
class _Written:
    by_parts: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    failed: list[int] = field(default_factory=list)
    count: int = 0


async def run(database: Database, *, campaign_id: int, settings: Settings | None = None) -> Tally:
    """Send what is queued for the campaign until nothing is, or it is paused or cancelled.
    Any number of runs may work on one campaign at once; each sends only what it claimed."""
    settings = settings or get_settings()
    tally = Tally()
    async with database.session() as session:
        campaign = await session.get(Campaign, campaign_id)
        if campaign is None or campaign.status not in ("scheduled", "sending"):
            return tally
        if campaign.status == "scheduled":
            if campaign.scheduled_at and campaign.scheduled_at > utcnow():
                return tally  # the periodic tick starts it when it is due
            await start(session, campaign_id=campaign_id)
        elif campaign.started_at is None or not await has_messages(session, campaign_id):
            await start(session, campaign_id=campaign_id)
        now = utcnow()
        tally.requeued = await requeue_stale(
            session,
            campaign_id=campaign_id,
            now=now,
            after_s=settings.campaign_resolve_after_s,
            reported=reported(campaign.channel, settings),
        )
        await wake_deferred(session, campaign_id=campaign_id, now=now)
        await session.commit()
        ctx = await _context(session, campaign, settings)
    # Never hand over a row claimed more than half the resolve delay ago: by then the
    # periodic tick may be about to give it to another run.
    max_age = settings.campaign_resolve_after_s / 2
    batch = BATCH
    if ctx.throttle_per_s:  # claim no more than fits well inside max_age at the set pace
        batch = max(1, min(BATCH, int(ctx.throttle_per_s * max_age / 4)))
    # Two batches deep: the next batch is claimed and screened while this one goes out.
    queue: asyncio.Queue[Outgoing | None] = asyncio.Queue(maxsize=2 * batch)
    written = _Written()
    pacer = _Pacer(ctx.throttle_per_s)
    gateway = reported(ctx.channel, settings)
    pool = (
        kannel.SendsmsPool(settings, connections=settings.kannel_connections) if gateway else None
    )
    stop = asyncio.Event()

    async def flush() -> None:
        by_parts, failed = written.by_parts, written.failed
        written.by_parts, written.failed, written.count = defaultdict(list), [], 0
        try:
            async with database.session() as session:
                if by_parts:
                    await mark_sent(session, by_parts=by_parts, now=utcnow())
                if failed:
                    await mark_failed(session, ids=failed, reason="refused")
        except Exception:  # the send goes on; these rows' delivery reports settle them
            log.exception("campaign %s: writing back sent rows failed", campaign_id)

    async def flusher() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_S)
            if written.count:
                await flush()

    async def producer() -> None:
        try:
            while not stop.is_set():
                async with database.session() as session:
                    status = await session.scalar(
                        select(Campaign.status).where(Campaign.id == campaign_id)
                    )
                    if status != "sending":
                        break  # paused or cancelled: what is claimed still goes
                    now = utcnow()
                    claimed = await claim(session, campaign_id=campaign_id, limit=batch, now=now)
                    if not claimed:
                        break
                    tally.claimed += len(claimed)
                    ready = await prepare(session, ctx, claimed, now=now)
                    tally.skipped += len(claimed) - len(ready)
                    if not gateway:
                        await _deliver_here(session, ctx, ready, settings, tally)
                        continue
                for item in ready:
                    await queue.put(item)
        finally:
            for _ in range(settings.kannel_connections if gateway else 0):
                await queue.put(None)

    async def sender() -> None:
        assert pool is not None
        errors = 0
        while (item := await queue.get()) is not None:
            if stop.is_set() or time.monotonic() - item.claimed > max_age:
                tally.unsure += 1
                continue
            await pacer.wait()
            ok, _reply = await pool.send(
                to=item.to,
                text=item.text,
                dlr_url=dlr.url_for(item.id, settings),
                dlr_mask=settings.sms_dlr_mask,
            )
            if ok is None:
                tally.unsure += 1
                errors += 1
                if errors >= MAX_GATEWAY_ERRORS:
                    log.warning("campaign %s: SMS gateway unreachable; stopping", campaign_id)
                    stop.set()
                continue
            errors = 0
            if ok:
                written.by_parts[item.parts].append(item.id)
                tally.sent += 1
                tally.last_at = time.monotonic()
                tally.first_at = tally.first_at or tally.last_at
            else:
                written.failed.append(item.id)
                tally.failed += 1
            written.count += 1
            if written.count >= BATCH:
                await flush()

    flushing = asyncio.create_task(flusher())
    try:
        senders = [sender() for _ in range(settings.kannel_connections)] if gateway else []
        await asyncio.gather(producer(), *senders)
    finally:
        stop.set()
        # Never cancelled: a flush cut short would lose the rows it had taken to write.
        await flushing
        if pool is not None:
            await pool.close()
        await flush()
    async with database.session() as session:
        await finish_if_done(session, campaign_id=campaign_id)
    log.info("campaign %s run: %s", campaign_id, tally.as_dict())
    return tally


async def has_messages(session: AsyncSession, campaign_id: int) -> bool:
    """Whether the campaign's messages have been made (a send in progress makes them first)."""
    found = await session.scalar(
        select(CampaignMessage.id).where(CampaignMessage.campaign_id == campaign_id).limit(1)
    )
    return found is not None


async def _deliver_here(
    session: AsyncSession,
    ctx: Context,
    ready: Sequence[Outgoing],
    settings: Settings,
    tally: Tally,
) -> None:
    """Channels without a gateway round trip per message: the SMS outbox (the embedded
    default, which only records) and the inbox are written with their rows' status in one
    transaction, so they happen exactly once; Web Push goes out one person at a time."""
    if not ready:
        return
    now = utcnow()
    ids = [item.id for item in ready]
    if ctx.channel == "sms":
        vault = get_vault()
        session.add_all(
            SmsMessage(
                to_number=item.to,
                to_hash=vault.lookup_hash(item.to),
                text=item.text,
                backend=settings.sms_backend,
                status="recorded",
            )
            for item in ready
        )
        by_parts: dict[int, list[int]] = defaultdict(list)
        for item in ready:
            by_parts[item.parts].append(item.id)
        await mark_sent(session, by_parts=by_parts, now=now)
        tally.sent += len(ready)
        return
    if ctx.channel == "inbox":
        from mobimart.notifications import service as notifications

        for item in ready:
            await notifications.notify(
                session,
                user_id=item.user_id,
                kind="system",
                title=ctx.title,
                body=item.text,
                link=item.link,
            )
        await session.execute(
            update(CampaignMessage)
            .where(CampaignMessage.id.in_(ids), CampaignMessage.status == "sending")
            .values(status="delivered", sent_at=now, delivered_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        tally.sent += len(ready)
        return
    from mobimart.notifications import push

    took: list[int] = []
    refused: list[int] = []
    for item in ready:
        ok = await push.deliver(
            session,
            user_id=item.user_id,
            title=ctx.title,
            body=item.text,
            link=item.link,
        )
        (took if ok else refused).append(item.id)
    if took:
        await mark_sent(session, by_parts={0: took}, now=now)
    if refused:
        await mark_failed(session, ids=refused, reason="no_address")
    tally.sent += len(took)
    tally.failed += len(refused)
