"""The captive-portal pages (`/wifi/{token}`, opened by openNDS with its parameters) and the
management of portals in the merchant console and the admin area.

The portal works without JavaScript, cookies aside: many phones show it in a captive-network
mini-browser that runs no scripts. The gateway's parameters travel through the forms as
hidden fields and are checked again at every step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import domain as accounts_domain
from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.campaigns import events, wifi, wifi_fas
from mobimart.campaigns.models import WifiPortal
from mobimart.errors import DomainError
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings
from mobimart.text import clean
from mobimart.web.deps import OptionalPageUser, PageAdmin, PageUser, Session, client_ip
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Token = Annotated[str, Path(max_length=32)]
Text = Annotated[str, Form(max_length=200)]
Csrf = Annotated[str, Form(max_length=200)]
FasText = Annotated[str, Form(max_length=wifi_fas.MAX_FAS_LEN)]
# What openNDS may put in the portal's address, carried through the forms unchanged.
FAS_FIELDS = (
    "fas",
    "iv",
    "hid",
    "clientip",
    "gatewayname",
    "gatewayaddress",
    "redir",
    "status",
    "tok",
    "authaction",
)


def _fas_query(source: Mapping[str, str]) -> dict[str, str]:
    return {k: source[k][: wifi_fas.MAX_FAS_LEN] for k in FAS_FIELDS if source.get(k)}


def _fas_form(
    fas: FasText = "",
    iv: Text = "",
    hid: Text = "",
    clientip: Text = "",
    gatewayname: Text = "",
    gatewayaddress: Text = "",
    redir: FasText = "",
) -> dict[str, str]:
    """The gateway's parameters as the portal's forms carry them, in hidden fields."""
    return _fas_query(
        {
            "fas": fas,
            "iv": iv,
            "hid": hid,
            "clientip": clientip,
            "gatewayname": gatewayname,
            "gatewayaddress": gatewayaddress,
            "redir": redir,
        }
    )


FasForm = Annotated[dict[str, str], Depends(_fas_form)]


def _error_page(request: Request, message: str, *, status: int = 400) -> Response:
    return render(
        request, "campaigns/wifi_error.html", {"user": None, "message": message}, status=status
    )


async def _portal_page(
    request: Request,
    session: AsyncSession,
    portal: WifiPortal,
    template: str,
    fas_query: dict[str, str],
    *,
    status: int = 200,
    **ctx: object,
) -> Response:
    return render(
        request,
        template,
        {
            "user": None,
            "portal": portal,
            "fas_query": fas_query,
            "promotions": await wifi.current_promotions(session, portal=portal),
            **ctx,
        },
        status=status,
    )


def _checked(
    request: Request, portal: WifiPortal, fas_query: dict[str, str]
) -> wifi_fas.FasParams | Response:
    try:
        params = wifi_fas.parse(fas_query, portal.fas_key)
    except wifi_fas.FasError as exc:
        return _error_page(request, _(str(exc)))
    if isinstance(params, wifi_fas.AlreadyOnline):
        return render(
            request,
            "campaigns/wifi_error.html",
            {"user": None, "online": True, "portal": portal},
        )
    return params


@router.get("/wifi/{token}")
async def portal_page(request: Request, token: Token, session: Session) -> Response:
    try:
        portal = await wifi.by_token(session, token=token)
    except DomainError:
        return _error_page(request, _("This Wi-Fi sign-in page does not exist."), status=404)
    fas_query = _fas_query(request.query_params)
    checked = _checked(request, portal, fas_query)
    if isinstance(checked, Response):
        return checked
    return await _portal_page(request, session, portal, "campaigns/wifi.html", fas_query)


@router.post("/wifi/{token}/code")
async def send_code(
    request: Request,
    token: Token,
    session: Session,
    phone: Text,
    csrf_token: Csrf,
    fas_query: FasForm,
    marketing_sms: Annotated[bool, Form()] = False,
) -> Response:
    verify_csrf(request, csrf_token)
    portal = await wifi.by_token(session, token=token)
    checked = _checked(request, portal, fas_query)
    if isinstance(checked, Response):
        return checked
    try:
        e164 = accounts_domain.normalize_phone(clean(phone, 32), get_settings().default_region)
    except DomainError as exc:
        return await _portal_page(
            request,
            session,
            portal,
            "campaigns/wifi.html",
            fas_query,
            status=exc.status,
            error=message_of(exc),
            phone=clean(phone, 32),
            marketing_sms=marketing_sms,
        )
    try:
        await accounts.request_code(
            session, phone=e164, ip=client_ip(request), shared=wifi.otp_budget(portal, checked)
        )
    except DomainError as exc:  # too many codes: one may still be on its way
        return await _portal_page(
            request,
            session,
            portal,
            "campaigns/wifi_verify.html",
            fas_query,
            status=exc.status,
            error=message_of(exc),
            phone=e164,
            marketing_sms=marketing_sms,
        )
    return await _portal_page(
        request,
        session,
        portal,
        "campaigns/wifi_verify.html",
        fas_query,
        phone=e164,
        marketing_sms=marketing_sms,
    )


@router.post("/wifi/{token}/verify")
async def verify_code(
    request: Request,
    token: Token,
    session: Session,
    phone: Text,
    code: Text,
    csrf_token: Csrf,
    fas_query: FasForm,
    marketing_sms: Annotated[bool, Form()] = False,
) -> Response:
    verify_csrf(request, csrf_token)
    portal = await wifi.by_token(session, token=token)
    checked = _checked(request, portal, fas_query)
    if isinstance(checked, Response):
        return checked
    try:
        user = await accounts.verify_code(session, phone=clean(phone, 32), code=clean(code, 12))
    except DomainError as exc:
        return await _portal_page(
            request,
            session,
            portal,
            "campaigns/wifi_verify.html",
            fas_query,
            status=exc.status,
            error=message_of(exc),
            phone=clean(phone, 32),
            marketing_sms=marketing_sms,
        )
    await wifi.signed_up(
        session,
        portal=portal,
        user_id=user.id,
        marketing_sms=marketing_sms,
        device=events.device_class(request.headers.get("user-agent", "")),
    )
    # No session cookie here: the portal is plain http on an open network (see wifi.py).
    target = wifi_fas.auth_url(checked, portal.fas_key, landing=wifi.landing_url(portal))
    return RedirectResponse(target, status_code=303)


@router.get("/wifi/{token}/welcome")
async def welcome(
    request: Request, token: Token, session: Session, user: OptionalPageUser
) -> Response:
    """Where the gateway sends the browser once online, on the site's own (https) address:
    the place to sign in, which the portal itself does not do."""
    try:
        portal = await wifi.by_token(session, token=token)
    except DomainError:
        return _error_page(request, _("This Wi-Fi sign-in page does not exist."), status=404)
    return await _portal_page(
        request,
        session,
        portal,
        "campaigns/wifi_welcome.html",
        {},
        user=user,
        signin_url=f"/signin?next={quote(request.url.path, safe='')}",
    )


# --- management: the merchant console and the admin area ------------------------------------


def _notice(code: str) -> str:
    return {
        "created": _("Portal created. Put its address and key in the gateway's settings."),
        "deleted": _("Portal deleted."),
        "rotated": _("New key made: update faskey on the gateway."),
    }.get(code, "")


async def _manage_page(
    request: Request,
    session: AsyncSession,
    user: User,
    *,
    merchant_id: int | None,
    base: str,
    cursor: str | None,
    notice: str = "",
    error: str = "",
    status: int = 200,
    **ctx: object,
) -> Response:
    params = page_params(cursor=cursor, limit=20)
    rows = await wifi.listed(
        session, merchant_id=merchant_id, before=params.before_id, limit=params.fetch
    )
    portals, next_cursor = split_page(rows, params, key=lambda p: p.id)
    return render(
        request,
        "campaigns/wifi_manage.html",
        {
            "user": user,
            "tab": "admin" if merchant_id is None else "console",
            "base": base,
            "portals": portals,
            "next_cursor": next_cursor,
            "site": get_settings().base_url.rstrip("/"),
            "notice": _notice(notice),
            "error": error,
            **ctx,
        },
        status=status,
    )


@router.get("/console/{merchant_id}/wifi")
async def console_portals(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    cursor: str | None = None,
    notice: str = "",
) -> Response:
    # The page shows the gateway's shared key: owners only, as in the API.
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    return await _manage_page(
        request,
        session,
        user,
        merchant_id=merchant.id,
        base=f"/console/{merchant.id}/wifi",
        cursor=cursor,
        notice=notice,
        merchant=merchant,
    )


async def _create(
    request: Request,
    session: AsyncSession,
    user: User,
    *,
    merchant_id: int | None,
    base: str,
    name: str,
    session_minutes: str,
    merchant: Merchant | None = None,
) -> Response:
    try:
        minutes = int(session_minutes) if session_minutes.strip().isdigit() else -1
        await wifi.create(
            session, merchant_id=merchant_id, name=name, session_minutes=min(minutes, 10**6)
        )
    except DomainError as exc:
        return await _manage_page(
            request,
            session,
            user,
            merchant_id=merchant_id,
            base=base,
            cursor=None,
            error=message_of(exc),
            status=exc.status,
            form={"name": name, "session_minutes": session_minutes},
            merchant=merchant,
        )
    return see_other(base, "created")


@router.post("/console/{merchant_id}/wifi")
async def console_create(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    name: Text,
    csrf_token: Csrf,
    session_minutes: Text = "240",
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    return await _create(
        request,
        session,
        user,
        merchant_id=merchant.id,
        base=f"/console/{merchant.id}/wifi",
        name=name,
        session_minutes=session_minutes,
        merchant=merchant,
    )


@router.post("/console/{merchant_id}/wifi/{portal_id}/delete")
async def console_delete(
    request: Request,
    merchant_id: IdPath,
    portal_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await wifi.delete(session, portal_id=portal_id, merchant_id=merchant_id)
    return see_other(f"/console/{merchant_id}/wifi", "deleted")


@router.post("/console/{merchant_id}/wifi/{portal_id}/rotate-key")
async def console_rotate(
    request: Request,
    merchant_id: IdPath,
    portal_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await wifi.rotate_key(session, portal_id=portal_id, merchant_id=merchant_id)
    return see_other(f"/console/{merchant_id}/wifi", "rotated")


@router.get("/admin/wifi")
async def admin_portals(
    request: Request,
    admin: PageAdmin,
    session: Session,
    cursor: str | None = None,
    notice: str = "",
) -> Response:
    return await _manage_page(
        request, session, admin, merchant_id=None, base="/admin/wifi", cursor=cursor, notice=notice
    )


@router.post("/admin/wifi")
async def admin_create(
    request: Request,
    admin: PageAdmin,
    session: Session,
    name: Text,
    csrf_token: Csrf,
    session_minutes: Text = "240",
) -> Response:
    verify_csrf(request, csrf_token)
    return await _create(
        request,
        session,
        admin,
        merchant_id=None,
        base="/admin/wifi",
        name=name,
        session_minutes=session_minutes,
    )


@router.post("/admin/wifi/{portal_id}/delete")
async def admin_delete(
    request: Request, portal_id: IdPath, admin: PageAdmin, session: Session, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    await wifi.delete(session, portal_id=portal_id, merchant_id=None)
    return see_other("/admin/wifi", "deleted")


@router.post("/admin/wifi/{portal_id}/rotate-key")
async def admin_rotate(
    request: Request, portal_id: IdPath, admin: PageAdmin, session: Session, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    await wifi.rotate_key(session, portal_id=portal_id, merchant_id=None)
    return see_other("/admin/wifi", "rotated")
