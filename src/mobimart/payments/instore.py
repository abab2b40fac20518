"""Paying face to face: a QR the shop shows for an amount (a collection), or a code the
customer's phone shows and the shop charges (a payment code). Both take the money from the
customer's wallet.

Every in-store payment has a collection row: the merchant's record of the amount asked, by
which member of staff, with its note. Charging a payment code writes one already paid.

In-store money goes straight to the merchant's available balance, less commission: the goods
were handed over at the counter, so there is no order whose completion would settle it later
(pending money waits for exactly that). Refunds are per order and do not cover in-store
payments yet.

Real-name rules: the threshold of `payments.service.start_top_up` limits what a wallet holds,
and paying only lowers the balance, so none applies to the payer. The payee must be an
approved (verified) merchant.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog.models import Shop
from mobimart.db import utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.payments import domain, ledger
from mobimart.payments.models import Collection, Payment, PaymentCode
from mobimart.payments.service import MAX_PAYMENT
from mobimart.settings import get_settings
from mobimart.text import clean
from mobimart.webhooks import service as webhooks

# A collection is scanned at the counter within seconds of being shown; five minutes covers a
# slow phone and a queue, and a photo of the screen or a tablet left showing an old amount
# cannot be paid later.
COLLECTION_TTL = dt.timedelta(minutes=5)
# A payment code is charged without the payer confirming the amount, so it lives a minute
# (the phone shows a fresh one) and is used once.
CODE_TTL = dt.timedelta(seconds=60)
# Above this the big wallets ask the payer to confirm on the phone; there is no such step
# here, so a larger amount is collected with a QR the payer sees and confirms instead.
CODE_LIMIT = 200_000  # ¥2,000
PAY_PATH = "/pay/c/"

CollectionStatus = Literal["open", "paid", "expired"]


@dataclass(frozen=True)
class CollectionView:
    collection: Collection
    shop_name: str
    status: CollectionStatus

    @property
    def url(self) -> str:
        return collection_url(self.collection.token)


def collection_url(token: str) -> str:
    return get_settings().base_url.rstrip("/") + PAY_PATH + token


def _status(collection: Collection, now: dt.datetime) -> CollectionStatus:
    if collection.payment_id is not None:
        return "paid"
    return "open" if collection.expires_at > now else "expired"


async def shop_name(session: AsyncSession, merchant: Merchant) -> str:
    name = await session.scalar(select(Shop.name).where(Shop.merchant_id == merchant.id))
    return name or merchant.name


async def _view(session: AsyncSession, collection: Collection) -> CollectionView:
    merchant = await session.get(Merchant, collection.merchant_id)
    assert merchant is not None
    return CollectionView(
        collection, await shop_name(session, merchant), _status(collection, utcnow())
    )


def _check_amount(amount_minor: int, limit: int) -> None:
    if not 1 <= amount_minor <= limit:
        raise DomainError(
            "invalid_amount", f"Collect between ¥0.01 and ¥{limit // 100:,} at a time.", 422
        )


# --- the shop's QR ---------------------------------------------------------------------------


async def create_collection(
    session: AsyncSession, *, merchant: Merchant, actor: User, amount_minor: int, note: str
) -> CollectionView:
    merchants.require_approved(merchant)
    _check_amount(amount_minor, MAX_PAYMENT)
    collection = Collection(
        token=secrets.token_urlsafe(16),  # 128 random bits: the URL is the only credential
        merchant_id=merchant.id,
        amount_minor=amount_minor,
        currency=get_settings().default_currency,
        note=clean(note, 80),
        created_by=actor.id,
        expires_at=utcnow() + COLLECTION_TTL,
    )
    session.add(collection)
    await session.commit()
    return CollectionView(collection, await shop_name(session, merchant), "open")


async def merchant_collection(
    session: AsyncSession, *, merchant_id: int, collection_id: int
) -> CollectionView:
    collection = await session.get(Collection, collection_id)
    if collection is None or collection.merchant_id != merchant_id:
        raise NotFound("Collection")
    return await _view(session, collection)


async def collection_by_token(session: AsyncSession, *, token: str) -> CollectionView:
    collection = await session.scalar(select(Collection).where(Collection.token == token))
    if collection is None:
        raise NotFound("Collection")
    return await _view(session, collection)


class CollectionExpired(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "collection_expired", "This QR code has expired: ask the shop for a new one.", 410
        )


class CollectionPaid(Conflict):
    def __init__(self) -> None:
        super().__init__("collection_paid", "This QR code has been paid already.")


async def pay_collection(
    session: AsyncSession, *, payer: User, collection_id: int, amount_minor: int
) -> Payment:
    """Pay a shop's QR from the wallet, once: `amount_minor` is what the payer saw and
    confirmed. Two payers (or two taps) at once: the collection's conditional UPDATE lets one
    through and the other's payment is rolled back with it."""
    collection = await session.get(Collection, collection_id)
    if collection is None:
        raise NotFound("Collection")
    now = utcnow()
    if collection.payment_id is not None:
        raise CollectionPaid()
    if collection.expires_at <= now:
        raise CollectionExpired()
    if amount_minor != collection.amount_minor:
        raise Conflict("amount_mismatch", "The amount is not the one the shop asked for.")
    merchant = await session.get(Merchant, collection.merchant_id)
    assert merchant is not None
    payment = _payment(payer_id=payer.id, merchant=merchant, amount_minor=collection.amount_minor)
    session.add(payment)
    await session.flush()
    taken = await session.execute(
        update(Collection)
        .where(
            Collection.id == collection.id,
            Collection.payment_id.is_(None),
            Collection.expires_at > now,
        )
        .values(payment_id=payment.id)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise CollectionPaid()
    await _post(session, payment=payment, merchant=merchant, note=collection.note)
    await session.commit()
    return payment


# --- the customer's code ---------------------------------------------------------------------


async def issue_code(session: AsyncSession, *, user: User) -> tuple[str, PaymentCode]:
    """A fresh code for the phone to show. The person's earlier unused codes are deleted: only
    what is on the screen now can be charged (an old screenshot cannot), and the table keeps
    at most one unused code per person besides the used ones, which name their payment."""
    await session.execute(
        delete(PaymentCode).where(PaymentCode.user_id == user.id, PaymentCode.used_at.is_(None))
    )
    code = domain.new_payment_code()
    row = PaymentCode(user_id=user.id, code_hash=_digest(code), expires_at=utcnow() + CODE_TTL)
    session.add(row)
    await session.commit()
    return code, row


async def latest_code(session: AsyncSession, *, user_id: int) -> PaymentCode | None:
    return await session.scalar(
        select(PaymentCode)
        .where(PaymentCode.user_id == user_id)
        .order_by(PaymentCode.id.desc())
        .limit(1)
    )


def _digest(code: str) -> str:
    return domain.payment_code_digest(get_settings().secret_key.get_secret_value(), code)


async def charge_code(
    session: AsyncSession,
    *,
    merchant: Merchant,
    actor: User,
    code: str,
    amount_minor: int,
    note: str,
) -> Payment:
    """Charge a customer's code once. The code is taken by a conditional UPDATE (unused and
    not expired), so two tills scanning it at once charge it once; a refused charge (not
    enough money) rolls the taking back and the code stays usable until it expires."""
    merchants.require_approved(merchant)
    _check_amount(amount_minor, CODE_LIMIT)
    digits = domain.normalize_payment_code(code)
    if digits is None:
        raise _unknown_code()
    digest, now = _digest(digits), utcnow()
    taken = (
        await session.execute(
            update(PaymentCode)
            .where(
                PaymentCode.code_hash == digest,
                PaymentCode.used_at.is_(None),
                PaymentCode.expires_at > now,
            )
            .values(used_at=now)
            .returning(PaymentCode.id, PaymentCode.user_id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if taken is None:
        seen = (
            await session.execute(
                select(PaymentCode.used_at).where(PaymentCode.code_hash == digest)
            )
        ).first()
        if seen is None:
            raise _unknown_code()
        if seen.used_at is not None:
            raise Conflict("payment_code_used", "This payment code was used already.")
        raise DomainError(
            "payment_code_expired", "This payment code has expired: ask for a fresh one.", 410
        )
    code_id, payer_id = taken
    payment = _payment(payer_id=payer_id, merchant=merchant, amount_minor=amount_minor)
    session.add(payment)
    await session.flush()
    clean_note = clean(note, 80)
    session.add(
        Collection(
            token=secrets.token_urlsafe(16),
            merchant_id=merchant.id,
            amount_minor=amount_minor,
            currency=payment.currency,
            note=clean_note,
            created_by=actor.id,
            expires_at=now,
            payment_id=payment.id,
        )
    )
    await session.execute(
        update(PaymentCode)
        .where(PaymentCode.id == code_id)
        .values(payment_id=payment.id)
        .execution_options(synchronize_session=False)
    )
    await _post(session, payment=payment, merchant=merchant, note=clean_note)
    await session.commit()
    return payment


def _unknown_code() -> DomainError:
    return DomainError(
        "invalid_payment_code", "No such payment code: check the digits or scan it again.", 422
    )


# --- posting ---------------------------------------------------------------------------------


def _payment(*, payer_id: int, merchant: Merchant, amount_minor: int) -> Payment:
    return Payment(
        trade_no=domain.trade_no(),
        purpose="in_store",
        payer_id=payer_id,
        merchant_id=merchant.id,
        method="wallet",
        amount_minor=amount_minor,
        currency=get_settings().default_currency,
        status="succeeded",
        succeeded_at=utcnow(),
    )


async def _post(session: AsyncSession, *, payment: Payment, merchant: Merchant, note: str) -> None:
    """The wallet's money to the merchant; InsufficientFunds when the wallet is short (the
    caller's transaction, with whatever it took, is rolled back)."""
    await ledger.post(
        session,
        kind="payment",
        reference=f"payment:{payment.id}",
        currency=payment.currency,
        legs=domain.in_store(
            payment.amount_minor,
            merchant_id=merchant.id,
            payer_id=payment.payer_id,
            commission_bps=merchant.commission_bps,
        ),
    )
    await webhooks.emit(
        session,
        merchant_id=merchant.id,
        event="payment.succeeded",
        data={
            "purpose": "in_store",
            "trade_no": payment.trade_no,
            "amount_minor": payment.amount_minor,
            "currency": payment.currency,
            "note": note,
        },
    )
