"""Who of a batch of recipients may be messaged now on a channel: consent (the newest consent
row as of the moment), an address to send to, and the weekly frequency cap. One query per
concern for the whole batch: a send of a million people calls this a few hundred times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns.limits import Skip
from mobimart.campaigns.models import AutomationRun, Campaign, CampaignMessage
from mobimart.campaigns.segments import consent_grants
from mobimart.settings import get_settings

CAP_WINDOW = dt.timedelta(days=7)
# A campaign's channel -> the consent channel that covers it (accounts.domain.Channel).
CONSENT_CHANNEL = {"sms": "sms", "push": "push", "inbox": "in_app"}


async def _consented(
    session: AsyncSession, channel: str, user_ids: Sequence[int], now: dt.datetime
) -> set[int]:
    q = consent_grants(CONSENT_CHANNEL[channel], now=now, user_ids=user_ids)
    return set(await session.scalars(q))


async def _addressable(session: AsyncSession, channel: str, user_ids: Sequence[int]) -> set[int]:
    """sms: a phone number (a deleted account has none); push: a subscribed device;
    inbox: an account that is not deleted."""
    if channel == "push":
        from mobimart.notifications import push  # imported here: push sends campaign messages

        return await push.has_subscription(session, user_ids)
    q = select(User.id).where(User.id.in_(user_ids), User.deleted_at.is_(None))
    if channel == "sms":
        q = q.where(User.phone.is_not(None))
    return set(await session.scalars(q))


async def _capped(
    session: AsyncSession, channel: str, user_ids: Sequence[int], now: dt.datetime
) -> set[int]:
    """People already sent settings.marketing_cap_per_week messages on this channel in the
    7 days before `now`, campaigns' and automations' together (the moment the gateway took
    each one counts)."""
    cap = get_settings().marketing_cap_per_week
    campaign_sends = (
        select(CampaignMessage.user_id)
        .join(Campaign, Campaign.id == CampaignMessage.campaign_id)
        .where(
            CampaignMessage.user_id.in_(user_ids),
            Campaign.channel == channel,
            CampaignMessage.sent_at > now - CAP_WINDOW,
            CampaignMessage.sent_at <= now,
        )
    )
    sends = union_all(campaign_sends, _automation_sends(channel, user_ids, now)).subquery()
    q = select(sends.c.user_id).group_by(sends.c.user_id).having(func.count() >= cap)
    return set(await session.scalars(q))


# An automation's text or push is a marketing message like a campaign's: it counts toward
# the same weekly cap, and an automation's run is screened here before it sends.
_AUTOMATION_RESULT = {"sms": "sms_sent", "push": "push_sent"}


def _automation_sends(channel: str, user_ids: Sequence[int], now: dt.datetime) -> Select[Any]:
    """One row per automation message sent on `channel` in the cap window: runs settled
    with that result, at the moment they were settled (right after the gateway took it)."""
    return select(AutomationRun.user_id).where(
        AutomationRun.user_id.in_(user_ids),
        AutomationRun.result.in_(
            [_AUTOMATION_RESULT[channel]] if channel in _AUTOMATION_RESULT else []
        ),
        AutomationRun.done_at > now - CAP_WINDOW,
        AutomationRun.done_at <= now,
    )


async def screen(
    session: AsyncSession, *, channel: str, user_ids: Sequence[int], now: dt.datetime
) -> dict[int, Skip | None]:
    """Per person: None when they may be messaged now on `channel` (sms | push | inbox),
    else why not: no_consent before no_address before capped."""
    if channel not in CONSENT_CHANNEL:
        raise ValueError(f"Unknown channel {channel!r}.")
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    consented = await _consented(session, channel, ids, now)
    addressable = await _addressable(session, channel, [u for u in ids if u in consented])
    capped = await _capped(session, channel, [u for u in ids if u in addressable], now)
    out: dict[int, Skip | None] = {}
    for user_id in ids:
        if user_id not in consented:
            out[user_id] = Skip.no_consent
        elif user_id not in addressable:
            out[user_id] = Skip.no_address
        elif user_id in capped:
            out[user_id] = Skip.capped
        else:
            out[user_id] = None
    return out
