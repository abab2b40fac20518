"""QR codes in the merchant console (list, make, download, change, statistics) and the
public landing every code opens, `/q/<token>`: it counts the scan and shows the product or
sends the phone on to the shop, the draw or the page."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import qr, qr_render
from mobimart.campaigns.models import Campaign, Draw, QrCode
from mobimart.campaigns.qr_api import Copies, Scale, download
from mobimart.catalog import browse, feed
from mobimart.catalog.models import Product
from mobimart.errors import DomainError, NotFound
from mobimart.infra import qr as qrimage
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.web.deps import OptionalPageUser, PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import MAX_ID, IdPath
from mobimart.web.templating import render, verify_csrf
from mobimart.web.visitor import new_visitor, set_visitor, visitor_of

router = APIRouter()

Token = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
Csrf = Annotated[str, Form(max_length=200)]
Label = Annotated[str, Form(max_length=80)]
FormId = Annotated[int | None, Form(ge=1, le=MAX_ID)]
Kind = Annotated[Literal["product", "shop", "draw", "url"], Form()]
Url = Annotated[str, Form(max_length=500)]
Days = Annotated[int, Query(ge=1, le=qr.MAX_STATS_DAYS)]
PICK_LIMIT = 200  # products, draws and campaigns offered in the form's lists
STATS_WINDOWS = (7, 30, 90)


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _kind_labels() -> dict[str, str]:
    return {
        "product": _("A product"),
        "shop": _("The shop"),
        "draw": _("A lucky draw"),
        "url": _("A page or https address"),
    }


async def _choices(session: AsyncSession, merchant_id: int) -> dict[str, list[tuple[int, str]]]:
    """What the form's lists offer: the merchant's products, draws and campaigns."""

    async def pairs(stmt: Any) -> list[tuple[int, str]]:
        return [(row[0], row[1]) for row in await session.execute(stmt.limit(PICK_LIMIT))]

    return {
        "products": await pairs(
            select(Product.id, Product.name)
            .where(Product.merchant_id == merchant_id)
            .order_by(Product.id.desc())
        ),
        "draws": await pairs(
            select(Draw.id, Draw.name)
            .where(Draw.merchant_id == merchant_id)
            .order_by(Draw.id.desc())
        ),
        "campaigns": await pairs(
            select(Campaign.id, Campaign.name)
            .where(Campaign.merchant_id == merchant_id)
            .order_by(Campaign.id.desc())
        ),
    }


def _target(kind: str, product_id: int | None, draw_id: int | None, url: str) -> qr.Target:
    target_kind = qr.TargetKind(kind)
    picked = {qr.TargetKind.product: product_id, qr.TargetKind.draw: draw_id}.get(target_kind)
    return qr.Target(target_kind, picked, url or None)


# --- the list and the form -------------------------------------------------------------------


async def _list_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant: Merchant,
    *,
    archived: bool,
    status: int = 200,
    form: dict[str, Any] | None = None,
    error: str = "",
    notice: str = "",
) -> Response:
    params = page_params(request.query_params.get("cursor"))
    rows = await qr.listed(
        session,
        merchant_id=merchant.id,
        before=params.before_id,
        limit=params.fetch,
        archived=archived,
    )
    codes, next_cursor = split_page(rows, params, key=lambda c: c.id)
    base = f"/console/{merchant.id}/qr"
    return _private(
        render(
            request,
            "campaigns/qr_list.html",
            {
                "user": user,
                "tab": "console",
                "merchant": merchant,
                "codes": codes,
                "archived": archived,
                "next_cursor": next_cursor,
                "pager_base": base + ("?archived=1" if archived else ""),
                "base": base,
                "url_of": qr.url_of,
                "kinds": _kind_labels(),
                "choices": await _choices(session, merchant.id),
                "form": form or {"kind": "product", "dynamic": False},
                "error": error,
                "notice": notice,
                "copies": qr_render.PER_PAGE,
            },
            status=status,
        )
    )


@router.get("/console/{merchant_id}/qr")
async def qr_list(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    archived: bool = False,
    notice: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    return await _list_page(request, session, user, merchant, archived=archived, notice=notice)


@router.post("/console/{merchant_id}/qr")
async def qr_create(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    label: Label,
    kind: Kind,
    dynamic: Annotated[bool, Form()] = False,
    product_id: FormId = None,
    draw_id: FormId = None,
    url: Url = "",
    campaign_id: FormId = None,
) -> Response:
    verify_csrf(request, csrf_token)
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    spec = qr.Spec(label, _target(kind, product_id, draw_id, url), dynamic, campaign_id)
    try:
        merchants.require_approved(merchant)
        code = await qr.create(session, merchant_id=merchant.id, spec=spec)
    except DomainError as exc:
        form = {
            "label": label,
            "kind": kind,
            "dynamic": dynamic,
            "product_id": product_id,
            "draw_id": draw_id,
            "url": url,
            "campaign_id": campaign_id,
        }
        return await _list_page(
            request,
            session,
            user,
            merchant,
            archived=False,
            status=exc.status,
            form=form,
            error=message_of(exc),
        )
    return see_other(f"/console/{merchant.id}/qr/{code.id}", _("QR code made."))


# Before /qr/{qr_id}: "sheet" is not an id.
@router.get("/console/{merchant_id}/qr/sheet")
async def qr_sheet(
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    ids: Annotated[
        list[Annotated[int, Query(ge=1, le=MAX_ID)]] | None, Query(max_length=qr.SHEET_CODES)
    ] = None,
    copies: Copies = 1,
) -> Response:
    """The list's "print selected" button: the ticked codes on A4 sheets (none ticked: the
    newest 60 in use)."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    codes = await qr.several(session, merchant_id=merchant_id, qr_ids=ids)
    return await download(codes, fmt="pdf", copies=copies)


# --- one code --------------------------------------------------------------------------------


def _chart(stats: qr.Stats) -> dict[str, Any]:
    return {
        "labels": [d.day.isoformat() for d in stats.by_day],
        "scans": [d.scans for d in stats.by_day],
        "scansLabel": _("Scans"),
    }


@router.get("/console/{merchant_id}/qr/{qr_id}")
async def qr_detail(
    request: Request,
    merchant_id: IdPath,
    qr_id: IdPath,
    user: PageUser,
    session: Session,
    days: Days = qr.DEFAULT_STATS_DAYS,
    notice: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    return await _detail(request, session, user, merchant_id, qr_id, days=days, notice=notice)


async def _detail(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    qr_id: int,
    *,
    days: int = qr.DEFAULT_STATS_DAYS,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    code = await qr.get(session, merchant_id=merchant.id, qr_id=qr_id)
    stats = await qr.stats(session, merchant_id=merchant.id, qr_id=code.id, days=days)
    url = qr.url_of(code.token)
    return _private(
        render(
            request,
            "campaigns/qr_detail.html",
            {
                "user": user,
                "tab": "console",
                "merchant": merchant,
                "code": code,
                "url": url,
                "preview": qrimage.image(url, scale=5),
                "target": await _target_text(session, code),
                "stats": stats,
                "chart": _chart(stats),
                "windows": STATS_WINDOWS,
                "kinds": _kind_labels(),
                "choices": await _choices(session, merchant.id),
                "base": f"/console/{merchant.id}/qr/{code.id}",
                "copies": qr_render.PER_PAGE,
                "notice": notice,
                "error": error,
            },
            status=status,
        )
    )


async def _target_text(session: AsyncSession, code: QrCode) -> tuple[str, str]:
    """What the code opens, in words, and the link to it."""
    if code.target_kind == qr.TargetKind.product:
        name = await session.scalar(select(Product.name).where(Product.id == code.target_id))
        return _("Product: %(name)s") % {"name": name or "—"}, f"/products/{code.target_id}"
    if code.target_kind == qr.TargetKind.shop:
        return _("The shop's page"), f"/shops/{code.target_id}"
    if code.target_kind == qr.TargetKind.draw:
        name = await session.scalar(select(Draw.name).where(Draw.id == code.target_id))
        return _("Lucky draw: %(name)s") % {"name": name or "—"}, f"/draws/{code.target_id}"
    return _("Address: %(url)s") % {"url": code.target_url}, code.target_url or "/"


@router.post("/console/{merchant_id}/qr/{qr_id}")
async def qr_change(
    request: Request,
    merchant_id: IdPath,
    qr_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    label: Label,
    kind: Annotated[Literal["product", "shop", "draw", "url"] | None, Form()] = None,
    product_id: FormId = None,
    draw_id: FormId = None,
    url: Url = "",
    campaign_id: FormId = None,
) -> Response:
    """Relabel; a dynamic code's form also carries its target and campaign."""
    verify_csrf(request, csrf_token)
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    code = await qr.get(session, merchant_id=merchant.id, qr_id=qr_id)
    change = qr.Change(
        label=label,
        target=_target(kind, product_id, draw_id, url) if kind and code.dynamic else None,
        campaign_id=campaign_id,
        clear_campaign=code.dynamic and campaign_id is None,
    )
    try:
        await qr.change(session, merchant_id=merchant.id, qr_id=code.id, change=change)
    except DomainError as exc:
        return await _detail(
            request, session, user, merchant.id, qr_id, error=message_of(exc), status=exc.status
        )
    return see_other(f"/console/{merchant.id}/qr/{qr_id}", _("Saved."))


@router.post("/console/{merchant_id}/qr/{qr_id}/archive")
async def qr_archive(
    request: Request,
    merchant_id: IdPath,
    qr_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    await qr.archive(session, merchant_id=merchant_id, qr_id=qr_id)
    return see_other(
        f"/console/{merchant_id}/qr/{qr_id}", _("Archived: the code opens nothing now.")
    )


@router.get("/console/{merchant_id}/qr/{qr_id}/image")
async def qr_image(
    merchant_id: IdPath,
    qr_id: IdPath,
    user: PageUser,
    session: Session,
    fmt: Annotated[qr_render.Format, Query(alias="format")] = "png",
    scale: Scale = qr_render.DEFAULT_SCALE,
    copies: Copies = qr_render.PER_PAGE,
) -> Response:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    code = await qr.get(session, merchant_id=merchant_id, qr_id=qr_id)
    return await download([code], fmt=fmt, scale=scale, copies=copies)


# --- the landing -----------------------------------------------------------------------------


def _missing(request: Request, user: User | None) -> Response:
    return render(
        request,
        "campaigns/landing_missing.html",
        {"user": user, "tab": "home"},
        status=404,
    )


@router.get("/q/{token}")
async def landing(
    request: Request, token: Token, session: Session, user: OptionalPageUser
) -> Response:
    """What a phone opens when it scans a code. Counted once per opening, bots excepted."""
    try:
        code = await qr.by_token(session, token=token)
    except NotFound:
        return _missing(request, user)
    visitor = visitor_of(request)
    fresh = visitor is None
    visitor = visitor or new_visitor()
    event = await qr.scan(
        session,
        code=code,
        user_id=user.id if user else None,
        visitor=visitor,
        user_agent=request.headers.get("user-agent", ""),
        referrer=request.headers.get("referer", ""),
    )
    await session.commit()
    response = await _open(request, session, user, code)
    if fresh and event is not None:
        set_visitor(request, response, visitor)
    response.headers["Cache-Control"] = "private, no-store"  # every opening counts
    return response


async def _open(
    request: Request, session: AsyncSession, user: User | None, code: QrCode
) -> Response:
    if code.target_kind == qr.TargetKind.product and code.target_id is not None:
        try:
            product = browse.product(await feed.replica(session), product_id=code.target_id)
        except NotFound:
            return _missing(request, user)
        return render(
            request,
            "campaigns/landing.html",
            {
                "user": user,
                "tab": "home",
                "product": product,
                "buying": product.variants[0] if product.variants else None,
                "code": code,
                "location_url": f"/q/{code.token}/location",
            },
        )
    if code.target_kind == qr.TargetKind.shop:
        return RedirectResponse(f"/shops/{code.target_id}", status_code=302)
    if code.target_kind == qr.TargetKind.draw:
        return RedirectResponse(f"/draws/{code.target_id}?src=qr&qr={code.token}", status_code=302)
    return RedirectResponse(code.target_url or "/", status_code=302)


@router.post("/q/{token}/location", status_code=204)
async def landing_location(
    request: Request,
    token: Token,
    session: Session,
    user: OptionalPageUser,
    lat: Annotated[float, Form(ge=-90, le=90)],
    lng: Annotated[float, Form(ge=-180, le=180)],
) -> Response:
    """The landing page's "share my location": the position goes on this browser's scan of
    the code (made in the last 30 minutes). Only the visitor's own scan: the cookie is
    SameSite=Lax, so another site cannot post for them."""
    try:
        code = await qr.by_token(session, token=token)
    except NotFound:
        return Response(status_code=404)
    found = await qr.locate(
        session,
        code=code,
        visitor=visitor_of(request),
        user_id=user.id if user else None,
        lat=lat,
        lng=lng,
    )
    return Response(status_code=204 if found else 404)
