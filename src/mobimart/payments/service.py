"""Paying: wallets, the external gateway, refunds, and merchants' settlement and payouts.

Every movement posts to the ledger in the same transaction as the state change it stands
for (an order paid, a refund made), and each such change is a conditional UPDATE, so a
retried or parallel request can never charge, refund or settle twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import privacy
from mobimart.accounts.models import User
from mobimart.audit import service as audit
from mobimart.campaigns import events as marketing
from mobimart.checkout import service as checkout
from mobimart.checkout.domain import REFUNDABLE, Status
from mobimart.checkout.models import Order
from mobimart.db import utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.infra import http
from mobimart.infra.payments.gateway import Gateway, load_or_create_keypair
from mobimart.infra.payments.sandbox import SandboxGateway
from mobimart.merchants.models import Merchant
from mobimart.notifications import service as notifications
from mobimart.payments import domain, ledger
from mobimart.payments.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    Payout,
    Refund,
)
from mobimart.settings import get_settings
from mobimart.webhooks import service as webhooks

NOTIFY_PATH = "/api/v1/payments/notify/sandbox"
log = logging.getLogger(__name__)
MAX_PAYMENT = 10_000_000  # ¥100,000: above it, a bank transfer, not a phone


# --- the gateway -----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _keys(directory: Path) -> tuple[object, object, object, object]:
    ours = load_or_create_keypair(directory, "mobimart")
    provider = load_or_create_keypair(directory, "sandbox-provider")
    return ours[0], ours[1], provider[0], provider[1]


def sandbox_keys() -> tuple[object, object, object, object]:
    """(our private, our public, provider private, provider public)."""
    return _keys(get_settings().keys_dir)


def gateway() -> Gateway:
    settings = get_settings()
    if settings.payment_gateway == "none":
        raise DomainError(
            "no_gateway", "Card and bank payments are not set up here; pay from your wallet.", 422
        )
    ours, _, _, provider_public = sandbox_keys()
    return SandboxGateway(
        base_url=settings.gateway_url or settings.base_url + "/sandbox-gateway",
        app_id=settings.gateway_app_id,
        private_key=ours,  # type: ignore[arg-type]
        provider_public_key=provider_public,  # type: ignore[arg-type]
        client_factory=http.client,
    )


# --- paying orders ---------------------------------------------------------------------------


async def _payable(session: AsyncSession, *, order_ids: Sequence[int]) -> list[Order]:
    orders = list(
        await session.scalars(select(Order).where(Order.id.in_(order_ids)).order_by(Order.id))
    )
    if len(orders) != len(set(order_ids)) or not orders:
        raise NotFound("Order")
    if any(o.status != Status.pending_payment for o in orders):
        raise Conflict("not_payable", "Only unpaid orders can be paid; this one has moved on.")
    if len({o.currency for o in orders}) != 1:
        raise DomainError("mixed_currencies", "Pay orders in different currencies apart.", 422)
    return orders


async def _mark_paid(session: AsyncSession, *, orders: Sequence[Order], payment: Payment) -> bool:
    """All the orders paid by this payment, or none (the caller rolls back)."""
    now = utcnow()
    for order in orders:
        moved = await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == Status.pending_payment.value)
            .values(status=Status.paid.value, paid_at=now, payment_id=payment.id, share_hash=None)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            return False
    for order in orders:
        await notifications.order_update(session, order=order, event="paid")
        await marketing.order_paid(session, order=order)
        await webhooks.emit(
            session,
            merchant_id=order.merchant_id,
            event="order.paid",
            data={
                "order": order.number,
                "total_minor": order.total_minor,
                "currency": order.currency,
            },
        )
    return True


def _parts(orders: Sequence[Order]) -> dict[int, int]:
    parts: dict[int, int] = defaultdict(int)
    for order in orders:
        parts[order.merchant_id] += order.total_minor
    return dict(parts)


async def pay_with_wallet(
    session: AsyncSession, *, payer: User, orders: Sequence[Order]
) -> Payment:
    """Pay orders from the payer's wallet at once: the balance is checked by the ledger's
    conditional UPDATE, the orders by theirs; all or nothing."""
    currency = orders[0].currency
    payment = Payment(
        trade_no=domain.trade_no(),
        purpose="orders",
        payer_id=payer.id,
        order_ids=[o.id for o in orders],
        method="wallet",
        amount_minor=sum(o.total_minor for o in orders),
        currency=currency,
        status="succeeded",
        succeeded_at=utcnow(),
    )
    session.add(payment)
    await session.flush()
    if payment.amount_minor > 0:
        await ledger.post(
            session,
            kind="payment",
            reference=f"payment:{payment.id}",
            currency=currency,
            legs=domain.pay(_parts(orders), method="wallet", payer_id=payer.id),
        )
    if not await _mark_paid(session, orders=orders, payment=payment):
        raise Conflict("not_payable", "An order was paid or cancelled meanwhile.")
    await session.commit()
    return payment


async def start_gateway_payment(
    session: AsyncSession, *, payer: User, orders: Sequence[Order], return_url: str
) -> tuple[Payment, str]:
    """A pending payment and the provider's page to send the payer to."""
    provider = gateway()
    payment = Payment(
        trade_no=domain.trade_no(),
        purpose="orders",
        payer_id=payer.id,
        order_ids=[o.id for o in orders],
        method="gateway",
        gateway=provider.name,
        amount_minor=sum(o.total_minor for o in orders),
        currency=orders[0].currency,
    )
    session.add(payment)
    await session.commit()
    url = provider.checkout_url(
        trade_no=payment.trade_no,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        subject=", ".join(o.number for o in orders),
        notify_url=get_settings().base_url + NOTIFY_PATH,
        return_url=return_url,
    )
    return payment, url


async def pay(
    session: AsyncSession,
    *,
    payer: User,
    order_ids: Sequence[int],
    method: str,
    return_url: str = "",
    shared: bool = False,
) -> tuple[Payment, str | None]:
    """Pay orders: the payer's own, or (with `shared`) ones a friend's link opened."""
    orders = await _payable(session, order_ids=order_ids)
    if not shared and any(o.user_id != payer.id for o in orders):
        raise NotFound("Order")
    if method == "wallet" or sum(o.total_minor for o in orders) == 0:
        # Nothing to collect (a 100 % promotion with free shipping) needs no provider.
        return await pay_with_wallet(session, payer=payer, orders=orders), None
    if method == "gateway":
        return await start_gateway_payment(
            session, payer=payer, orders=orders, return_url=return_url or get_settings().base_url
        )
    raise DomainError("invalid_method", "Pay by wallet or gateway.", 422)


async def notified(session: AsyncSession, *, params: Mapping[str, str]) -> Payment:
    """The provider says a payment went through: verified, then processed once however many
    times it is sent. Money that arrives for orders no longer payable goes straight back."""
    note = gateway().parse_notification(params)
    payment = await session.scalar(select(Payment).where(Payment.trade_no == note.trade_no))
    if payment is None:
        raise NotFound("Payment")
    if note.amount_minor != payment.amount_minor or note.currency != payment.currency:
        raise DomainError("amount_mismatch", "The notified amount is not the payment's.", 400)
    moved = await session.execute(
        update(Payment)
        .where(Payment.id == payment.id, Payment.status == "pending")
        .values(status="succeeded", succeeded_at=utcnow(), gateway_trade_no=note.gateway_trade_no)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        return payment  # seen before: acknowledge again, change nothing
    if payment.purpose == "top_up":
        await ledger.post(
            session,
            kind="top_up",
            reference=f"payment:{payment.id}",
            currency=payment.currency,
            legs=domain.top_up(payment.amount_minor, user_id=payment.payer_id),
        )
        await session.commit()
        return payment
    orders = list(
        await session.scalars(
            select(Order).where(Order.id.in_(payment.order_ids)).order_by(Order.id)
        )
    )
    try:
        async with session.begin_nested():
            if not await _mark_paid(session, orders=orders, payment=payment):
                raise _NotPayable()
    except _NotPayable:
        # Paid another way or cancelled meanwhile: the money goes back to the payer through
        # the provider and never reaches a merchant's account.
        back = Refund(
            refund_no=domain.trade_no(),
            payment_id=payment.id,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            reason="the orders were no longer payable",
            status="pending",
        )
        session.add(back)
        payment.refunded_minor = payment.amount_minor
        await session.commit()
        await send_refund(session, refund_id=back.id)
        return payment
    await ledger.post(
        session,
        kind="payment",
        reference=f"payment:{payment.id}",
        currency=payment.currency,
        legs=domain.pay(_parts(orders), method="gateway", payer_id=payment.payer_id),
    )
    await session.commit()
    return payment


class _NotPayable(Exception):
    pass


# --- wallet ----------------------------------------------------------------------------------


async def wallet_balance(
    session: AsyncSession, *, user_id: int, currency: str | None = None
) -> int:
    return await ledger.balance(
        session, domain.wallet(user_id), currency or get_settings().default_currency
    )


async def start_top_up(
    session: AsyncSession, *, user: User, amount_minor: int, return_url: str
) -> tuple[Payment, str]:
    currency = get_settings().default_currency
    if not 100 <= amount_minor <= MAX_PAYMENT:
        raise DomainError("invalid_amount", "Top up between ¥1 and ¥100,000.", 422)
    balance = await wallet_balance(session, user_id=user.id, currency=currency)
    # Top-ups still open count too: two at once must not carry a wallet past the limit.
    opening = await session.scalar(
        select(func.coalesce(func.sum(Payment.amount_minor), 0)).where(
            Payment.payer_id == user.id,
            Payment.purpose == "top_up",
            Payment.status == "pending",
            Payment.created_at >= utcnow() - dt.timedelta(days=1),
        )
    )
    after = balance + int(opening or 0) + amount_minor
    if privacy.realname_required(after) and user.realname_verified_at is None:
        raise DomainError(
            "realname_required",
            "Verify your real name before keeping this much in your wallet.",
            403,
        )
    provider = gateway()
    payment = Payment(
        trade_no=domain.trade_no(),
        purpose="top_up",
        payer_id=user.id,
        method="gateway",
        gateway=provider.name,
        amount_minor=amount_minor,
        currency=currency,
    )
    session.add(payment)
    await session.commit()
    url = provider.checkout_url(
        trade_no=payment.trade_no,
        amount_minor=amount_minor,
        currency=currency,
        subject="Mobimart wallet top-up",
        notify_url=get_settings().base_url + NOTIFY_PATH,
        return_url=return_url or get_settings().base_url + "/me/wallet",
    )
    return payment, url


async def own_payment(session: AsyncSession, *, user_id: int, payment_id: int) -> Payment:
    payment = await session.get(Payment, payment_id)
    if payment is None or payment.payer_id != user_id:
        raise NotFound("Payment")
    return payment


# --- refunds ---------------------------------------------------------------------------------


async def refund(
    session: AsyncSession,
    *,
    merchant_id: int,
    order_id: int,
    amount_minor: int | None,
    reason: str,
    actor: User,
    seen_refunded: int | None = None,
) -> Refund:
    """Give money back to where it came from: all that is left of the order, or a part.
    Refunding everything of an order that has not shipped cancels it and returns its stock.
    `seen_refunded` is what the caller saw already refunded: a form sent twice refunds once."""
    order = await checkout.merchant_order(session, merchant_id=merchant_id, order_id=order_id)
    if order.status not in REFUNDABLE or order.payment_id is None:
        raise Conflict("not_refundable", "Only paid orders that are not completed are refunded.")
    left = order.total_minor - order.refunded_minor
    amount = left if amount_minor is None else amount_minor
    if not 0 < amount <= left:
        raise DomainError(
            "invalid_amount", f"Refund between 0.01 and what is left ({left / 100:.2f}).", 422
        )
    fits = [
        Order.id == order.id,
        Order.status.in_([s.value for s in REFUNDABLE]),  # not completed (settled) meanwhile
        Order.refunded_minor + amount <= Order.total_minor,
    ]
    if seen_refunded is not None:
        fits.append(Order.refunded_minor == seen_refunded)
    taken = await session.execute(
        update(Order)
        .where(*fits)
        .values(refunded_minor=Order.refunded_minor + amount)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("order_changed", "The order was refunded meanwhile; look at it again.")
    payment = await session.get(Payment, order.payment_id)
    assert payment is not None
    await session.execute(
        update(Payment)
        .where(Payment.id == payment.id)
        .values(refunded_minor=Payment.refunded_minor + amount)
        .execution_options(synchronize_session=False)
    )
    row = Refund(
        refund_no=domain.trade_no(),
        payment_id=payment.id,
        order_id=order.id,
        merchant_id=merchant_id,
        amount_minor=amount,
        currency=order.currency,
        reason=reason[:200],
        status="pending",
        created_by=actor.id,
    )
    session.add(row)
    await session.flush()
    await ledger.post(
        session,
        kind="refund",
        reference=f"refund:{row.id}",
        currency=order.currency,
        legs=domain.refund(
            amount, merchant_id=merchant_id, method=payment.method, payer_id=payment.payer_id
        ),
    )
    if amount == left and order.status == Status.paid:
        # Cancelled and its stock returned only if it has not shipped meanwhile.
        await checkout.release(session, order=order, reason="refunded by the shop")
    await webhooks.emit(
        session,
        merchant_id=merchant_id,
        event="payment.refunded",
        data={"order": order.number, "amount_minor": amount, "currency": order.currency},
    )
    await notifications.order_update(session, order=order, event="refunded")
    if payment.method == "wallet":
        row.status, row.refunded_at = "refunded", utcnow()
    await session.commit()
    if payment.method == "gateway":
        await send_refund(session, refund_id=row.id)
    await session.refresh(row)
    return row


async def send_refund(session: AsyncSession, *, refund_id: int) -> None:
    """Ask the provider to return a gateway refund. Idempotent on the refund number, so the
    retry job may call it again after a timeout."""
    row = await session.get(Refund, refund_id)
    if row is None or row.status != "pending":
        return
    payment = await session.get(Payment, row.payment_id)
    assert payment is not None
    try:
        result = await gateway().refund(
            trade_no=payment.trade_no,
            refund_no=row.refund_no,
            amount_minor=row.amount_minor,
            currency=row.currency,
        )
    except DomainError as exc:
        # Recorded and posted already: the provider is asked again by the housekeeping job.
        log.warning("gateway refund deferred", extra={"refund": row.id, "code": exc.code})
        return
    if result.status == "refunded":
        await session.execute(
            update(Refund)
            .where(Refund.id == row.id, Refund.status == "pending")
            .values(status="refunded", refunded_at=utcnow())
        )
        await session.commit()


REFUND_RETRY_AFTER = dt.timedelta(minutes=1)


async def retry_refunds(session: AsyncSession, *, now: dt.datetime | None = None) -> int:
    """Ask the provider again for gateway refunds it has not confirmed (it timed out or was
    down); the refund number makes a repeated request harmless."""
    now = now or utcnow()
    pending = list(
        await session.scalars(
            select(Refund.id)
            .where(Refund.status == "pending", Refund.created_at <= now - REFUND_RETRY_AFTER)
            .order_by(Refund.id)
            .limit(100)
        )
    )
    for refund_id in pending:
        await send_refund(session, refund_id=refund_id)
    return len(pending)


async def refunds_of(session: AsyncSession, *, order_id: int) -> list[Refund]:
    return list(
        await session.scalars(select(Refund).where(Refund.order_id == order_id).order_by(Refund.id))
    )


# --- settlement ------------------------------------------------------------------------------


async def settle(session: AsyncSession, *, order: Order) -> None:
    """A completed order's money (less refunds) becomes the merchant's, less commission; in
    the caller's transaction, once per order."""
    amount = order.total_minor - order.refunded_minor
    if amount <= 0:
        return
    merchant = await session.get(Merchant, order.merchant_id)
    assert merchant is not None
    await ledger.post(
        session,
        kind="settle",
        reference=f"order:{order.id}",
        currency=order.currency,
        legs=domain.settle(
            amount, merchant_id=order.merchant_id, commission_bps=merchant.commission_bps
        ),
    )


async def request_payout(
    session: AsyncSession, *, merchant_id: int, amount_minor: int, actor: User
) -> Payout:
    currency = get_settings().default_currency
    if amount_minor <= 0:
        raise DomainError("invalid_amount", "A payout is more than zero.", 422)
    payout = Payout(
        merchant_id=merchant_id, amount_minor=amount_minor, currency=currency, requested_by=actor.id
    )
    session.add(payout)
    await session.flush()
    await ledger.post(
        session,
        kind="payout",
        reference=f"payout:{payout.id}",
        currency=currency,
        legs=domain.payout(amount_minor, merchant_id=merchant_id),
    )
    await session.commit()
    return payout


async def merchant_balances(session: AsyncSession, *, merchant_id: int) -> dict[str, int]:
    currency = get_settings().default_currency
    return {
        "pending_minor": await ledger.balance(session, domain.pending(merchant_id), currency),
        "available_minor": await ledger.balance(session, domain.available(merchant_id), currency),
    }


async def merchant_entries(
    session: AsyncSession, *, merchant_id: int, account: str, before: int | None, limit: int
) -> list[tuple[LedgerEntry, LedgerTransaction]]:
    """A merchant's ledger: `pending` (paid orders not yet completed) or `available`
    (settled, what payouts take from)."""
    ref = domain.pending(merchant_id) if account == "pending" else domain.available(merchant_id)
    return await ledger.entries(
        session, ref, get_settings().default_currency, before=before, limit=limit
    )


async def daily_income(
    session: AsyncSession, *, merchant_id: int, days: int = 14
) -> list[tuple[dt.date, int]]:
    """What became the merchant's each day (settled orders and in-store payments, net of
    commission), for the console's chart."""
    now = utcnow()
    since = now - dt.timedelta(days=days)
    rows = await session.execute(
        select(LedgerEntry.created_at, LedgerEntry.amount_minor)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerAccount.kind == domain.AccountKind.merchant_available.value,
            LedgerAccount.owner_id == merchant_id,
            LedgerAccount.currency == get_settings().default_currency,
            LedgerEntry.created_at >= since,
            LedgerEntry.amount_minor > 0,
        )
    )
    return domain.daily_totals(
        [(at if at.tzinfo else at.replace(tzinfo=dt.UTC), amount) for at, amount in rows.all()],
        today=now.date(),
        days=days,
    )


async def payouts_of(
    session: AsyncSession, *, merchant_id: int, before: int | None, limit: int
) -> list[Payout]:
    query = select(Payout).where(Payout.merchant_id == merchant_id)
    if before is not None:
        query = query.where(Payout.id < before)
    return list(await session.scalars(query.order_by(Payout.id.desc()).limit(limit)))


MAX_COMMISSION_BPS = 5_000  # 50 %: more is a typo, not a deal


async def set_commission(
    session: AsyncSession, *, admin: User, merchant_id: int, commission_bps: int, reason: str
) -> Merchant:
    """The platform's share of a merchant's orders from now on; orders settled before keep
    theirs. Recorded in the audit log with the old and new rate."""
    if not 0 <= commission_bps <= MAX_COMMISSION_BPS:
        raise DomainError(
            "invalid_commission", f"Commission is 0 to {MAX_COMMISSION_BPS} basis points.", 422
        )
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("Merchant")
    old = merchant.commission_bps
    merchant.commission_bps = commission_bps
    audit.record(
        session,
        actor_id=admin.id,
        action="commission_changed",
        subject_type="merchant",
        subject_id=merchant_id,
        merchant_id=merchant_id,
        reason=reason[:200],
        data={"from_bps": old, "to_bps": commission_bps},
    )
    await session.commit()
    return merchant
