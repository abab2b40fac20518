"""Automations in the merchant console: the flows with their runs counted, a form to make
one (trigger, subject, wait, a simple condition, action and its settings), pause, delete,
and one flow's runs. Plain forms: no script needed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.domain import MemberRole
from mobimart.accounts.models import User
from mobimart.campaigns import automations
from mobimart.errors import DomainError
from mobimart.merchants import service as merchants
from mobimart.promotions import service as promotions
from mobimart.web.deps import PageAdmin, PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Text = Annotated[str, Form(max_length=200)]
LongText = Annotated[str, Form(max_length=1000)]
Csrf = Annotated[str, Form(max_length=200)]
UNITS = {"minutes": 1, "hours": 60, "days": 24 * 60}
# The simple conditions the form offers (the API takes any segment rule list).
CONDITIONS = ("has_consent", "follows_shop", "bought_from_shop", "scanned_qr", "viewed_product")


def _notice(code: str) -> str:
    return {
        "created": _("Automation saved. It starts with the next matching event."),
        "paused": _("Paused: no new runs, waiting ones are skipped."),
        "resumed": _("Running again."),
        "deleted": _("Automation deleted."),
    }.get(code, "")


def _whole(text: str, what: str, maximum: int) -> int:
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 12 or int(value) > maximum:
        raise DomainError("invalid_automation", f"{what} must be a whole number.", 422)
    return int(value)


def form_spec(form: dict[str, str]) -> automations.Spec:
    """The console's form -> a Spec (the service checks the rest)."""
    trigger = form.get("trigger", "")
    subject_id = None
    subject = form.get("subject", "").strip()
    if subject:
        subject_trigger, _sep, raw_id = subject.partition(":")
        if subject_trigger != trigger or not (raw_id.isascii() and raw_id.isdigit()):
            raise DomainError(
                "invalid_automation", _("The subject you picked does not go with the trigger."), 422
            )
        subject_id = _whole(raw_id, "The subject", 2**31 - 1)
    wait = _whole(form.get("wait") or "0", "The wait", automations.MAX_WAIT_MINUTES)
    wait *= UNITS.get(form.get("wait_unit", "minutes"), 1)
    condition: list[dict[str, Any]] = []
    kind = form.get("cond_kind", "")
    if kind:
        if kind not in CONDITIONS:
            raise DomainError("invalid_automation", _("Pick a condition from the list."), 422)
        rule: dict[str, Any] = {"kind": kind}
        if kind == "has_consent":
            rule["channel"] = form.get("cond_channel", "sms")
        if kind in ("bought_from_shop", "scanned_qr", "viewed_product"):
            rule["days"] = form.get("cond_days", "") or "30"
        if form.get("cond_not"):
            rule["not"] = True
        condition.append(rule)
    action = form.get("action", "")
    config: dict[str, Any] = {
        "sms": {"text": form.get("sms_text", ""), "link": form.get("link", "")},
        "push": {
            "title": form.get("push_title", ""),
            "body": form.get("push_body", ""),
            "link": form.get("link", ""),
        },
        "coupon": {"promotion_id": form.get("promotion_id", ""), "link": form.get("link", "")},
        "points": {"points": form.get("points", "")},
    }.get(action, {})
    return automations.Spec(
        name=form.get("name", ""),
        trigger=trigger,
        action=action,
        action_config={k: v for k, v in config.items() if v != ""},
        trigger_subject_id=subject_id,
        wait_minutes=wait,
        condition=condition,
        once_per_person=bool(form.get("once_per_person")),
    )


@dataclass(frozen=True)
class _Scope:
    """Whose flows a page shows: a merchant's (its console) or the platform's (admin)."""

    merchant_id: int | None
    title: str
    base: str  # the list's path
    back: str  # where "←" goes
    back_label: str
    can_delete: bool
    tab: str
    by_owner: bool = True  # may start flows that spend (automations.SPENDING_ACTIONS)


async def _merchant(
    session: AsyncSession, user: User, merchant_id: int, *, owner: bool = False
) -> _Scope:
    if owner:  # deleting a flow and its history is the owner's call; staff can pause
        merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
        role = MemberRole.owner
    else:
        merchant, member = await merchants.membership(session, merchant_id=merchant_id, user=user)
        role = MemberRole(member.role)
    return _Scope(
        merchant.id,
        merchant.name,
        f"/console/{merchant.id}/automations",
        f"/console/{merchant.id}/marketing",
        _("Marketing"),
        role == MemberRole.owner,
        "console",
        role == MemberRole.owner,
    )


def _platform() -> _Scope:
    return _Scope(
        None, _("Platform"), "/admin/automations", "/admin/kyc", _("Admin"), True, "admin"
    )


async def _page(
    request: Request,
    session: AsyncSession,
    user: User,
    scope: _Scope,
    *,
    notice: str = "",
    error: str = "",
    form: dict[str, str] | None = None,
    cursor: str | None = None,
    status: int = 200,
) -> Response:
    params = page_params(cursor=cursor, limit=30)
    rows = await automations.listed(session, merchant_id=scope.merchant_id, page=params)
    items, next_cursor = split_page(rows, params, key=lambda a: a.id)
    coupons = [
        p
        for p in await promotions.listed(
            session, merchant_id=scope.merchant_id, after=None, limit=100
        )
        if p.code and p.active and p.total_uses != 1  # not the single-use copies it hands out
    ]
    return render(
        request,
        "campaigns/automation_list.html",
        {
            "user": user,
            "tab": scope.tab,
            "scope": scope,
            "items": items,
            "counts": await automations.run_counts(session, automation_ids=[a.id for a in items]),
            "next_cursor": next_cursor,
            "subjects": await automations.subjects(session, merchant_id=scope.merchant_id),
            "coupons": coupons,
            "notice": _notice(notice),
            "error": error,
            "form": form or {"once_per_person": "on", "wait_unit": "minutes"},
            "conditions": CONDITIONS,
        },
        status=status,
    )


async def _create(
    request: Request, session: AsyncSession, user: User, scope: _Scope, form: dict[str, str]
) -> Response:
    try:
        await automations.create(
            session, merchant_id=scope.merchant_id, spec=form_spec(form), by_owner=scope.by_owner
        )
    except DomainError as exc:  # refused before anything was written
        return await _page(
            request, session, user, scope, error=message_of(exc), form=form, status=exc.status
        )
    return see_other(scope.base, "created")


async def _set_active(
    session: AsyncSession, scope: _Scope, automation_id: int, active: str
) -> Response:
    on = active == "1"
    await automations.set_active(
        session,
        merchant_id=scope.merchant_id,
        automation_id=automation_id,
        active=on,
        by_owner=scope.by_owner,
    )
    return see_other(scope.base, "resumed" if on else "paused")


async def _delete(session: AsyncSession, scope: _Scope, automation_id: int) -> Response:
    await automations.delete_automation(
        session, merchant_id=scope.merchant_id, automation_id=automation_id
    )
    return see_other(scope.base, "deleted")


async def _runs_page(
    request: Request,
    session: AsyncSession,
    user: User,
    scope: _Scope,
    automation_id: int,
    cursor: str | None,
) -> Response:
    automation = await automations.get(
        session, merchant_id=scope.merchant_id, automation_id=automation_id
    )
    params = page_params(cursor=cursor, limit=50)
    rows = await automations.runs(
        session, merchant_id=scope.merchant_id, automation_id=automation.id, page=params
    )
    items, next_cursor = split_page(rows, params, key=lambda r: r.id)
    counts = await automations.run_counts(session, automation_ids=[automation.id])
    return render(
        request,
        "campaigns/automation_runs.html",
        {
            "user": user,
            "tab": scope.tab,
            "scope": scope,
            "automation": automation,
            "counts": counts[automation.id],
            "runs": items,
            "next_cursor": next_cursor,
        },
    )


Notice = Annotated[str, Query(max_length=20)]
Cursor = Annotated[str | None, Query(max_length=200)]


class FlowForm:
    """The create form's fields (all text: the service reads and checks them)."""

    def __init__(
        self,
        csrf_token: Csrf,
        name: Text = "",
        trigger: Text = "",
        subject: Text = "",
        wait: Text = "0",
        wait_unit: Text = "minutes",
        cond_kind: Text = "",
        cond_channel: Text = "",
        cond_days: Text = "",
        cond_not: Text = "",
        action: Text = "",
        sms_text: LongText = "",
        push_title: Text = "",
        push_body: LongText = "",
        promotion_id: Text = "",
        points: Text = "",
        link: Annotated[str, Form(max_length=500)] = "",
        once_per_person: Text = "",
    ) -> None:
        self.csrf_token = csrf_token
        self.fields = {
            "name": name,
            "trigger": trigger,
            "subject": subject,
            "wait": wait,
            "wait_unit": wait_unit,
            "cond_kind": cond_kind,
            "cond_channel": cond_channel,
            "cond_days": cond_days,
            "cond_not": cond_not,
            "action": action,
            "sms_text": sms_text,
            "push_title": push_title,
            "push_body": push_body,
            "promotion_id": promotion_id,
            "points": points,
            "link": link,
            "once_per_person": once_per_person,
        }


Flow = Annotated[FlowForm, Depends()]


# --- a merchant's console ----------------------------------------------------------------------


@router.get("/console/{merchant_id}/automations")
async def automations_page(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    notice: Notice = "",
    cursor: Cursor = None,
) -> Response:
    scope = await _merchant(session, user, merchant_id)
    return await _page(request, session, user, scope, notice=notice, cursor=cursor)


@router.post("/console/{merchant_id}/automations")
async def create_automation(
    request: Request, merchant_id: IdPath, user: PageUser, session: Session, form: Flow
) -> Response:
    verify_csrf(request, form.csrf_token)
    scope = await _merchant(session, user, merchant_id)
    return await _create(request, session, user, scope, form.fields)


@router.post("/console/{merchant_id}/automations/{automation_id}/active")
async def set_active(
    request: Request,
    merchant_id: IdPath,
    automation_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    active: Text = "",
) -> Response:
    verify_csrf(request, csrf_token)
    return await _set_active(
        session, await _merchant(session, user, merchant_id), automation_id, active
    )


@router.post("/console/{merchant_id}/automations/{automation_id}/delete")
async def delete_automation(
    request: Request,
    merchant_id: IdPath,
    automation_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    scope = await _merchant(session, user, merchant_id, owner=True)
    return await _delete(session, scope, automation_id)


@router.get("/console/{merchant_id}/automations/{automation_id}")
async def runs_page(
    request: Request,
    merchant_id: IdPath,
    automation_id: IdPath,
    user: PageUser,
    session: Session,
    cursor: Cursor = None,
) -> Response:
    scope = await _merchant(session, user, merchant_id)
    return await _runs_page(request, session, user, scope, automation_id, cursor)


# --- the platform's (admin) --------------------------------------------------------------------


@router.get("/admin/automations")
async def platform_page(
    request: Request, admin: PageAdmin, session: Session, notice: Notice = "", cursor: Cursor = None
) -> Response:
    return await _page(request, session, admin, _platform(), notice=notice, cursor=cursor)


@router.post("/admin/automations")
async def create_platform_automation(
    request: Request, admin: PageAdmin, session: Session, form: Flow
) -> Response:
    verify_csrf(request, form.csrf_token)
    return await _create(request, session, admin, _platform(), form.fields)


@router.post("/admin/automations/{platform_automation_id}/active")
async def set_platform_active(
    request: Request,
    platform_automation_id: IdPath,
    admin: PageAdmin,
    session: Session,
    csrf_token: Csrf,
    active: Text = "",
) -> Response:
    verify_csrf(request, csrf_token)
    return await _set_active(session, _platform(), platform_automation_id, active)


@router.post("/admin/automations/{platform_automation_id}/delete")
async def delete_platform_automation(
    request: Request,
    platform_automation_id: IdPath,
    admin: PageAdmin,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    return await _delete(session, _platform(), platform_automation_id)


@router.get("/admin/automations/{platform_automation_id}")
async def platform_runs_page(
    request: Request,
    platform_automation_id: IdPath,
    admin: PageAdmin,
    session: Session,
    cursor: Cursor = None,
) -> Response:
    return await _runs_page(request, session, admin, _platform(), platform_automation_id, cursor)
