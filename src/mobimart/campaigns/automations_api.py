"""A merchant's automations: trigger -> wait -> condition -> action, and their runs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from mobimart.accounts.domain import MemberRole
from mobimart.accounts.models import User
from mobimart.campaigns import automations
from mobimart.campaigns.models import Automation, AutomationRun
from mobimart.merchants import service as merchants
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import MAX_ID, IdPath, InputModel

router = APIRouter(tags=["automations"])

Trigger = Literal["qr_scan", "geofence_enter", "wifi_signup", "cart_abandoned", "first_order"]
Action = Literal["sms", "push", "coupon", "points"]
RunStatus = Literal["waiting", "running", "done", "skipped"]
ConfigValue = Annotated[str, Field(max_length=500)] | Annotated[int, Field(ge=0, le=MAX_ID)]
RuleValue = Annotated[str, Field(max_length=40)] | Annotated[int, Field(ge=0, le=10**12)] | bool


class AutomationIn(InputModel):
    name: str = Field(min_length=1, max_length=80)
    trigger: Trigger
    trigger_subject_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="this QR code, geofence or Wi-Fi portal only"
    )
    wait_minutes: int = Field(default=0, ge=0, le=automations.MAX_WAIT_MINUTES)
    condition: list[dict[Annotated[str, Field(max_length=40)], RuleValue]] = Field(
        default_factory=list,
        max_length=20,
        description='segment rules, all must hold: [{"kind": "has_consent", "channel": "sms"}]',
    )
    action: Action
    action_config: dict[Annotated[str, Field(max_length=40)], ConfigValue] = Field(
        max_length=5,
        description='sms {"text", "link"}; push {"title", "body", "link"}; '
        'coupon {"promotion_id", "link"}; points {"points"}. Texts may use {name}, {shop}, {link}.',
    )
    once_per_person: bool = True
    active: bool = True


class AutomationPatch(InputModel):
    active: bool


class AutomationOut(BaseModel):
    id: int
    name: str
    trigger: str
    trigger_subject_id: int | None
    wait_minutes: int
    condition: list[dict[str, Any]]
    action: str
    action_config: dict[str, Any]
    once_per_person: bool
    active: bool
    created_at: dt.datetime
    runs: dict[str, int] = Field(description="runs by status")


class RunOut(BaseModel):
    id: int
    user_id: int
    status: str
    result: str
    due_at: dt.datetime
    created_at: dt.datetime
    done_at: dt.datetime | None


def automation_out(automation: Automation, counts: dict[str, int]) -> AutomationOut:
    return AutomationOut(
        id=automation.id,
        name=automation.name,
        trigger=automation.trigger,
        trigger_subject_id=automation.trigger_subject_id,
        wait_minutes=automation.wait_minutes,
        condition=automation.condition,
        action=automation.action,
        action_config=automation.action_config,
        once_per_person=automation.once_per_person,
        active=automation.active,
        created_at=automation.created_at,
        runs=counts,
    )


def run_out(run: AutomationRun) -> RunOut:
    return RunOut(
        id=run.id,
        user_id=run.user_id,
        status=run.status,
        result=run.result,
        due_at=run.due_at,
        created_at=run.created_at,
        done_at=run.done_at,
    )


def spec_of(body: AutomationIn) -> automations.Spec:
    return automations.Spec(
        name=body.name,
        trigger=body.trigger,
        action=body.action,
        action_config=body.action_config,
        trigger_subject_id=body.trigger_subject_id,
        wait_minutes=body.wait_minutes,
        condition=body.condition,
        once_per_person=body.once_per_person,
        active=body.active,
    )


async def _one(session: Session, automation: Automation) -> AutomationOut:
    counts = await automations.run_counts(session, automation_ids=[automation.id])
    return automation_out(automation, counts[automation.id])


# One implementation per operation for a merchant's flows and the platform's (merchant_id
# None); the routes below only differ in who may call them.


async def _list(session: Session, merchant_id: int | None, page: PageParams) -> Page[AutomationOut]:
    rows = await automations.listed(session, merchant_id=merchant_id, page=page)
    counts = await automations.run_counts(session, automation_ids=[a.id for a in rows])
    return make_page(rows, page, lambda a: automation_out(a, counts[a.id]), key=lambda a: a.id)


async def _create(
    session: Session, merchant_id: int | None, body: AutomationIn, *, by_owner: bool = True
) -> AutomationOut:
    automation = await automations.create(
        session, merchant_id=merchant_id, spec=spec_of(body), by_owner=by_owner
    )
    return await _one(session, automation)


async def _get(session: Session, merchant_id: int | None, automation_id: int) -> AutomationOut:
    automation = await automations.get(
        session, merchant_id=merchant_id, automation_id=automation_id
    )
    return await _one(session, automation)


async def _patch(
    session: Session,
    merchant_id: int | None,
    automation_id: int,
    body: AutomationPatch,
    *,
    by_owner: bool = True,
) -> AutomationOut:
    automation = await automations.set_active(
        session,
        merchant_id=merchant_id,
        automation_id=automation_id,
        active=body.active,
        by_owner=by_owner,
    )
    return await _one(session, automation)


async def _runs(
    session: Session,
    merchant_id: int | None,
    automation_id: int,
    page: PageParams,
    status: str | None,
) -> Page[RunOut]:
    rows = await automations.runs(
        session, merchant_id=merchant_id, automation_id=automation_id, page=page, status=status
    )
    return make_page(rows, page, run_out, key=lambda r: r.id)


async def _owner(session: Session, merchant_id: int, user: User) -> bool:
    """Whether a member is the owner; not a member: 404."""
    _merchant, member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    return member.role == MemberRole.owner


@router.get("/merchants/{merchant_id}/automations")
async def list_automations(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[AutomationOut]:
    """Newest first, each with its runs counted by status."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return await _list(session, merchant_id, page)


@router.post("/merchants/{merchant_id}/automations", status_code=201)
async def create_automation(
    merchant_id: IdPath, body: AutomationIn, user: CurrentUser, session: Session
) -> AutomationOut:
    """Active at once: from the next matching event, each person starts a run (once, unless
    `once_per_person` is false). A flow that texts or gives coupons or points is started by
    the owner only: staff may save it with `active` false."""
    by_owner = await _owner(session, merchant_id, user)
    return await _create(session, merchant_id, body, by_owner=by_owner)


@router.get("/merchants/{merchant_id}/automations/{automation_id}")
async def get_automation(
    merchant_id: IdPath, automation_id: IdPath, user: CurrentUser, session: Session
) -> AutomationOut:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return await _get(session, merchant_id, automation_id)


@router.patch("/merchants/{merchant_id}/automations/{automation_id}")
async def update_automation(
    merchant_id: IdPath,
    automation_id: IdPath,
    body: AutomationPatch,
    user: CurrentUser,
    session: Session,
) -> AutomationOut:
    """Pause or resume. A paused flow starts no runs; its waiting runs are skipped. Resuming
    a flow that texts or gives coupons or points is the owner's."""
    by_owner = await _owner(session, merchant_id, user)
    return await _patch(session, merchant_id, automation_id, body, by_owner=by_owner)


@router.delete("/merchants/{merchant_id}/automations/{automation_id}", status_code=204)
async def delete_automation(
    merchant_id: IdPath, automation_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    """The flow and its runs (what was sent stays sent). The owner's call: staff can pause."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await automations.delete_automation(
        session, merchant_id=merchant_id, automation_id=automation_id
    )
    return Response(status_code=204)


@router.get("/merchants/{merchant_id}/automations/{automation_id}/runs")
async def list_runs(
    merchant_id: IdPath,
    automation_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[RunStatus | None, Query()] = None,
) -> Page[RunOut]:
    """Newest first. Result `unknown` (after 10 minutes `running`) means the worker stopped
    while sending: the text or push was sent once or not at all, never twice."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return await _runs(session, merchant_id, automation_id, page, status)


# --- the platform's flows (the mall operator): they see every shop's events ----------------


@router.get("/admin/automations")
async def list_platform_automations(
    admin: Admin, session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> Page[AutomationOut]:
    return await _list(session, None, page)


@router.post("/admin/automations", status_code=201)
async def create_platform_automation(
    body: AutomationIn, admin: Admin, session: Session
) -> AutomationOut:
    """Like a merchant's; subjects are the platform's Wi-Fi portals, coupons its own."""
    return await _create(session, None, body)


@router.get("/admin/automations/{platform_automation_id}")
async def get_platform_automation(
    platform_automation_id: IdPath, admin: Admin, session: Session
) -> AutomationOut:
    return await _get(session, None, platform_automation_id)


@router.patch("/admin/automations/{platform_automation_id}")
async def update_platform_automation(
    platform_automation_id: IdPath, body: AutomationPatch, admin: Admin, session: Session
) -> AutomationOut:
    return await _patch(session, None, platform_automation_id, body)


@router.delete("/admin/automations/{platform_automation_id}", status_code=204)
async def delete_platform_automation(
    platform_automation_id: IdPath, admin: Admin, session: Session
) -> Response:
    await automations.delete_automation(
        session, merchant_id=None, automation_id=platform_automation_id
    )
    return Response(status_code=204)


@router.get("/admin/automations/{platform_automation_id}/runs")
async def list_platform_runs(
    platform_automation_id: IdPath,
    admin: Admin,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[RunStatus | None, Query()] = None,
) -> Page[RunOut]:
    return await _runs(session, None, platform_automation_id, page, status)
