"""Segment pages: a merchant's in the console (`/console/{merchant_id}/segments`) and the
platform's for admins (`/admin/segments`). The rule builder is a plain form, rows of a
condition kind with its parameters, so it works without script; "Count" shows how many people
the rules pick without saving."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import rules, segments
from mobimart.campaigns.models import Segment
from mobimart.campaigns.segments_api import export_response
from mobimart.errors import DomainError
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.web.deps import PageAdmin, PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Cursor = Annotated[str | None, Query(max_length=200)]
Notice = Annotated[str, Query(max_length=20)]
MEMBERS_SHOWN = 20
BLANK_ROWS = 1  # an empty row under the conditions to add one more without script


def _labels() -> dict[str, str]:
    return {
        "bought_in_category": _("Bought in category (id) in the last N days"),
        "bought_from_shop": _("Bought from the shop in the last N days"),
        "viewed_product": _("Viewed a product (any, or the id) in the last N days"),
        "scanned_qr": _("Scanned a QR code (any, or the id) in the last N days"),
        "joined_wifi": _("Joined through Wi-Fi portal (id)"),
        "in_geofence": _("Entered geofence (id) in the last N days"),
        "follows_brand": _("Follows brand (id)"),
        "follows_shop": _("Follows the shop"),
        "first_channel": _("First came through channel"),
        "has_consent": _("Has consent for channel"),
        "spent_at_least": _("Spent at least (minor units) in the last N days"),
        "clicked_campaign": _("Clicked a campaign's link (any, or the id) in the last N days"),
    }


def _notice(code: str) -> str | None:
    return {
        "saved": _("Segment saved and evaluated."),
        "deleted": _("Segment deleted."),
    }.get(code)


@dataclass(frozen=True)
class _Where:
    """Whose segments a page shows: a merchant's (console) or the platform's (admin)."""

    merchant: Merchant | None
    base: str
    tab: str

    @property
    def merchant_id(self) -> int | None:
        return self.merchant.id if self.merchant else None


async def _console(session: AsyncSession, merchant_id: int, user: User) -> _Where:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    return _Where(merchant, f"/console/{merchant_id}/segments", "console")


_ADMIN = _Where(None, "/admin/segments", "admin")


# --- the rule builder's rows ------------------------------------------------------------------

_ID_PARAM = {
    kind: next((p.name for p in spec.params if p.name.endswith("_id")), None)
    for kind, spec in rules.SPECS.items()
}


def _row_of(condition: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(condition.get("kind", ""))
    id_param = _ID_PARAM.get(kind)
    return {
        "kind": kind,
        "id": condition.get(id_param, "") if id_param else "",
        "days": condition.get("days", ""),
        "channel": condition.get("channel", ""),
        "amount": condition.get("amount_minor", ""),
        "not": bool(condition.get("not")),
    }


def _condition_of(row: Mapping[str, str]) -> dict[str, Any]:
    """A form row as the rule language's dict: only the kind's own parameters."""
    kind = row.get("kind", "")
    spec = rules.SPECS.get(kind)
    out: dict[str, Any] = {"kind": kind}
    if spec is None:
        return out  # rules.parse names the problem
    for param in spec.params:
        field = {"days": "days", "channel": "channel", "amount_minor": "amount"}.get(
            param.name, "id"
        )
        value = row.get(field, "").strip()
        if value:
            out[param.name] = value
    if row.get("not"):
        out["not"] = True
    return out


def _form_rows(form: Mapping[str, Any]) -> tuple[str, str, list[dict[str, str]]]:
    """name, match and the filled rows of a submitted builder (empty kinds are dropped)."""
    rows = []
    for n in range(rules.MAX_CONDITIONS + BLANK_ROWS):
        kind = str(form.get(f"kind_{n}", ""))[:40]
        if not kind:
            continue
        rows.append(
            {
                "kind": kind,
                **{
                    f: str(form.get(f"{f}_{n}", ""))[:40]
                    for f in ("id", "days", "channel", "amount")
                },
                "not": "1" if form.get(f"not_{n}") else "",
            }
        )
    return str(form.get("name", ""))[:200], str(form.get("match", "all"))[:3], rows


async def _form_page(
    request: Request,
    session: AsyncSession,
    user: User,
    where: _Where,
    *,
    segment: Segment | None,
    name: str,
    match: str,
    rows: list[dict[str, Any]],
    count: int | None = None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    shown = (
        []
        if segment is None
        else await segments.member_views(
            session, segment_id=segment.id, after_user_id=None, limit=MEMBERS_SHOWN
        )
    )
    return render(
        request,
        "campaigns/segment_form.html",
        {
            "user": user,
            "tab": where.tab,
            "merchant": where.merchant,
            "base": where.base,
            "segment": segment,
            "form": {"name": name, "match": match},
            "rows": rows + [_row_of({})] * BLANK_ROWS,
            "kinds": [(k, label) for k, label in _labels().items()],
            "channels": sorted(set(rules.CONSENT_CHANNELS) | set(rules.FIRST_CHANNELS)),
            "count": count,
            "error": error,
            "notice": notice,
            "members": shown,
        },
        status=status,
    )


async def _list_page(
    request: Request,
    session: AsyncSession,
    user: User,
    where: _Where,
    cursor: str | None,
    notice: str,
) -> Response:
    page = page_params(cursor, 20)
    rows = await segments.listed(
        session, merchant_id=where.merchant_id, before=page.before_id, limit=page.fetch
    )
    shown, next_cursor = split_page(rows, page, key=lambda r: r.id)
    return render(
        request,
        "campaigns/segment_list.html",
        {
            "user": user,
            "tab": where.tab,
            "merchant": where.merchant,
            "base": where.base,
            "segments": shown,
            "next_cursor": next_cursor,
            "notice": _notice(notice),
        },
    )


async def _submit(
    request: Request,
    session: AsyncSession,
    user: User,
    where: _Where,
    segment: Segment | None,
) -> Response:
    form = await request.form()
    verify_csrf(request, str(form.get("csrf_token", "")))
    name, match, rows = _form_rows(form)
    conditions = [_condition_of(r) for r in rows]
    action = form.get("action", "save")
    try:
        if action == "count":
            count = await segments.preview(
                session, merchant_id=where.merchant_id, match=match, conditions=conditions
            )
            return await _form_page(
                request,
                session,
                user,
                where,
                segment=segment,
                name=name,
                match=match,
                rows=rows,
                count=count,
            )
        if segment is None:
            segment = await segments.create(
                session,
                merchant_id=where.merchant_id,
                name=name,
                match=match,
                conditions=conditions,
            )
        else:
            segment = await segments.update_segment(
                session,
                segment_id=segment.id,
                merchant_id=where.merchant_id,
                name=name,
                match=match,
                conditions=conditions,
            )
    except DomainError as exc:
        if exc.status == 404:
            raise
        await session.rollback()
        for row in (user, where.merchant, segment):  # expired by the rollback
            if row is not None:
                await session.refresh(row)
        return await _form_page(
            request,
            session,
            user,
            where,
            segment=segment,
            name=name,
            match=match,
            rows=rows,
            error=message_of(exc),
            status=exc.status if exc.status < 500 else 422,
        )
    return see_other(f"{where.base}/{segment.id}?notice=saved")


async def _edit_page(
    request: Request, session: AsyncSession, user: User, where: _Where, segment_id: int, notice: str
) -> Response:
    segment = await segments.get(session, segment_id=segment_id, merchant_id=where.merchant_id)
    return await _form_page(
        request,
        session,
        user,
        where,
        segment=segment,
        name=segment.name,
        match=segment.match,
        rows=[_row_of(c) for c in segment.rules],
        notice=_notice(notice),
    )


async def _delete(
    request: Request, session: AsyncSession, where: _Where, segment_id: int
) -> Response:
    form = await request.form()
    verify_csrf(request, str(form.get("csrf_token", "")))
    await segments.delete_segment(session, segment_id=segment_id, merchant_id=where.merchant_id)
    return see_other(f"{where.base}?notice=deleted")


# --- merchant console -------------------------------------------------------------------------


@router.get("/console/{merchant_id}/segments")
async def console_list(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    cursor: Cursor = None,
    notice: Notice = "",
) -> Response:
    where = await _console(session, merchant_id, user)
    return await _list_page(request, session, user, where, cursor, notice)


@router.get("/console/{merchant_id}/segments/new")
async def console_new(
    request: Request, merchant_id: IdPath, user: PageUser, session: Session
) -> Response:
    where = await _console(session, merchant_id, user)
    return await _form_page(
        request,
        session,
        user,
        where,
        segment=None,
        name="",
        match="all",
        rows=[_row_of({"kind": "has_consent", "channel": "sms"})],
    )


@router.post("/console/{merchant_id}/segments")
async def console_create(
    request: Request, merchant_id: IdPath, user: PageUser, session: Session
) -> Response:
    where = await _console(session, merchant_id, user)
    return await _submit(request, session, user, where, None)


@router.get("/console/{merchant_id}/segments/{segment_id}")
async def console_edit(
    request: Request,
    merchant_id: IdPath,
    segment_id: IdPath,
    user: PageUser,
    session: Session,
    notice: Notice = "",
) -> Response:
    where = await _console(session, merchant_id, user)
    return await _edit_page(request, session, user, where, segment_id, notice)


@router.post("/console/{merchant_id}/segments/{segment_id}")
async def console_update(
    request: Request, merchant_id: IdPath, segment_id: IdPath, user: PageUser, session: Session
) -> Response:
    where = await _console(session, merchant_id, user)
    segment = await segments.get(session, segment_id=segment_id, merchant_id=merchant_id)
    return await _submit(request, session, user, where, segment)


@router.post("/console/{merchant_id}/segments/{segment_id}/delete")
async def console_delete(
    request: Request, merchant_id: IdPath, segment_id: IdPath, user: PageUser, session: Session
) -> Response:
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    where = await _console(session, merchant_id, user)
    return await _delete(request, session, where, segment_id)


@router.get("/console/{merchant_id}/segments/{segment_id}/export.csv")
async def console_export(
    request: Request, merchant_id: IdPath, segment_id: IdPath, user: PageUser, session: Session
) -> Response:
    where = await _console(session, merchant_id, user)
    segment = await segments.get(session, segment_id=segment_id, merchant_id=where.merchant_id)
    return export_response(request, segment=segment)


# --- platform (admin) -------------------------------------------------------------------------


@router.get("/admin/segments")
async def admin_list(
    request: Request, user: PageAdmin, session: Session, cursor: Cursor = None, notice: Notice = ""
) -> Response:
    return await _list_page(request, session, user, _ADMIN, cursor, notice)


@router.get("/admin/segments/new")
async def admin_new(request: Request, user: PageAdmin, session: Session) -> Response:
    return await _form_page(
        request,
        session,
        user,
        _ADMIN,
        segment=None,
        name="",
        match="all",
        rows=[_row_of({"kind": "has_consent", "channel": "sms"})],
    )


@router.post("/admin/segments")
async def admin_create(request: Request, user: PageAdmin, session: Session) -> Response:
    return await _submit(request, session, user, _ADMIN, None)


@router.get("/admin/segments/{segment_id}")
async def admin_edit(
    request: Request, segment_id: IdPath, user: PageAdmin, session: Session, notice: Notice = ""
) -> Response:
    return await _edit_page(request, session, user, _ADMIN, segment_id, notice)


@router.post("/admin/segments/{segment_id}")
async def admin_update(
    request: Request, segment_id: IdPath, user: PageAdmin, session: Session
) -> Response:
    segment = await segments.get(session, segment_id=segment_id, merchant_id=None)
    return await _submit(request, session, user, _ADMIN, segment)


@router.post("/admin/segments/{segment_id}/delete")
async def admin_delete(
    request: Request, segment_id: IdPath, user: PageAdmin, session: Session
) -> Response:
    return await _delete(request, session, _ADMIN, segment_id)


@router.get("/admin/segments/{segment_id}/export.csv")
async def admin_export(
    request: Request, segment_id: IdPath, user: PageAdmin, session: Session
) -> Response:
    segment = await segments.get(session, segment_id=segment_id, merchant_id=None)
    return export_response(request, segment=segment)
