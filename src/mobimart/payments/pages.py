"""Face-to-face payment pages (the customer's payment code, the shop's QR and its till) and
pay-for-me pages (the link a buyer sends, the page the friend pays on)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.db import utcnow
from mobimart.errors import DomainError, NotFound
from mobimart.infra import idempotency
from mobimart.infra import qr as qrimage
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.payments import instore, share
from mobimart.payments import service as payments
from mobimart.payments.models import Payment
from mobimart.text import clean, parse_amount
from mobimart.web.deps import OptionalPageUser, PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import MAX_ID, IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
Text = Annotated[str, Form(max_length=200)]
Token = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def _private(response: Response) -> Response:
    """Codes and links are for one person's screen: never kept by a cache or shared proxy."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


async def _balance(session: AsyncSession, user: User | None) -> int | None:
    return None if user is None else await payments.wallet_balance(session, user_id=user.id)


async def _forget(session: AsyncSession, user: User) -> None:
    """After a refused payment: drop what it half did; the rollback expires the signed-in user."""
    await session.rollback()
    await session.refresh(user)


# --- the customer pays the shop's QR ---------------------------------------------------------


async def _collection_page(
    request: Request,
    session: AsyncSession,
    user: User | None,
    token: str,
    *,
    status: int = 200,
    **ctx: object,
) -> Response:
    view = await instore.collection_by_token(session, token=token)
    paid_by_me = False
    if view.collection.payment_id is not None and user is not None:
        payment = await session.get(Payment, view.collection.payment_id)
        paid_by_me = payment is not None and payment.payer_id == user.id
    response = render(
        request,
        "payments/collection.html",
        {
            "user": user,
            "tab": "me",
            "view": view,
            "c": view.collection,
            "paid_by_me": paid_by_me,
            "balance": await _balance(session, user),
            "signin_next": request.url.path,
            **ctx,
        },
        status=status,
    )
    return _private(response)


@router.get("/pay/c/{token}")
async def collection_page(
    request: Request, token: Token, user: OptionalPageUser, session: Session
) -> Response:
    return await _collection_page(request, session, user, token)


@router.post("/pay/c/{token}")
async def pay_collection(
    request: Request,
    token: Token,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    amount_minor: Annotated[int, Form(ge=1, le=100_000_000)],
) -> Response:
    verify_csrf(request, csrf_token)
    view = await instore.collection_by_token(session, token=token)
    try:
        await instore.pay_collection(
            session, payer=user, collection_id=view.collection.id, amount_minor=amount_minor
        )
    except DomainError as exc:
        await _forget(session, user)
        return await _collection_page(
            request, session, user, token, error=message_of(exc), status=exc.status
        )
    return see_other(request.url.path)


# --- the friend pays a shared order ----------------------------------------------------------


async def _shared_page(
    request: Request,
    session: AsyncSession,
    user: User | None,
    token: str,
    *,
    status: int = 200,
    **ctx: object,
) -> Response:
    found = await share.shared_order(session, token=token)
    response = render(
        request,
        "payments/shared_order.html",
        {
            "user": user,
            "tab": "me",
            "found": found,
            "o": found.order,
            "balance": await _balance(session, user),
            "signin_next": request.url.path,
            **ctx,
        },
        status=status,
    )
    return _private(response)


@router.get("/pay/s/{token}")
async def shared_order_page(
    request: Request, token: Token, user: OptionalPageUser, session: Session
) -> Response:
    return await _shared_page(request, session, user, token)


@router.post("/pay/s/{token}")
async def pay_shared_order(
    request: Request, token: Token, user: PageUser, session: Session, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        payment, _url = await share.pay_shared(session, payer=user, token=token, method="wallet")
    except DomainError as exc:
        await _forget(session, user)
        return await _shared_page(
            request, session, user, token, error=message_of(exc), status=exc.status
        )
    # The link died with the payment: the answer is this page, not a redirect back to it.
    return render(
        request, "payments/shared_paid.html", {"user": user, "tab": "me", "payment": payment}
    )


@router.post("/pay/s")
async def make_share_link(
    request: Request,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    order_id: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> Response:
    """The buyer's "ask a friend to pay" button on an unpaid order (a form field `order_id`)."""
    verify_csrf(request, csrf_token)
    token, expires_at = await share.create_link(session, user=user, order_id=order_id)
    url = share.share_url(token)
    response = render(
        request,
        "payments/share_link.html",
        {
            "user": user,
            "tab": "me",
            "url": url,
            "qr": qrimage.image(url, scale=5),
            "expires_at": expires_at,
            "order_id": order_id,
        },
    )
    return _private(response)


# --- the customer's payment code -------------------------------------------------------------


@router.get("/me/paycode")
async def paycode(request: Request, user: PageUser, session: Session) -> Response:
    code, _row = await instore.issue_code(session, user=user)
    response = render(
        request,
        "payments/paycode.html",
        {
            "user": user,
            "tab": "me",
            "code": code,
            "grouped": " ".join(code[i : i + 4] for i in range(0, len(code), 4)),
            "qr": qrimage.image(code, scale=8),
            "seconds": int(instore.CODE_TTL.total_seconds()),
            "balance": await _balance(session, user),
            "limit": instore.CODE_LIMIT,
        },
    )
    return _private(response)


@router.get("/me/paycode/status")
async def paycode_status(request: Request, user: PageUser, session: Session) -> Response:
    """The newest code's state, as a fragment the payment-code page polls."""
    row = await instore.latest_code(session, user_id=user.id)
    payment, shop = None, ""
    if row is not None and row.payment_id is not None:
        payment = await session.get(Payment, row.payment_id)
        merchant = await session.get(Merchant, payment.merchant_id) if payment else None
        shop = await instore.shop_name(session, merchant) if merchant else ""
    context = {"payment": payment, "shop": shop}
    return _private(render(request, "payments/_paycode_status.html", context))


# --- the shop's till -------------------------------------------------------------------------


async def _collect_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    *,
    collection_id: int | None = None,
    charged_id: int | None = None,
    status: int = 200,
    **ctx: object,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    view = charged = None
    seconds = 0
    if collection_id is not None:
        view = await instore.merchant_collection(
            session, merchant_id=merchant_id, collection_id=collection_id
        )
        seconds = max(0, int((view.collection.expires_at - utcnow()).total_seconds()))
    if charged_id is not None:
        charged = await session.get(Payment, charged_id)
        if charged is None or charged.merchant_id != merchant_id:
            raise NotFound("Payment")
    response = render(
        request,
        "payments/collect.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "view": view,
            "qr": qrimage.image(view.url) if view else None,
            "seconds": seconds,
            "charged": charged,
            "limit": instore.CODE_LIMIT,
            **ctx,
        },
        status=status,
    )
    return _private(response)


@router.get("/console/{merchant_id}/collect")
async def collect_page(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    c: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    charged: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    return await _collect_page(
        request, session, user, merchant_id, collection_id=c, charged_id=charged
    )


@router.post("/console/{merchant_id}/collect")
async def make_collection(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    amount: Text,
    note: Text = "",
) -> Response:
    verify_csrf(request, csrf_token)
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    try:
        view = await instore.create_collection(
            session, merchant=merchant, actor=user, amount_minor=parse_amount(amount), note=note
        )
    except DomainError as exc:
        await _forget(session, user)
        return await _collect_page(
            request,
            session,
            user,
            merchant_id,
            qr_form={"amount": clean(amount, 20), "note": clean(note, 80)},
            error=message_of(exc),
            status=exc.status,
        )
    return see_other(f"/console/{merchant_id}/collect?c={view.collection.id}")


@router.get("/console/{merchant_id}/collect/{collection_id}/status")
async def collection_status(
    request: Request, merchant_id: IdPath, collection_id: IdPath, user: PageUser, session: Session
) -> Response:
    """The QR's state, as a fragment the till page polls."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    view = await instore.merchant_collection(
        session, merchant_id=merchant_id, collection_id=collection_id
    )
    return _private(render(request, "payments/_collection_status.html", {"view": view}))


@router.post("/console/{merchant_id}/collect/charge")
async def charge_code(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    code: Text,
    amount: Text,
    note: Text = "",
) -> Response:
    verify_csrf(request, csrf_token)
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    try:
        payment = await instore.charge_code(
            session,
            merchant=merchant,
            actor=user,
            code=code,
            amount_minor=parse_amount(amount),
            note=note,
        )
    except DomainError as exc:
        await _forget(session, user)
        return await _collect_page(
            request,
            session,
            user,
            merchant_id,
            # The code is not put back in the form: it is the customer's, and short-lived.
            code_form={"amount": clean(amount, 20), "note": clean(note, 80)},
            error=message_of(exc),
            status=exc.status,
        )
    return see_other(f"/console/{merchant_id}/collect?charged={payment.id}")


# --- the merchant's money ------------------------------------------------------------------


async def _money_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    *,
    cursor: str | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    merchant, member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    params = page_params(cursor=cursor, limit=20)
    rows = await payments.merchant_entries(
        session,
        merchant_id=merchant.id,
        account="available",
        before=params.before_id,
        limit=params.fetch,
    )
    entries, next_cursor = split_page(rows, params, key=lambda row: row[0].id)
    income = await payments.daily_income(session, merchant_id=merchant.id)
    return render(
        request,
        "payments/money.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "is_owner": member.role == "owner",
            "balances": await payments.merchant_balances(session, merchant_id=merchant.id),
            "income": income,
            "income_max": max((amount for _, amount in income), default=0),
            "entries": entries,
            "next_cursor": next_cursor,
            "request_key": secrets.token_urlsafe(16),
            "notice": notice,
            "error": error,
        },
        status=status,
    )


@router.get("/console/{merchant_id}/money")
async def money_page(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    notice: str = "",
) -> Response:
    shown = _("Payout requested.") if notice == "payout" else ""
    return await _money_page(request, session, user, merchant_id, cursor=cursor, notice=shown)


@router.post("/console/{merchant_id}/payouts")
async def request_payout(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    amount: Annotated[str, Form(max_length=20)],
    request_key: Annotated[str, Form(min_length=16, max_length=64)],
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    try:
        amount_minor = parse_amount(amount)

        async def work() -> dict[str, int]:
            payout = await payments.request_payout(
                session, merchant_id=merchant_id, amount_minor=amount_minor, actor=user
            )
            return {"payout_id": payout.id}

        # The form's own key: sent twice (a double tap, a reload), it pays out once.
        await idempotency.run(
            session,
            user_id=user.id,
            scope=f"page payout {merchant_id}",
            key=request_key,
            request={"amount_minor": amount_minor},
            work=work,
        )
    except DomainError as exc:
        await _forget(session, user)
        return await _money_page(
            request, session, user, merchant_id, error=message_of(exc), status=exc.status
        )
    return see_other(f"/console/{merchant_id}/money", "payout")
