from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import domain, privacy
from mobimart.accounts import service as accounts
from mobimart.campaigns import events
from mobimart.errors import DomainError, NotFound
from mobimart.infra.sms.models import SmsMessage
from mobimart.notifications import push
from mobimart.settings import get_settings
from mobimart.text import clean
from mobimart.web import i18n
from mobimart.web.deps import (
    SESSION_COOKIE,
    OptionalPageUser,
    PageToken,
    PageUser,
    Session,
    client_ip,
)
from mobimart.web.forms import message_of, safe_next, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.templating import render, verify_csrf
from mobimart.web.visitor import visitor_of

router = APIRouter()
_LOOPBACK = {"127.0.0.1", "::1"}
Text = Annotated[str, Form(max_length=200)]
Csrf = Annotated[str, Form(max_length=200)]

NOTICES = {
    "saved": "Saved.",
    "signed_out": "You are signed out.",
    "deleted": "Your account was deleted.",
    "verified": "Your real name is verified.",
}


def _dev_outbox_enabled(request: Request) -> bool:
    """The outbox shows codes: only outside production, with the outbox backend, and only to
    a browser on this machine."""
    settings = get_settings()
    return (
        not settings.is_production
        and settings.sms_backend == "outbox"
        and client_ip(request) in _LOOPBACK
    )


def _signin_page(request: Request, *, next: str, status: int = 200, **ctx: object) -> Response:
    return render(
        request,
        "accounts/signin.html",
        {
            "next": next,
            "tab": "me",
            "user": None,
            "dev_outbox": _dev_outbox_enabled(request),
            **ctx,
        },
        status=status,
    )


def _verify_page(
    request: Request, *, phone: str, next: str, status: int = 200, **ctx: object
) -> Response:
    return render(
        request,
        "accounts/verify.html",
        {
            "phone": phone,
            "next": next,
            "tab": "me",
            "user": None,
            "dev_outbox": _dev_outbox_enabled(request),
            **ctx,
        },
        status=status,
    )


async def _claim_visitor(request: Request, session: AsyncSession, user_id: int) -> None:
    """Marketing: what this browser did before signing in (a QR scan, a short-link click)
    becomes the person's, so the order they place next is credited to it. Committed with the
    session token."""
    visitor = visitor_of(request)
    if visitor is not None:
        await events.claim_visitor(session, visitor=visitor, user_id=user_id)


def _signed_in(request: Request, token: str, target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=get_settings().session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/signin")
async def signin_form(request: Request, user: OptionalPageUser, next: str = "/me") -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _signin_page(request, next=safe_next(next))


@router.post("/signin")
async def send_code(
    request: Request, session: Session, phone: Text, csrf_token: Csrf, next: Text = "/me"
) -> Response:
    verify_csrf(request, csrf_token)
    target = safe_next(next)
    try:
        e164 = domain.normalize_phone(clean(phone, 32), get_settings().default_region)
    except DomainError as exc:
        return _signin_page(
            request, next=target, phone=clean(phone, 32), error=message_of(exc), status=exc.status
        )
    try:
        await accounts.request_code(session, phone=e164, ip=client_ip(request))
    except DomainError as exc:
        # A code may already be on its way: let them type it, with the message.
        return _verify_page(
            request, phone=e164, next=target, error=message_of(exc), status=exc.status
        )
    return _verify_page(request, phone=e164, next=target)


@router.post("/signin/verify")
async def verify_code(
    request: Request,
    session: Session,
    phone: Text,
    code: Text,
    csrf_token: Csrf,
    next: Text = "/me",
    marketing_sms: Annotated[bool, Form()] = False,
) -> Response:
    verify_csrf(request, csrf_token)
    target = safe_next(next)
    try:
        user = await accounts.verify_code(session, phone=clean(phone, 32), code=clean(code, 12))
    except DomainError as exc:
        return _verify_page(
            request, phone=clean(phone, 32), next=target, error=message_of(exc), status=exc.status
        )
    if marketing_sms:
        await privacy.set_consent(
            session, user_id=user.id, channel=domain.Channel.sms, granted=True, source="signup"
        )
    await _claim_visitor(request, session, user.id)
    token, _row = await accounts.issue_token(
        session, user=user, kind="session", label=request.headers.get("user-agent", "")[:80]
    )
    return _signed_in(request, token, target)


@router.post("/signin/password")
async def password_signin(
    request: Request,
    session: Session,
    phone: Text,
    password: Annotated[str, Form(max_length=128)],
    csrf_token: Csrf,
    next: Text = "/me",
) -> Response:
    verify_csrf(request, csrf_token)
    target = safe_next(next)
    try:
        user = await accounts.password_sign_in(
            session, phone=clean(phone, 32), password=password, ip=client_ip(request)
        )
    except DomainError as exc:
        return _signin_page(request, next=target, error=message_of(exc), status=exc.status)
    await _claim_visitor(request, session, user.id)
    token, _row = await accounts.issue_token(
        session, user=user, kind="session", label=request.headers.get("user-agent", "")[:80]
    )
    return _signed_in(request, token, target)


@router.post("/signout")
async def signout(request: Request, session: Session, csrf_token: Csrf) -> Response:
    verify_csrf(request, csrf_token)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            user, row = await accounts.authenticate(session, token=token, kind="session")
            await accounts.revoke_token(session, user_id=user.id, token_id=row.id)
        except DomainError:
            pass  # already expired or revoked: signing out succeeds anyway
    response = see_other("/signin", "signed_out")
    response.delete_cookie(SESSION_COOKIE)
    return response


async def _me_page(
    request: Request, user: PageUser, session: Session, *, status: int = 200, **ctx: object
) -> Response:
    return render(
        request,
        "accounts/me.html",
        {
            "user": user,
            "tab": "me",
            "consents": await privacy.current_consents(session, user_id=user.id),
            "push": await push.me_section(session, user_id=user.id),  # Web Push devices
            "threshold": get_settings().realname_required_above_minor,
            "id_masked": domain.mask_id_number(user.id_number) if user.id_number else "",
            **ctx,
        },
        status=status,
    )


@router.get("/me")
async def me(request: Request, user: PageUser, session: Session, notice: str = "") -> Response:
    return await _me_page(
        request, user, session, notice=_(NOTICES[notice]) if notice in NOTICES else None
    )


async def _me_with_error(
    request: Request, user: PageUser, session: Session, exc: DomainError
) -> Response:
    return await _me_page(request, user, session, status=exc.status, error=message_of(exc))


@router.post("/me/profile")
async def update_profile(
    request: Request, user: PageUser, session: Session, display_name: Text, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        await accounts.rename(session, user=user, display_name=display_name)
    except DomainError as exc:
        return await _me_with_error(request, user, session, exc)
    return see_other("/me", "saved")


@router.post("/me/consents")
async def set_consent(
    request: Request,
    user: PageUser,
    session: Session,
    channel: Annotated[domain.Channel, Form()],
    granted: Annotated[bool, Form()],
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    await privacy.set_consent(
        session, user_id=user.id, channel=channel, granted=granted, source="me_page"
    )
    return see_other("/me#consents", None)


@router.post("/me/password")
async def set_password(
    request: Request,
    user: PageUser,
    current: PageToken,
    session: Session,
    password: Annotated[str, Form(max_length=128)],
    csrf_token: Csrf,
    current_password: Annotated[str | None, Form(max_length=128)] = None,
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        await accounts.set_password(
            session,
            user=user,
            password=password,
            current_password=current_password,
            keep_token_id=current.id,
        )
    except DomainError as exc:
        return await _me_with_error(request, user, session, exc)
    return see_other("/me", "saved")


@router.post("/me/real-name")
async def real_name(
    request: Request,
    user: PageUser,
    session: Session,
    name: Text,
    id_number: Text,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        await privacy.verify_real_name(
            session, user=user, name=clean(name, 40), id_number=clean(id_number, 20)
        )
    except DomainError as exc:
        return await _me_with_error(request, user, session, exc)
    return see_other("/me", "verified")


@router.get("/me/export.json")
async def export(user: PageUser, session: Session) -> Response:
    data = await privacy.export_data(session, user=user)
    return JSONResponse(
        data, headers={"Content-Disposition": 'attachment; filename="mobimart-my-data.json"'}
    )


@router.post("/me/delete")
async def delete(
    request: Request,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    if confirm != "yes":
        return await _me_with_error(
            request,
            user,
            session,
            DomainError("confirm_required", "Tick the box to confirm the deletion.", 422),
        )
    await privacy.delete_account(session, user=user)
    response = see_other("/signin", "deleted")
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
async def switch_language(code: str, next: str = "/") -> Response:
    if code not in i18n.LOCALES:
        raise NotFound("Language")
    response = RedirectResponse(safe_next(next, "/"), status_code=303)
    response.set_cookie(i18n.LANG_COOKIE, code, max_age=365 * 24 * 3600, samesite="lax")
    return response


@router.get("/dev/outbox")
async def dev_outbox(request: Request, session: Session, user: OptionalPageUser) -> Response:
    if not _dev_outbox_enabled(request):
        raise NotFound("Page")
    rows = await session.scalars(select(SmsMessage).order_by(SmsMessage.id.desc()).limit(20))
    return render(request, "accounts/outbox.html", {"messages": list(rows), "user": user})
