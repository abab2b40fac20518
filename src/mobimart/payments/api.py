"""Payments, the wallet, the gateway's notifications, refunds, merchant balances and payouts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse

from mobimart.infra import idempotency
from mobimart.infra.idempotency import IdempotencyKey
from mobimart.merchants import service as merchants
from mobimart.payments import domain, ledger
from mobimart.payments import service as payments
from mobimart.payments.models import LedgerEntry, LedgerTransaction, Refund
from mobimart.payments.schemas import (
    BalanceOut,
    CommissionIn,
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
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["payments"])


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
        return PaymentOut.of(payment, url)

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
    return PaymentOut.of(
        await payments.own_payment(session, user_id=user.id, payment_id=payment_id)
    )


@router.post("/payments/notify/sandbox", response_class=PlainTextResponse)
async def gateway_notification(request: Request, session: Session) -> PlainTextResponse:
    """The gateway's asynchronous notification (signed with its RSA key). Answered `success`
    once processed, so the gateway stops retrying; processed once however often it comes.
    A refusal is a problem+json like every other error: anything but `success` is a retry."""
    async with request.form(max_files=0, max_fields=30) as form:
        params = {k: v for k, v in form.items() if isinstance(v, str)}
    await payments.notified(session, params=params)
    return PlainTextResponse("success")


def _entry_out(row: tuple[LedgerEntry, LedgerTransaction]) -> WalletEntryOut:
    entry, transaction = row
    return WalletEntryOut(
        id=entry.id,
        kind=transaction.kind,
        amount_minor=entry.amount_minor,
        balance_after_minor=entry.balance_after_minor,
        created_at=entry.created_at,
    )


@router.get("/me/wallet")
async def wallet(
    user: CurrentUser, session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> WalletOut:
    currency = get_settings().default_currency
    rows = await ledger.entries(
        session, domain.wallet(user.id), currency, before=page.before_id, limit=page.fetch
    )
    listed = make_page(rows, page, _entry_out, key=lambda row: row[0].id)
    return WalletOut(
        currency=currency,
        balance_minor=await payments.wallet_balance(session, user_id=user.id),
        entries=listed.items,
        next_cursor=listed.next_cursor,
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
        return PaymentOut.of(payment, url)

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


@router.get("/merchants/{merchant_id}/ledger")
async def merchant_ledger(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    account: Annotated[Literal["available", "pending"], Query()] = "available",
) -> Page[WalletEntryOut]:
    """The merchant's payout ledger, newest first: settled orders and in-store payments (less
    commission), refunds and payouts on `available`; paid orders awaiting completion on
    `pending`."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await payments.merchant_entries(
        session, merchant_id=merchant_id, account=account, before=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, _entry_out, key=lambda row: row[0].id)


@router.get("/merchants/{merchant_id}/payouts")
async def merchant_payouts(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[PayoutOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await payments.payouts_of(
        session, merchant_id=merchant_id, before=page.before_id, limit=page.fetch
    )
    return make_page(
        rows, page, lambda p: PayoutOut.model_validate(p, from_attributes=True), key=lambda p: p.id
    )


@router.put("/admin/merchants/{merchant_id}/commission")
async def set_commission(
    merchant_id: IdPath, body: CommissionIn, admin: Admin, session: Session
) -> BalanceOut:
    """Set the platform's commission on a merchant's orders (basis points); audited."""
    merchant = await payments.set_commission(
        session,
        admin=admin,
        merchant_id=merchant_id,
        commission_bps=body.commission_bps,
        reason=body.reason,
    )
    return BalanceOut(
        currency=get_settings().default_currency,
        commission_bps=merchant.commission_bps,
        **await payments.merchant_balances(session, merchant_id=merchant_id),
    )
