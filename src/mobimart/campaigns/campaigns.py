"""Campaigns as their authors see them: drafts checked as they are written, the cost
estimate, scheduling, sending now, pausing, cancelling, and the merchant's list.

Status moves only forward, each step a conditional UPDATE so two clicks cannot both win:
draft → scheduled → sending ⇄ paused → sent, and anything not yet sent → cancelled.
Sending itself (making a message per member, the worker, the gateway) is `sending.py`'s;
its loop stops at `paused` and `cancelled`.

`merchant_id=None` is the platform (the mall operator): its campaigns use platform segments
and sign as the platform."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.domain import MemberRole
from mobimart.accounts.models import User
from mobimart.campaigns import composing
from mobimart.campaigns.models import Campaign, Segment
from mobimart.catalog.models import Shop
from mobimart.db import utcnow
from mobimart.errors import Conflict, DomainError, Forbidden, NotFound
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings
from mobimart.text import clean_name
from mobimart.web.forms import safe_link
from mobimart.web.i18n import stored as _
from mobimart.web.pagination import PageParams

CHANNELS = ("sms", "push", "inbox")
PAID_CHANNELS = ("sms",)  # sent by the owner only (may_start)
PLATFORM_NAME = "Mobimart"
# Console pages show and take times in China Standard Time (merchants here are in China;
# no DST, so a wall time always names one moment); the API speaks UTC.
CONSOLE_ZONE = ZoneInfo("Asia/Shanghai")
# Far enough ahead for a seasonal campaign; further out the segment will have changed.
MAX_SCHEDULE_AHEAD = dt.timedelta(days=180)
MAX_PUSH_TEXT = 500  # an inbox line or a notification body; longer is cut by phones anyway
EDITABLE = ("draft",)
STARTABLE = ("draft", "scheduled")
CANCELLABLE = ("draft", "scheduled", "sending", "paused")


@dataclass(frozen=True)
class Spec:
    name: str
    channel: str
    template: str
    segment_id: int | None = None
    link_url: str | None = None
    throttle_per_s: int | None = None


def _scope(merchant_id: int | None) -> ColumnElement[bool]:
    if merchant_id is None:
        return Campaign.merchant_id.is_(None)
    return Campaign.merchant_id == merchant_id


def _invalid(detail: str) -> DomainError:
    return DomainError("invalid_campaign", detail, 422)


def check_link_url(url: str | None) -> str | None:
    """Where `{link}` goes, or None when blank; `web.forms.safe_link` decides what may be."""
    if url is None or not url.strip():
        return None
    return safe_link(url)


def check_template(template: str, *, channel: str, link_url: str | None) -> str:
    """The template as it will be stored: checked, and for SMS with the opt-out hint (kept
    in the stored text so every sender renders it and the author sees what goes out)."""
    template = template.strip()
    if not template:
        raise _invalid("Write the message.")
    try:
        composing.check(template)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    if "link" in composing.variables(template) and link_url is None:
        raise _invalid("{link} needs a link address: set where the link goes, or remove {link}.")
    if channel == "sms":
        template = composing.with_opt_out(template)
        size = composing.estimate(
            template, recipients=1, cost_per_part_minor=0, sample_values=sample_values(template)
        )
        if size.parts > composing.MAX_SMS_PARTS:
            raise _invalid(
                f"The message is {size.parts} SMS parts; at most {composing.MAX_SMS_PARTS} "
                "arrive reliably. Shorten it."
            )
    else:
        template = composing.without_opt_out(template)
    if channel != "sms" and len(template) > MAX_PUSH_TEXT:
        raise _invalid(f"An inbox or push message has at most {MAX_PUSH_TEXT} characters.")
    try:
        composing.check(template)
    except ValueError as exc:  # the 1000-character limit, with the hint added
        raise _invalid(str(exc)) from None
    return template


def sample_values(template: str, *, shop: str = "") -> dict[str, str]:
    """A sample person for previews and estimates; the link at its real length."""
    return {
        "name": "Li Hua" if composing.name_or_greeting("", template) == "there" else "李华",
        "shop": shop or "Shop",
        "link": composing.sample_link(get_settings().base_url),
    }


async def _segment(session: AsyncSession, merchant_id: int | None, segment_id: int) -> Segment:
    """The segment if it is this merchant's (or, for the platform, a platform segment):
    another merchant's is 'not found' — its existence is theirs."""
    segment = await session.get(Segment, segment_id)
    if segment is None or segment.merchant_id != merchant_id:
        raise NotFound("Segment")
    return segment


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise _invalid("The channel is sms, push or inbox.")


async def create(
    session: AsyncSession, *, merchant_id: int | None, user_id: int, spec: Spec
) -> Campaign:
    _check_channel(spec.channel)
    name = clean_name(spec.name, 200)
    if not name or len(name) > 80:
        raise _invalid("Give the campaign a name (up to 80 characters).")
    if spec.segment_id is not None:
        await _segment(session, merchant_id, spec.segment_id)
    link_url = check_link_url(spec.link_url)
    template = check_template(spec.template, channel=spec.channel, link_url=link_url)
    campaign = Campaign(
        merchant_id=merchant_id,
        name=name,
        channel=spec.channel,
        segment_id=spec.segment_id,
        template=template,
        link_url=link_url,
        throttle_per_s=spec.throttle_per_s,
        cost_per_part_minor=get_settings().sms_cost_per_part_minor if spec.channel == "sms" else 0,
        created_by=user_id,
    )
    session.add(campaign)
    await session.commit()
    return campaign


async def get(session: AsyncSession, *, merchant_id: int | None, campaign_id: int) -> Campaign:
    campaign = await session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, _scope(merchant_id))
    )
    if campaign is None:
        raise NotFound("Campaign")
    return campaign


async def update_draft(
    session: AsyncSession, *, merchant_id: int | None, campaign_id: int, changes: dict[str, Any]
) -> Campaign:
    """Change a draft; `changes` holds Spec fields only (None clears segment, link, throttle)."""
    campaign = await get(session, merchant_id=merchant_id, campaign_id=campaign_id)
    if campaign.status not in EDITABLE:
        raise Conflict("campaign_not_draft", "Only a draft can be changed.")
    known = {f.name for f in fields(Spec)}
    current = {name: getattr(campaign, name) for name in known}
    spec = Spec(**(current | {k: v for k, v in changes.items() if k in known}))
    _check_channel(spec.channel)
    name = clean_name(spec.name, 200)
    if not name or len(name) > 80:
        raise _invalid("Give the campaign a name (up to 80 characters).")
    if spec.segment_id is not None and spec.segment_id != campaign.segment_id:
        await _segment(session, merchant_id, spec.segment_id)
    link_url = check_link_url(spec.link_url)
    template = check_template(spec.template, channel=spec.channel, link_url=link_url)
    campaign.name = name
    campaign.channel = spec.channel
    campaign.segment_id = spec.segment_id
    campaign.template = template
    campaign.link_url = link_url
    campaign.throttle_per_s = spec.throttle_per_s
    campaign.cost_per_part_minor = (
        get_settings().sms_cost_per_part_minor if spec.channel == "sms" else 0
    )
    await session.commit()
    return campaign


async def may_start(
    session: AsyncSession, *, merchant_id: int, campaign_id: int, user: User
) -> Merchant:
    """The merchant, if `user` may send, schedule or resume this campaign: any member for push
    and inbox, which cost nothing, but only the owner for SMS, which the merchant pays per
    part (a million-recipient send is a real bill). Staff still draft, preview and estimate.
    Not a member: 404; staff on an SMS campaign: 403."""
    merchant, member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    if member.role == MemberRole.owner:
        return merchant
    channel = await session.scalar(
        select(Campaign.channel).where(Campaign.id == campaign_id, _scope(merchant.id))
    )
    if channel is None:
        raise NotFound("Campaign")
    if channel in PAID_CHANNELS:
        raise Forbidden(_("Only the merchant's owner can send text messages: they cost money."))
    return merchant


async def sender_name(session: AsyncSession, merchant_id: int | None) -> str:
    """`{shop}`: the shop's name (the merchant's until its storefront is opened), or the
    platform's for platform campaigns and automations."""
    if merchant_id is None:
        return PLATFORM_NAME
    row = (
        await session.execute(
            select(Shop.name, Merchant.name)
            .select_from(Merchant)
            .outerjoin(Shop, Shop.merchant_id == Merchant.id)
            .where(Merchant.id == merchant_id)
        )
    ).first()
    if row is None:
        return PLATFORM_NAME
    return str(row[0] or row[1] or PLATFORM_NAME)


@dataclass(frozen=True)
class CostEstimate:
    channel: str
    recipients: int
    text: str  # as the sample person gets it
    encoding: str | None  # SMS only
    characters: int
    parts: int
    cost_per_part_minor: int
    cost_minor: int
    currency: str


async def estimate_text(
    session: AsyncSession,
    *,
    merchant_id: int | None,
    channel: str,
    template: str,
    segment_id: int | None,
    link_url: str | None,
) -> CostEstimate:
    """The preview of a template not saved yet (the composer's live preview): what the
    sample person reads, its SMS size, and the cost to the segment's current members."""
    _check_channel(channel)
    link_url = check_link_url(link_url)
    template = check_template(template, channel=channel, link_url=link_url)
    recipients = 0
    if segment_id is not None:
        recipients = (await _segment(session, merchant_id, segment_id)).member_count
    values = sample_values(template, shop=await sender_name(session, merchant_id))
    if channel != "sms":
        text = composing.render(template, values)
        return CostEstimate(channel, recipients, text, None, len(text), 0, 0, 0, "CNY")
    per_part = get_settings().sms_cost_per_part_minor
    est = composing.estimate(
        template, recipients=recipients, cost_per_part_minor=per_part, sample_values=values
    )
    return CostEstimate(
        channel,
        recipients,
        est.text,
        est.encoding,
        est.characters,
        est.parts,
        per_part,
        est.cost_minor,
        "CNY",
    )


async def estimate(
    session: AsyncSession, *, merchant_id: int | None, campaign_id: int
) -> CostEstimate:
    """Segment members × SMS parts × the carrier's price per part; push and inbox are free."""
    campaign = await get(session, merchant_id=merchant_id, campaign_id=campaign_id)
    recipients = 0
    if campaign.segment_id is not None:
        segment = await session.get(Segment, campaign.segment_id)
        recipients = segment.member_count if segment is not None else 0
    values = sample_values(campaign.template, shop=await sender_name(session, merchant_id))
    if campaign.channel != "sms":
        text = composing.render(campaign.template, values)
        return CostEstimate(
            campaign.channel, recipients, text, None, len(text), 0, 0, 0, campaign.currency
        )
    est = composing.estimate(
        campaign.template,
        recipients=recipients,
        cost_per_part_minor=campaign.cost_per_part_minor,
        sample_values=values,
    )
    return CostEstimate(
        "sms",
        recipients,
        est.text,
        est.encoding,
        est.characters,
        est.parts,
        campaign.cost_per_part_minor,
        est.cost_minor,
        campaign.currency,
    )


async def _move(
    session: AsyncSession,
    campaign: Campaign,
    *,
    from_: Sequence[str],
    to: str,
    refusal: str,
    **values: Any,
) -> None:
    """One status step, atomically: a concurrent step that got there first makes this 409."""
    result = await session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.in_(from_))
        .values(status=to, **values)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        await session.rollback()
        raise Conflict("campaign_status", refusal)
    await session.refresh(campaign)


async def _ready(session: AsyncSession, campaign: Campaign) -> None:
    """A campaign may go out: its merchant is verified and it has a segment of theirs."""
    if campaign.merchant_id is not None:
        merchant = await session.get(Merchant, campaign.merchant_id)
        assert merchant is not None  # the campaign's row cascades with it
        merchants.require_approved(merchant)
    if campaign.segment_id is None:
        raise _invalid("Choose who gets it: a segment.")
    await _segment(session, campaign.merchant_id, campaign.segment_id)


async def schedule(
    session: AsyncSession,
    *,
    merchant_id: int | None,
    campaign_id: int,
    at: dt.datetime,
    now: dt.datetime | None = None,
) -> Campaign:
    """Send at `at` (aware; stored in UTC). A scheduled campaign can be moved to another
    time; the sending worker starts due ones."""
    if at.tzinfo is None:
        raise _invalid("Give the time with its zone (UTC in the API).")
    now = now or utcnow()
    try:
        at = at.astimezone(dt.UTC)
    except OverflowError:  # year 1 or 9999 with an offset
        raise _invalid("A campaign can be scheduled at most 180 days ahead.") from None
    if at <= now:
        raise _invalid("The time to send is in the past; pick a later one.")
    if at > now + MAX_SCHEDULE_AHEAD:
        raise _invalid("A campaign can be scheduled at most 180 days ahead.")
    campaign = await get(session, merchant_id=merchant_id, campaign_id=campaign_id)
    await _ready(session, campaign)
    await _move(
        session,
        campaign,
        from_=STARTABLE,
        to="scheduled",
        refusal="Only a draft or a scheduled campaign can be scheduled.",
        scheduled_at=at,
    )
    await session.commit()
    return campaign


async def send_now(session: AsyncSession, *, merchant_id: int | None, campaign_id: int) -> Campaign:
    """Start sending: mark it sending and hand it to the worker, which makes a message per
    member before it sends (for a million members that takes minutes: not in a request)."""
    from mobimart.campaigns import tasks  # the sending side imports this module

    campaign = await get(session, merchant_id=merchant_id, campaign_id=campaign_id)
    await _ready(session, campaign)
    await _move(
        session,
        campaign,
        from_=STARTABLE,
        to="sending",
        refusal="This campaign has already been sent or cancelled.",
        started_at=utcnow(),
    )
    await session.commit()
    tasks.enqueue_send(campaign.id)
    await session.refresh(campaign)
    return campaign


async def pause(session: AsyncSession, *, merchant_id: int | None, campaign_id: int) -> Campaign:
    """Messages already handed to the gateway still arrive; the rest wait for resume."""
    campaign = await get(session, merchant_id=merchant_id, campaign_id=campaign_id)
    await _move(
        session,
        campaign,
        from_=("sending",),
        to="paused",
        refusal="Only a sending campaign pauses.",
    )
    await session.commit()
    return campaign


async def resume(session: AsyncSession, *, merchant_id: int | None, campaign_id: int) -> Campaign:
    from mobimart.campaigns import tasks

    campaign = await get(session, merchant_id=merchant_id, campaign_id=campaign_id)
    await _move(
        session,
        campaign,
        from_=("paused",),
        to="sending",
        refusal="Only a paused campaign resumes.",
    )
    await session.commit()
    tasks.enqueue_send(campaign.id)
    return campaign


async def cancel(session: AsyncSession, *, merchant_id: int | None, campaign_id: int) -> Campaign:
    """Nothing more goes out; what the gateway already took is not recalled."""
    campaign = await get(session, merchant_id=merchant_id, campaign_id=campaign_id)
    await _move(
        session,
        campaign,
        from_=CANCELLABLE,
        to="cancelled",
        refusal="A sent or cancelled campaign cannot be cancelled.",
        finished_at=utcnow(),
    )
    await session.commit()
    return campaign


async def list_campaigns(
    session: AsyncSession, *, merchant_id: int | None, page: PageParams
) -> list[Campaign]:
    """Newest first; `page.fetch` rows (one more than the page, see split_page)."""
    query = select(Campaign).where(_scope(merchant_id))
    if page.before_id is not None:
        query = query.where(Campaign.id < page.before_id)
    return list(await session.scalars(query.order_by(Campaign.id.desc()).limit(page.fetch)))


async def segments_of(session: AsyncSession, *, merchant_id: int | None) -> list[Segment]:
    """The segments a campaign of this merchant may go to (for the composer's picker)."""
    scope = (
        Segment.merchant_id.is_(None) if merchant_id is None else Segment.merchant_id == merchant_id
    )
    return list(
        await session.scalars(select(Segment).where(scope).order_by(Segment.name).limit(200))
    )
