"""Campaigns over the API: a merchant's staff author, estimate, schedule, send and read the
report of their shop's campaigns; platform admins do the same for the platform's own
(merchant_id null) under /admin/campaigns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import campaigns, report
from mobimart.campaigns.campaigns_schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    EstimateOut,
    OverviewOut,
    ReportOut,
    ScheduleIn,
)
from mobimart.infra import idempotency
from mobimart.infra.idempotency import IdempotencyKey
from mobimart.merchants import service as merchants
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["campaigns"])
Paging = Annotated[PageParams, Depends(page_params)]
MERCHANT = "/merchants/{merchant_id}/campaigns"
ADMIN = "/admin/campaigns"


async def _member(session: AsyncSession, merchant_id: IdPath, user: User) -> int:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    return merchant.id


async def _starter(session: AsyncSession, merchant_id: int, campaign_id: int, user: User) -> int:
    """Send, schedule and resume: SMS costs money, so only the owner (campaigns.may_start)."""
    merchant = await campaigns.may_start(
        session, merchant_id=merchant_id, campaign_id=campaign_id, user=user
    )
    return merchant.id


# --- shared bodies: scope None is the platform -----------------------------------------------


async def _list(session: AsyncSession, scope: int | None, page: PageParams) -> Page[CampaignOut]:
    rows = await campaigns.list_campaigns(session, merchant_id=scope, page=page)
    return make_page(rows, page, CampaignOut.of, key=lambda c: c.id)


async def _create(
    session: AsyncSession, scope: int | None, user: User, body: CampaignIn
) -> CampaignOut:
    campaign = await campaigns.create(session, merchant_id=scope, user_id=user.id, spec=body.spec())
    return CampaignOut.of(campaign)


async def _send(
    session: AsyncSession, scope: int | None, user: User, campaign_id: int, key: str | None
) -> JSONResponse:
    async def work() -> CampaignOut:
        campaign = await campaigns.send_now(session, merchant_id=scope, campaign_id=campaign_id)
        return CampaignOut.of(campaign)

    return await idempotency.run(
        session,
        user_id=user.id,
        scope=f"campaign-send:{campaign_id}",
        key=key,
        request={"campaign_id": campaign_id},
        work=work,
    )


# --- a merchant's campaigns ------------------------------------------------------------------


@router.get(MERCHANT)
async def list_campaigns(
    merchant_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[CampaignOut]:
    """Newest first."""
    return await _list(session, await _member(session, merchant_id, user), page)


@router.post(MERCHANT, status_code=201)
async def create_campaign(
    merchant_id: IdPath, body: CampaignIn, user: CurrentUser, session: Session
) -> CampaignOut:
    """A draft: checked (segment of this merchant, known variables, link) but not sent."""
    return await _create(session, await _member(session, merchant_id, user), user, body)


@router.get(MERCHANT + "/{campaign_id}")
async def get_campaign(
    merchant_id: IdPath, campaign_id: IdPath, user: CurrentUser, session: Session
) -> CampaignOut:
    scope = await _member(session, merchant_id, user)
    return CampaignOut.of(await campaigns.get(session, merchant_id=scope, campaign_id=campaign_id))


@router.patch(MERCHANT + "/{campaign_id}")
async def update_campaign(
    merchant_id: IdPath,
    campaign_id: IdPath,
    body: CampaignPatch,
    user: CurrentUser,
    session: Session,
) -> CampaignOut:
    """Drafts only (409 otherwise)."""
    scope = await _member(session, merchant_id, user)
    campaign = await campaigns.update_draft(
        session, merchant_id=scope, campaign_id=campaign_id, changes=body.changes()
    )
    return CampaignOut.of(campaign)


@router.get(MERCHANT + "/{campaign_id}/estimate")
async def estimate_campaign(
    merchant_id: IdPath, campaign_id: IdPath, user: CurrentUser, session: Session
) -> EstimateOut:
    """SMS: the segment's members × parts per message × the price per part. Push and inbox
    cost nothing."""
    scope = await _member(session, merchant_id, user)
    return EstimateOut.of(
        await campaigns.estimate(session, merchant_id=scope, campaign_id=campaign_id)
    )


@router.post(MERCHANT + "/{campaign_id}/send", response_model=CampaignOut)
async def send_campaign(
    merchant_id: IdPath,
    campaign_id: IdPath,
    user: CurrentUser,
    session: Session,
    idempotency_key: IdempotencyKey = None,
) -> object:
    """Start sending now. A retry with the same Idempotency-Key replays the answer."""
    scope = await _starter(session, merchant_id, campaign_id, user)
    return await _send(session, scope, user, campaign_id, idempotency_key)


@router.post(MERCHANT + "/{campaign_id}/schedule")
async def schedule_campaign(
    merchant_id: IdPath, campaign_id: IdPath, body: ScheduleIn, user: CurrentUser, session: Session
) -> CampaignOut:
    """Send at a future moment (a draft, or move a scheduled one)."""
    scope = await _starter(session, merchant_id, campaign_id, user)
    campaign = await campaigns.schedule(
        session, merchant_id=scope, campaign_id=campaign_id, at=body.at
    )
    return CampaignOut.of(campaign)


@router.post(MERCHANT + "/{campaign_id}/pause")
async def pause_campaign(
    merchant_id: IdPath, campaign_id: IdPath, user: CurrentUser, session: Session
) -> CampaignOut:
    scope = await _member(session, merchant_id, user)
    return CampaignOut.of(
        await campaigns.pause(session, merchant_id=scope, campaign_id=campaign_id)
    )


@router.post(MERCHANT + "/{campaign_id}/resume")
async def resume_campaign(
    merchant_id: IdPath, campaign_id: IdPath, user: CurrentUser, session: Session
) -> CampaignOut:
    scope = await _starter(session, merchant_id, campaign_id, user)
    return CampaignOut.of(
        await campaigns.resume(session, merchant_id=scope, campaign_id=campaign_id)
    )


@router.post(MERCHANT + "/{campaign_id}/cancel")
async def cancel_campaign(
    merchant_id: IdPath, campaign_id: IdPath, user: CurrentUser, session: Session
) -> CampaignOut:
    """Nothing more goes out; messages the gateway already took still arrive."""
    scope = await _member(session, merchant_id, user)
    return CampaignOut.of(
        await campaigns.cancel(session, merchant_id=scope, campaign_id=campaign_id)
    )


@router.get(MERCHANT + "/{campaign_id}/report")
async def campaign_report(
    merchant_id: IdPath, campaign_id: IdPath, user: CurrentUser, session: Session
) -> ReportOut:
    """Sent, delivered, failed, skipped by reason, clicked, converted, revenue, cost, return,
    and a series per hour (per day once the figures span over 3 days)."""
    scope = await _member(session, merchant_id, user)
    return ReportOut.of(
        await report.campaign_report(session, merchant_id=scope, campaign_id=campaign_id)
    )


@router.get("/merchants/{merchant_id}/marketing")
async def marketing_overview(
    merchant_id: IdPath, user: CurrentUser, session: Session
) -> OverviewOut:
    """Per-channel totals (all time), per-QR-code figures and the last 30 days per day."""
    scope = await _member(session, merchant_id, user)
    return OverviewOut.of(await report.overview(session, merchant_id=scope))


# --- the platform's campaigns ----------------------------------------------------------------


@router.get(ADMIN)
async def admin_list_campaigns(_admin: Admin, session: Session, page: Paging) -> Page[CampaignOut]:
    return await _list(session, None, page)


@router.post(ADMIN, status_code=201)
async def admin_create_campaign(body: CampaignIn, admin: Admin, session: Session) -> CampaignOut:
    """A platform draft: its segment must be a platform segment."""
    return await _create(session, None, admin, body)


@router.get(ADMIN + "/{platform_campaign_id}")
async def admin_get_campaign(
    platform_campaign_id: IdPath, _admin: Admin, session: Session
) -> CampaignOut:
    return CampaignOut.of(
        await campaigns.get(session, merchant_id=None, campaign_id=platform_campaign_id)
    )


@router.patch(ADMIN + "/{platform_campaign_id}")
async def admin_update_campaign(
    platform_campaign_id: IdPath, body: CampaignPatch, _admin: Admin, session: Session
) -> CampaignOut:
    campaign = await campaigns.update_draft(
        session, merchant_id=None, campaign_id=platform_campaign_id, changes=body.changes()
    )
    return CampaignOut.of(campaign)


@router.get(ADMIN + "/{platform_campaign_id}/estimate")
async def admin_estimate_campaign(
    platform_campaign_id: IdPath, _admin: Admin, session: Session
) -> EstimateOut:
    return EstimateOut.of(
        await campaigns.estimate(session, merchant_id=None, campaign_id=platform_campaign_id)
    )


@router.post(ADMIN + "/{platform_campaign_id}/send", response_model=CampaignOut)
async def admin_send_campaign(
    platform_campaign_id: IdPath,
    admin: Admin,
    session: Session,
    idempotency_key: IdempotencyKey = None,
) -> object:
    return await _send(session, None, admin, platform_campaign_id, idempotency_key)


@router.post(ADMIN + "/{platform_campaign_id}/schedule")
async def admin_schedule_campaign(
    platform_campaign_id: IdPath, body: ScheduleIn, _admin: Admin, session: Session
) -> CampaignOut:
    campaign = await campaigns.schedule(
        session, merchant_id=None, campaign_id=platform_campaign_id, at=body.at
    )
    return CampaignOut.of(campaign)


@router.post(ADMIN + "/{platform_campaign_id}/cancel")
async def admin_cancel_campaign(
    platform_campaign_id: IdPath, _admin: Admin, session: Session
) -> CampaignOut:
    return CampaignOut.of(
        await campaigns.cancel(session, merchant_id=None, campaign_id=platform_campaign_id)
    )


@router.get(ADMIN + "/{platform_campaign_id}/report")
async def admin_campaign_report(
    platform_campaign_id: IdPath, _admin: Admin, session: Session
) -> ReportOut:
    return ReportOut.of(
        await report.campaign_report(session, merchant_id=None, campaign_id=platform_campaign_id)
    )
