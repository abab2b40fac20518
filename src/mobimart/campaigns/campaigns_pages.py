"""Campaigns in the merchant console: the list, the composer (live preview with a sample
person, SMS size and cost; without script the Preview button posts the form and the page
comes back with it), a draft's send and schedule, a sent campaign's report with its chart,
and the marketing overview that links every marketing tool.

Times on these pages are China Standard Time (campaigns.CONSOLE_ZONE) and say so; the
report's chart buckets are UTC hours or days, labelled in that zone."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.domain import MemberRole
from mobimart.accounts.models import User
from mobimart.campaigns import campaigns, report
from mobimart.campaigns.models import Campaign
from mobimart.errors import DomainError
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.web.deps import PageUser, Session
from mobimart.web.forms import message_of, parse_local, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
Notice = Annotated[str, Query(max_length=20)]
BASE = "/console/{merchant_id}/campaigns"


def status_labels() -> dict[str, str]:
    return {
        "draft": _("Draft"),
        "scheduled": _("Scheduled"),
        "sending": _("Sending"),
        "paused": _("Paused"),
        "sent": _("Sent"),
        "cancelled": _("Cancelled"),
    }


def marketing_tools() -> list[tuple[str, str, str]]:
    """(console path under the merchant, name, what it is for): every marketing tool."""
    return [
        ("segments", _("Segments"), _("Who gets a message: people picked by what they did.")),
        ("campaigns", _("Campaigns"), _("SMS, push and inbox messages with tracked links.")),
        ("qr", _("QR codes"), _("Printed codes for products, the shop, draws and offers.")),
        ("draws", _("Lucky draws"), _("Provably fair prize draws entered by scan or link.")),
        ("places", _("Stores and geofences"), _("Offers for people near your stores.")),
        ("wifi", _("Wi-Fi portal"), _("Guests sign in to your Wi-Fi and become contacts.")),
        (
            "automations",
            _("Automations"),
            _("Send, reward or give a coupon when something happens."),
        ),
    ]


@dataclasses.dataclass
class Form_:
    """What the composer shows: a campaign's fields or what was typed."""

    name: str = ""
    channel: str = "sms"
    segment_id: int | None = None
    template: str = ""
    link_url: str = ""

    @classmethod
    def of(cls, campaign: Campaign) -> Form_:
        return cls(
            campaign.name,
            campaign.channel,
            campaign.segment_id,
            campaign.template,
            campaign.link_url or "",
        )

    def spec(self) -> campaigns.Spec:
        return campaigns.Spec(
            name=self.name,
            channel=self.channel,
            template=self.template,
            segment_id=self.segment_id,
            link_url=self.link_url or None,
        )


def _form(name: str, channel: str, segment_id: str, template: str, link_url: str) -> Form_:
    segment = int(segment_id) if segment_id.isdigit() and 0 < int(segment_id) < 2**31 else None
    return Form_(name.strip(), channel, segment, template, link_url.strip())


FormName = Annotated[str, Form(max_length=200)]
FormChannel = Annotated[str, Form(max_length=10)]
FormSegment = Annotated[str, Form(max_length=12)]
FormTemplate = Annotated[str, Form(max_length=2000)]
FormLink = Annotated[str, Form(max_length=600)]
FormAction = Annotated[str, Form(max_length=10)]


def local(at: dt.datetime | None) -> str:
    """A UTC moment as console wall time."""
    if at is None:
        return ""
    return at.astimezone(campaigns.CONSOLE_ZONE).strftime("%Y-%m-%d %H:%M")


def _notice(code: str) -> str:
    return {
        "created": _("Draft saved. Check the preview, then send or schedule it."),
        "saved": _("Draft saved."),
        "sending": _("Sending has started."),
        "scheduled": _("Scheduled."),
        "cancelled": _("Cancelled: nothing more goes out."),
        "paused": _("Paused."),
        "resumed": _("Sending again."),
    }.get(code, "")


async def _merchant(session: AsyncSession, merchant_id: int, user: User) -> Merchant:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    return merchant


async def _reset(session: AsyncSession, user: User, merchant_id: int) -> Merchant:
    """After a refused step: drop what it half did, and reload what the page shows (a
    rollback expires every loaded row, and a page cannot lazy-load them)."""
    await session.rollback()
    await session.refresh(user)
    return await _merchant(session, merchant_id, user)


async def _preview(
    session: AsyncSession, merchant: Merchant, form: Form_
) -> tuple[campaigns.CostEstimate | None, str]:
    """The estimate for what was typed, or why it cannot be sent as it is."""
    if not form.template.strip():
        return None, ""
    try:
        est = await campaigns.estimate_text(
            session,
            merchant_id=merchant.id,
            channel=form.channel,
            template=form.template,
            segment_id=form.segment_id,
            link_url=form.link_url or None,
        )
    except DomainError as exc:
        return None, message_of(exc)
    return est, ""


async def _composer(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant: Merchant,
    form: Form_,
    *,
    campaign: Campaign | None = None,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    est, problem = await _preview(session, merchant, form)
    owner_only = False  # staff see why an SMS draft has no send buttons (campaigns.may_start)
    if campaign is not None and campaign.channel in campaigns.PAID_CHANNELS:
        _merchant, member = await merchants.membership(session, merchant_id=merchant.id, user=user)
        owner_only = member.role != MemberRole.owner
    return render(
        request,
        "campaigns/campaign_form.html",
        {
            "owner_only": owner_only,
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "campaign": campaign,
            "form": form,
            "segments": await campaigns.segments_of(session, merchant_id=merchant.id),
            "estimate": est,
            "problem": problem,
            "error": error,
            "notice": notice,
            "zone": "UTC+8",
            "status_labels": status_labels(),
            "local": local,
            "min_at": local(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).replace(" ", "T"),
        },
        status=status,
    )


@router.get(BASE)
async def campaign_list(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    cursor: Cursor = None,
    notice: Notice = "",
) -> Response:
    merchant = await _merchant(session, merchant_id, user)
    params = page_params(cursor=cursor, limit=20)
    rows = await campaigns.list_campaigns(session, merchant_id=merchant.id, page=params)
    shown, next_cursor = split_page(rows, params, key=lambda c: c.id)
    return render(
        request,
        "campaigns/campaign_list.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "campaigns": shown,
            "figures": await report.headlines(session, campaign_ids=[c.id for c in shown]),
            "next_cursor": next_cursor,
            "status_labels": status_labels(),
            "local": local,
            "notice": _notice(notice),
        },
    )


@router.get(BASE + "/new")
async def new_campaign(
    request: Request, merchant_id: IdPath, user: PageUser, session: Session
) -> Response:
    merchant = await _merchant(session, merchant_id, user)
    return await _composer(request, session, user, merchant, Form_())


@router.post(BASE + "/preview")
async def preview_fragment(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    name: FormName = "",
    channel: FormChannel = "sms",
    segment_id: FormSegment = "",
    template: FormTemplate = "",
    link_url: FormLink = "",
) -> Response:
    """The preview card alone, for the composer's script as the author types."""
    verify_csrf(request, csrf_token)
    merchant = await _merchant(session, merchant_id, user)
    form = _form(name, channel, segment_id, template, link_url)
    est, problem = await _preview(session, merchant, form)
    return render(
        request,
        "campaigns/campaign_preview.html",
        {"merchant": merchant, "form": form, "estimate": est, "problem": problem},
    )


@router.post(BASE)
async def create_campaign(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    name: FormName = "",
    channel: FormChannel = "sms",
    segment_id: FormSegment = "",
    template: FormTemplate = "",
    link_url: FormLink = "",
    action: FormAction = "save",
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await _merchant(session, merchant_id, user)
    form = _form(name, channel, segment_id, template, link_url)
    if action == "preview":
        return await _composer(request, session, user, merchant, form)
    try:
        campaign = await campaigns.create(
            session, merchant_id=merchant.id, user_id=user.id, spec=form.spec()
        )
    except DomainError as exc:
        return await _composer(
            request, session, user, merchant, form, error=message_of(exc), status=_status(exc)
        )
    return see_other(f"/console/{merchant.id}/campaigns/{campaign.id}?notice=created")


def _status(exc: DomainError) -> int:
    return exc.status if exc.status in (403, 404, 409, 422) else 422


@router.get(BASE + "/{campaign_id}")
async def campaign_page(
    request: Request,
    merchant_id: IdPath,
    campaign_id: IdPath,
    user: PageUser,
    session: Session,
    notice: Notice = "",
) -> Response:
    merchant = await _merchant(session, merchant_id, user)
    campaign = await campaigns.get(session, merchant_id=merchant.id, campaign_id=campaign_id)
    if campaign.status == "draft":
        return await _composer(
            request,
            session,
            user,
            merchant,
            Form_.of(campaign),
            campaign=campaign,
            notice=_notice(notice),
        )
    return await _report_page(request, session, user, merchant, campaign, notice=_notice(notice))


async def _report_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant: Merchant,
    campaign: Campaign,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    figures = await report.campaign_report(
        session, merchant_id=merchant.id, campaign_id=campaign.id
    )
    return render(
        request,
        "campaigns/report.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "campaign": campaign,
            "r": figures,
            "chart": _chart(figures.series, figures.unit),
            "status_labels": status_labels(),
            "local": local,
            "notice": notice,
            "error": error,
        },
        status=status,
    )


def _chart(series: list[report.Point], unit: str) -> dict[str, Any]:
    pattern = "%m-%d %H:00" if unit == "hour" else "%Y-%m-%d"
    return {
        "labels": [p.at.astimezone(campaigns.CONSOLE_ZONE).strftime(pattern) for p in series],
        "sent": [p.sent for p in series],
        "delivered": [p.delivered for p in series],
        "clicked": [p.clicked for p in series],
        "converted": [p.converted for p in series],
        "names": {
            "sent": _("Sent"),
            "delivered": _("Delivered"),
            "clicked": _("Clicked"),
            "converted": _("Orders"),
        },
    }


@router.post(BASE + "/{campaign_id}")
async def update_campaign(
    request: Request,
    merchant_id: IdPath,
    campaign_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    name: FormName = "",
    channel: FormChannel = "sms",
    segment_id: FormSegment = "",
    template: FormTemplate = "",
    link_url: FormLink = "",
    action: FormAction = "save",
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await _merchant(session, merchant_id, user)
    campaign = await campaigns.get(session, merchant_id=merchant.id, campaign_id=campaign_id)
    form = _form(name, channel, segment_id, template, link_url)
    if action == "preview":
        return await _composer(request, session, user, merchant, form, campaign=campaign)
    spec = form.spec()
    try:
        await campaigns.update_draft(
            session,
            merchant_id=merchant.id,
            campaign_id=campaign.id,
            changes=dataclasses.asdict(spec),
        )
    except DomainError as exc:
        merchant = await _reset(session, user, merchant_id)
        campaign = await campaigns.get(session, merchant_id=merchant.id, campaign_id=campaign_id)
        return await _composer(
            request,
            session,
            user,
            merchant,
            form,
            campaign=campaign,
            error=message_of(exc),
            status=_status(exc),
        )
    return see_other(f"/console/{merchant.id}/campaigns/{campaign.id}?notice=saved")


async def _step(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    campaign_id: int,
    action: str,
    at: str = "",
) -> Response:
    merchant = await _merchant(session, merchant_id, user)
    try:
        if action in ("sending", "scheduled", "resumed"):  # SMS: the owner's (may_start)
            await campaigns.may_start(
                session, merchant_id=merchant.id, campaign_id=campaign_id, user=user
            )
        if action == "sending":
            await campaigns.send_now(session, merchant_id=merchant.id, campaign_id=campaign_id)
        elif action == "scheduled":
            await campaigns.schedule(
                session, merchant_id=merchant.id, campaign_id=campaign_id, at=_parse_local(at)
            )
        elif action == "cancelled":
            await campaigns.cancel(session, merchant_id=merchant.id, campaign_id=campaign_id)
        elif action == "paused":
            await campaigns.pause(session, merchant_id=merchant.id, campaign_id=campaign_id)
        else:
            await campaigns.resume(session, merchant_id=merchant.id, campaign_id=campaign_id)
    except DomainError as exc:
        if exc.status == 404:
            raise
        merchant = await _reset(session, user, merchant_id)
        campaign = await campaigns.get(session, merchant_id=merchant.id, campaign_id=campaign_id)
        if campaign.status == "draft":
            return await _composer(
                request,
                session,
                user,
                merchant,
                Form_.of(campaign),
                campaign=campaign,
                error=message_of(exc),
                status=_status(exc),
            )
        return await _report_page(
            request, session, user, merchant, campaign, error=message_of(exc), status=_status(exc)
        )
    return see_other(f"/console/{merchant.id}/campaigns/{campaign_id}?notice={action}")


def _parse_local(value: str) -> dt.datetime:
    """A datetime-local field ("2026-12-12T09:30") in console time, as aware UTC."""
    return parse_local(
        value,
        campaigns.CONSOLE_ZONE,
        error=DomainError(
            "invalid_campaign", "Pick the date and time to send (China time, UTC+8).", 422
        ),
    )


@router.post(BASE + "/{campaign_id}/send")
async def send_campaign(
    request: Request,
    merchant_id: IdPath,
    campaign_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    return await _step(request, session, user, merchant_id, campaign_id, "sending")


@router.post(BASE + "/{campaign_id}/schedule")
async def schedule_campaign(
    request: Request,
    merchant_id: IdPath,
    campaign_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    return await _step(request, session, user, merchant_id, campaign_id, "scheduled", at)


@router.post(BASE + "/{campaign_id}/cancel")
async def cancel_campaign(
    request: Request,
    merchant_id: IdPath,
    campaign_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    return await _step(request, session, user, merchant_id, campaign_id, "cancelled")


@router.post(BASE + "/{campaign_id}/pause")
async def pause_campaign(
    request: Request,
    merchant_id: IdPath,
    campaign_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    return await _step(request, session, user, merchant_id, campaign_id, "paused")


@router.post(BASE + "/{campaign_id}/resume")
async def resume_campaign(
    request: Request,
    merchant_id: IdPath,
    campaign_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    return await _step(request, session, user, merchant_id, campaign_id, "resumed")


@router.get("/console/{merchant_id}/marketing")
async def marketing_page(
    request: Request, merchant_id: IdPath, user: PageUser, session: Session
) -> Response:
    merchant = await _merchant(session, merchant_id, user)
    overview = await report.overview(session, merchant_id=merchant.id)
    return render(
        request,
        "campaigns/report_overview.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "o": overview,
            "tools": marketing_tools(),
            "chart": _chart(overview.series, "day")
            | {
                "names": {
                    "sent": _("Messages sent"),
                    "delivered": _("Delivered"),
                    "clicked": _("Clicks and scans"),
                    "converted": _("Orders"),
                }
            },
        },
    )
