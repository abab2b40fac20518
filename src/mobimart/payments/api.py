"""Payments, the wallet, the gateway's notifications, refunds, merchant balances and payouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from mobimart.infra import idempotency
from mobimart.infra.idempotency import IdempotencyKey
from mobimart.merchants import service as merchants
from mobimart.payments import domain, ledger
from mobimart.payments import service as payments
from mobimart.payments.models import Payment, Refund
from mobimart.payments.schemas import (
    BalanceOut,
    PayIn,
    PaymentOut,
    PayoutIn,
    PayoutOut,
    RefundIn,
    RefundOut,
    TopUpIn,
    WalletEntryOut,
    WalletOut,
)
from mobimart.settings import get_settings
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import PageParams, encode_cursor, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["payments"])


def _payment_out(payment: Payment, redirect_url: str | None = None) -> PaymentOut:
    out = PaymentOut.model_validate(payment, from_attributes=True)
    out.redirect_url = redirect_url
    return out


@router.post("/payments", status_code=201, response_model=PaymentOut)
async def pay(
    body: PayIn, user: CurrentUser, session: Session, key: IdempotencyKey = None
) -> object:
    """Pay your orders from the wallet (done at once) or at the gateway (open
    `redirect_url`; the orders are paid when the gateway's notification arrives)."""

    async def work() -> PaymentOut:
        payment, url = await payments.pay(
            session,
            payer=user,
            order_ids=body.order_ids,
            method=body.method,
            return_url=body.return_url,
        )
        return _payment_out(payment, url)

    return await idempotency.run(
        session,
        user_id=user.id,
        scope="POST /payments",
        key=key,
        request=body,
        work=work,
        status=201,
    )


@router.get("/payments/{payment_id}")
async def get_payment(payment_id: IdPath, user: CurrentUser, session: Session) -> PaymentOut:
    return _payment_out(await payments.own_payment(session, user_id=user.id, payment_id=payment_id))


@router.post("/payments/notify/sandbox", response_class=PlainTextResponse)
async def gateway_notification(request: Request, session: Session) -> PlainTextResponse:
    """The gateway's asynchronous notification (signed with its RSA key). Answered `success`
    once processed, so the gateway stops retrying; processed once however often it comes.
    A refusal is a problem+json like every other error: anything but `success` is a retry."""
    async with request.form(max_files=0, max_fields=30) as form:
        params = {k: v for k, v in form.items() if isinstance(v, str)}
    await payments.notified(session, params=params)
    return PlainTextResponse("success")


@router.get("/me/wallet")
async def wallet(
    user: CurrentUser, session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> WalletOut:
    currency = get_settings().default_currency
    rows = await ledger.entries(
        session, domain.wallet(user.id), currency, before=page.before_id, limit=page.fetch
    )
    items = rows[: page.limit]
    return WalletOut(
        currency=currency,
        balance_minor=await payments.wallet_balance(session, user_id=user.id),
        entries=[
            WalletEntryOut(
                id=e.id,
                kind=t.kind,
                amount_minor=e.amount_minor,
                balance_after_minor=e.balance_after_minor,
                created_at=e.created_at,
            )
            for e, t in items
        ],
        next_cursor=encode_cursor(items[-1][0].id) if len(rows) > page.limit and items else None,
    )


@router.post("/me/wallet/top-ups", status_code=201, response_model=PaymentOut)
async def top_up(
    body: TopUpIn, user: CurrentUser, session: Session, key: IdempotencyKey = None
) -> object:
    """Add money to the wallet through the gateway: open `redirect_url` and confirm there."""

    async def work() -> PaymentOut:
        payment, url = await payments.start_top_up(
            session, user=user, amount_minor=body.amount_minor, return_url=body.return_url
        )
        return _payment_out(payment, url)

    return await idempotency.run(
        session,
        user_id=user.id,
        scope="POST /me/wallet/top-ups",
        key=key,
        request=body,
        work=work,
        status=201,
    )


# --- merchants -------------------------------------------------------------------------------


def _refund_out(row: Refund) -> RefundOut:
    return RefundOut.model_validate(row, from_attributes=True)


@router.post(
    "/merchants/{merchant_id}/orders/{order_id}/refunds", status_code=201, response_model=RefundOut
)
async def refund_order(
    merchant_id: IdPath,
    order_id: IdPath,
    body: RefundIn,
    user: CurrentUser,
    session: Session,
    key: IdempotencyKey = None,
) -> object:
    """Refund all that is left of an order, or `amount_minor` of it, to the way it was paid."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)

    async def work() -> RefundOut:
        row = await payments.refund(
            session,
            merchant_id=merchant_id,
            order_id=order_id,
            amount_minor=body.amount_minor,
            reason=body.reason,
            actor=user,
        )
        return _refund_out(row)

    return await idempotency.run(
        session,
        user_id=user.id,
        scope=f"POST /merchants/{merchant_id}/orders/{order_id}/refunds",
        key=key,
        request=body,
        work=work,
        status=201,
    )


@router.get("/merchants/{merchant_id}/balance")
async def merchant_balance(merchant_id: IdPath, user: CurrentUser, session: Session) -> BalanceOut:
    """Money from paid orders not yet completed (pending) and what can be paid out."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    balances = await payments.merchant_balances(session, merchant_id=merchant_id)
    return BalanceOut(
        currency=get_settings().default_currency,
        commission_bps=merchant.commission_bps,
        **balances,
    )


@router.post("/merchants/{merchant_id}/payouts", status_code=201, response_model=PayoutOut)
async def payout(
    merchant_id: IdPath,
    body: PayoutIn,
    user: CurrentUser,
    session: Session,
    key: IdempotencyKey = None,
) -> object:
    """Pay out available money to the merchant's bank account (owners only)."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)

    async def work() -> PayoutOut:
        row = await payments.request_payout(
            session, merchant_id=merchant_id, amount_minor=body.amount_minor, actor=user
        )
        return PayoutOut.model_validate(row, from_attributes=True)

    return await idempotency.run(
        session,
        user_id=user.id,
        scope=f"POST /merchants/{merchant_id}/payouts",
        key=key,
        request=body,
        work=work,
        status=201,
    )
