from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.domain import mask_id_number
from mobimart.accounts.models import User
from mobimart.audit import service as audit
from mobimart.catalog import service as catalog
from mobimart.errors import DomainError
from mobimart.merchants import service as merchants
from mobimart.merchants.domain import EDITABLE, Decision, DocumentKind, KycStatus
from mobimart.merchants.models import Merchant
from mobimart.settings import get_settings
from mobimart.text import clean
from mobimart.web.deps import PageAdmin, PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Text = Annotated[str, Form(max_length=200)]
Csrf = Annotated[str, Form(max_length=200)]
QUEUE_PAGE = 20

NOTICES = {
    "submitted": "Submitted. We will text you when it is decided.",
    "uploaded": "Document uploaded.",
    "saved": "Saved.",
    "invited": "Invitation recorded: they join when they accept it under Sell.",
    "invitation_cancelled": "Invitation cancelled.",
    "joined": "You joined the team.",
    "declined": "Invitation declined.",
    "staff_removed": "Removed from the team.",
    "decided": "Decision recorded.",
}


def _notice(code: str) -> str | None:
    return _(NOTICES[code]) if code in NOTICES else None


async def _read_upload(upload: UploadFile | None) -> bytes:
    if upload is None or not upload.filename:
        return b""
    return await upload.read(get_settings().upload_max_bytes + 1)


# --- merchant console --------------------------------------------------------------------------


@router.get("/console")
async def console(request: Request, user: PageUser, session: Session, notice: str = "") -> Response:
    return render(
        request,
        "merchants/console.html",
        {
            "user": user,
            "tab": "console",
            "memberships": await merchants.my_merchants(session, user_id=user.id),
            "invitations": await merchants.my_invitations(session, user=user),
            "notice": _notice(notice),
        },
    )


def _apply_page(request: Request, user: User, *, status: int = 200, **ctx: object) -> Response:
    return render(
        request,
        "merchants/apply.html",
        {"user": user, "tab": "console", "max_mb": get_settings().upload_max_bytes // 2**20, **ctx},
        status=status,
    )


@router.get("/console/apply")
async def apply_form(request: Request, user: PageUser) -> Response:
    return _apply_page(request, user, form={})


@router.post("/console/apply")
async def apply(
    request: Request,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    name: Text,
    licence_number: Text,
    legal_rep_name: Text,
    legal_rep_id_number: Text,
    contact_phone: Text,
    licence_file: Annotated[UploadFile, File()],
    id_front_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    verify_csrf(request, csrf_token)
    application = merchants.Application(
        name=clean(name, 80),
        licence_number=clean(licence_number, 30),
        legal_rep_name=clean(legal_rep_name, 40),
        legal_rep_id_number=clean(legal_rep_id_number, 20),
        contact_phone=clean(contact_phone, 32),
    )
    form = {
        "name": application.name,
        "licence_number": application.licence_number,
        "legal_rep_name": application.legal_rep_name,
    }
    try:
        merchant = await merchants.apply(session, user=user, application=application)
    except DomainError as exc:
        return _apply_page(request, user, form=form, error=message_of(exc), status=exc.status)
    # The application exists from here on: an upload problem is reported on its own page,
    # where the merchant can upload again without retyping anything.
    try:
        uploads = [
            (DocumentKind.business_licence, licence_file),
            (DocumentKind.id_front, id_front_file),
        ]
        for kind, upload in uploads:
            data = await _read_upload(upload)
            if data or kind is DocumentKind.business_licence:
                await merchants.add_document(
                    session,
                    merchant=merchant,
                    user=user,
                    kind=kind,
                    filename=clean(upload.filename or "", 120) if upload else "",
                    data=data,
                )
        await merchants.submit(session, merchant=merchant, user=user)
    except DomainError as exc:
        return await _merchant_page(
            request, session, user, merchant.id, error=message_of(exc), status=exc.status
        )
    return see_other(f"/console/{merchant.id}", "submitted")


async def _merchant_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    *,
    status: int = 200,
    **ctx: object,
) -> Response:
    merchant, member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    shop_id = None
    if merchant.status == KycStatus.approved:
        shop_id = (await catalog.shop_for(session, merchant=merchant)).id
        await session.commit()
    return render(
        request,
        "merchants/merchant.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "role": member.role,
            "editable": merchant.status in EDITABLE,
            "id_masked": mask_id_number(merchant.legal_rep_id_number),
            "documents": await merchants.documents(session, merchant_id=merchant.id),
            "staff": await merchants.staff(session, merchant_id=merchant.id),
            "invitations": await merchants.invitations(session, merchant_id=merchant.id)
            if member.role == "owner"
            else [],
            "shop_id": shop_id,
            **ctx,
        },
        status=status,
    )


async def _console_action(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    action: Awaitable[object],
    notice: str,
) -> Response:
    """Run one console action; on a broken rule, show the merchant page with the message."""
    try:
        await action
    except DomainError as exc:
        # Whatever the action half-did is discarded; the rollback expires the signed-in user.
        await session.rollback()
        await session.refresh(user)
        return await _merchant_page(
            request, session, user, merchant_id, error=message_of(exc), status=exc.status
        )
    return see_other(f"/console/{merchant_id}", notice)


@router.get("/console/{merchant_id}")
async def merchant_page(
    request: Request, merchant_id: IdPath, user: PageUser, session: Session, notice: str = ""
) -> Response:
    return await _merchant_page(request, session, user, merchant_id, notice=_notice(notice))


@router.post("/console/{merchant_id}/application")
async def update_application(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    name: Text,
    licence_number: Text,
    legal_rep_name: Text,
    legal_rep_id_number: Text,
    contact_phone: Text,
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    application = merchants.Application(
        name=clean(name, 80),
        licence_number=clean(licence_number, 30),
        legal_rep_name=clean(legal_rep_name, 40),
        legal_rep_id_number=clean(legal_rep_id_number, 20),
        contact_phone=clean(contact_phone, 32),
    )
    return await _console_action(
        request,
        session,
        user,
        merchant_id,
        merchants.update_application(
            session, merchant=merchant, user=user, application=application
        ),
        "saved",
    )


@router.post("/console/{merchant_id}/documents")
async def upload_document(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    kind: Annotated[DocumentKind, Form()],
    file: Annotated[UploadFile, File()],
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    data = await _read_upload(file)
    return await _console_action(
        request,
        session,
        user,
        merchant_id,
        merchants.add_document(
            session,
            merchant=merchant,
            user=user,
            kind=kind,
            filename=clean(file.filename or "", 120),
            data=data,
        ),
        "uploaded",
    )


@router.post("/console/{merchant_id}/submit")
async def submit(
    request: Request, merchant_id: IdPath, user: PageUser, session: Session, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    return await _console_action(
        request,
        session,
        user,
        merchant_id,
        merchants.submit(session, merchant=merchant, user=user),
        "submitted",
    )


@router.post("/console/{merchant_id}/invitations")
async def invite_staff(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    phone: Text,
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    return await _console_action(
        request,
        session,
        user,
        merchant_id,
        merchants.invite_staff(session, merchant=merchant, actor=user, phone=clean(phone, 32)),
        "invited",
    )


@router.post("/console/{merchant_id}/invitations/{invitation_id}/cancel")
async def cancel_invitation(
    request: Request,
    merchant_id: IdPath,
    invitation_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await merchants.cancel_invitation(
        session, merchant=merchant, actor=user, invitation_id=invitation_id
    )
    return see_other(f"/console/{merchant_id}", "invitation_cancelled")


@router.post("/console/invitations/{invitation_id}/{answer}")
async def answer_invitation(
    request: Request,
    invitation_id: IdPath,
    answer: Literal["accept", "decline"],
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await merchants.answer_invitation(
        session, user=user, invitation_id=invitation_id, accept=answer == "accept"
    )
    if merchant is None:
        return see_other("/console", "declined")
    return see_other(f"/console/{merchant.id}", "joined")


@router.post("/console/{merchant_id}/staff/{member_id}/remove")
async def remove_staff(
    request: Request,
    merchant_id: IdPath,
    member_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await merchants.remove_staff(session, merchant=merchant, actor=user, member_id=member_id)
    return see_other(f"/console/{merchant_id}", "staff_removed")


# --- platform review ---------------------------------------------------------------------------


@router.get("/admin")
async def admin_home(admin: PageAdmin) -> Response:
    return see_other("/admin/kyc")


@router.get("/admin/kyc")
async def review_queue(
    request: Request,
    admin: PageAdmin,
    session: Session,
    status: KycStatus = KycStatus.pending,
    cursor: str | None = None,
) -> Response:
    params = page_params(cursor=cursor, limit=QUEUE_PAGE)
    rows = await merchants.review_queue(
        session, status=status, before_id=params.before_id, limit=params.fetch
    )
    applications, next_cursor = split_page(rows, params, key=lambda m: m.id)
    return render(
        request,
        "merchants/review_queue.html",
        {
            "user": admin,
            "tab": "admin",
            "status": status.value,
            "merchants": applications,
            "next_cursor": next_cursor,
        },
    )


async def _review_page(
    request: Request,
    session: AsyncSession,
    admin: User,
    merchant: Merchant,
    *,
    status: int = 200,
    **ctx: object,
) -> Response:
    return render(
        request,
        "merchants/review_detail.html",
        {
            "user": admin,
            "tab": "admin",
            "merchant": merchant,
            "documents": await merchants.documents(session, merchant_id=merchant.id),
            "history": await audit.list_entries(session, merchant_id=merchant.id, limit=50),
            **ctx,
        },
        status=status,
    )


@router.get("/admin/kyc/{merchant_id}")
async def review_detail(
    request: Request, merchant_id: IdPath, admin: PageAdmin, session: Session, notice: str = ""
) -> Response:
    merchant = await merchants.get(session, merchant_id=merchant_id)
    return await _review_page(request, session, admin, merchant, notice=_notice(notice))


@router.get("/admin/kyc/{merchant_id}/documents/{document_id}")
async def review_document(
    merchant_id: IdPath, document_id: IdPath, admin: PageAdmin, session: Session
) -> Response:
    doc, data = await merchants.read_document(
        session, merchant_id=merchant_id, document_id=document_id
    )
    # Served inline for the reviewer's eyes, never cached by a shared proxy.
    return Response(
        data, media_type=doc.content_type, headers={"Cache-Control": "private, no-store"}
    )


@router.post("/admin/kyc/{merchant_id}/decision")
async def decide(
    request: Request,
    merchant_id: IdPath,
    admin: PageAdmin,
    session: Session,
    csrf_token: Csrf,
    decision: Annotated[Decision, Form()],
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        await merchants.decide(
            session,
            merchant_id=merchant_id,
            admin=admin,
            decision=decision,
            reason=clean(reason, 1000),
        )
    except DomainError as exc:
        merchant = await merchants.get(session, merchant_id=merchant_id)
        return await _review_page(
            request, session, admin, merchant, error=message_of(exc), status=exc.status
        )
    return see_other(f"/admin/kyc/{merchant_id}", "decided")
