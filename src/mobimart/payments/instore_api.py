"""Face-to-face payments (the shop's QR, the customer's payment code) and pay-for-me links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from mobimart.infra import idempotency
from mobimart.infra import qr as qrimage
from mobimart.infra.idempotency import IdempotencyKey
from mobimart.merchants import service as merchants
from mobimart.payments import instore, share
from mobimart.payments.schemas import (
    CodeChargeIn,
    CollectionIn,
    CollectionOut,
    CollectionPayIn,
    PaymentCodeOut,
    PaymentOut,
    PublicCollectionOut,
    SharedLineOut,
    SharedOrderOut,
    SharedPayIn,
    ShareOut,
)
from mobimart.signing import token_digest
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["payments"])

Token = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_PNG = {200: {"description": "A PNG QR code", "content": {"image/png": {}}}}


def _collection_out(view: instore.CollectionView) -> CollectionOut:
    c = view.collection
    return CollectionOut(
        id=c.id,
        token=c.token,
        url=view.url,
        amount_minor=c.amount_minor,
        currency=c.currency,
        note=c.note,
        status=view.status,
        expires_at=c.expires_at,
        payment_id=c.payment_id,
    )


# --- the shop's QR ---------------------------------------------------------------------------


@router.post("/merchants/{merchant_id}/collections", status_code=201)
async def create_collection(
    merchant_id: IdPath, body: CollectionIn, user: CurrentUser, session: Session
) -> CollectionOut:
    """Ask for an amount at the counter: show `url` as a QR (or fetch `qr.png`); the customer
    scans it and pays from the wallet. It expires after a few minutes."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    view = await instore.create_collection(
        session, merchant=merchant, actor=user, amount_minor=body.amount_minor, note=body.note
    )
    return _collection_out(view)


@router.get("/merchants/{merchant_id}/collections/{collection_id}")
async def get_collection(
    merchant_id: IdPath, collection_id: IdPath, user: CurrentUser, session: Session
) -> CollectionOut:
    """Whether the customer has paid yet (`status`)."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return _collection_out(
        await instore.merchant_collection(
            session, merchant_id=merchant_id, collection_id=collection_id
        )
    )


@router.get(
    "/merchants/{merchant_id}/collections/{collection_id}/qr.png",
    response_class=Response,
    responses=_PNG,  # type: ignore[arg-type]
)
async def collection_qr(
    merchant_id: IdPath, collection_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    view = await instore.merchant_collection(
        session, merchant_id=merchant_id, collection_id=collection_id
    )
    return Response(
        qrimage.png(view.url),
        media_type="image/png",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/collections/{collection_token}")
async def public_collection(collection_token: Token, session: Session) -> PublicCollectionOut:
    """What the shop's QR asks for; anyone holding the link may look."""
    view = await instore.collection_by_token(session, token=collection_token)
    c = view.collection
    return PublicCollectionOut(
        shop_name=view.shop_name,
        amount_minor=c.amount_minor,
        currency=c.currency,
        note=c.note,
        status=view.status,
        expires_at=c.expires_at,
    )


@router.post("/collections/{collection_token}/pay", status_code=201, response_model=PaymentOut)
async def pay_collection(
    collection_token: Token,
    body: CollectionPayIn,
    user: CurrentUser,
    session: Session,
    key: IdempotencyKey = None,
) -> object:
    """Pay the shop's QR from the wallet. A QR is paid once; 410 once it has expired."""
    view = await instore.collection_by_token(session, token=collection_token)
    collection_id = view.collection.id

    async def work() -> PaymentOut:
        payment = await instore.pay_collection(
            session, payer=user, collection_id=collection_id, amount_minor=body.amount_minor
        )
        return PaymentOut.of(payment)

    return await idempotency.run(
        session,
        user_id=user.id,
        scope=f"POST /collections/{collection_id}/pay",
        key=key,
        request=body,
        work=work,
        status=201,
    )


# --- the customer's code ---------------------------------------------------------------------


@router.post("/me/payment-codes", status_code=201)
async def new_payment_code(user: CurrentUser, session: Session) -> PaymentCodeOut:
    """A code for the shop to scan, valid 60 s and once; asking again voids the last one."""
    code, row = await instore.issue_code(session, user=user)
    return PaymentCodeOut(code=code, expires_at=row.expires_at)


@router.post(
    "/merchants/{merchant_id}/payment-codes/charge", status_code=201, response_model=PaymentOut
)
async def charge_payment_code(
    merchant_id: IdPath,
    body: CodeChargeIn,
    user: CurrentUser,
    session: Session,
    key: IdempotencyKey = None,
) -> object:
    """Charge the code a customer's phone shows (scanned or typed), from their wallet."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)

    async def work() -> PaymentOut:
        payment = await instore.charge_code(
            session,
            merchant=merchant,
            actor=user,
            code=body.code,
            amount_minor=body.amount_minor,
            note=body.note,
        )
        return PaymentOut.of(payment)

    return await idempotency.run(
        session,
        user_id=user.id,
        scope=f"POST /merchants/{merchant_id}/payment-codes/charge",
        key=key,
        request=body,
        work=work,
        status=201,
    )


# --- pay-for-me ------------------------------------------------------------------------------


@router.post("/orders/{order_id}/share", status_code=201)
async def share_order(order_id: IdPath, user: CurrentUser, session: Session) -> ShareOut:
    """A link for a friend to pay this unpaid order; it works until the order is paid,
    cancelled or runs out of time. A new link replaces the last one."""
    token, expires_at = await share.create_link(session, user=user, order_id=order_id)
    return ShareOut(url=share.share_url(token), expires_at=expires_at)


@router.get("/shared-orders/{share_token}")
async def shared_order(share_token: Token, session: Session) -> SharedOrderOut:
    """What a shared order is for and what it costs, without the buyer's address or phone."""
    found = await share.shared_order(session, token=share_token)
    o = found.order
    return SharedOrderOut(
        shop_name=found.shop_name,
        requested_by=found.requested_by,
        currency=o.currency,
        lines=[
            SharedLineOut(
                name=line.name,
                options={str(k): str(v) for k, v in line.options.items()},
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                total_minor=line.total_minor,
            )
            for line in found.lines
        ],
        subtotal_minor=o.subtotal_minor,
        discount_minor=o.discount_minor,
        shipping_minor=o.shipping_minor,
        shipping_discount_minor=o.shipping_discount_minor,
        total_minor=o.total_minor,
        expires_at=o.expires_at,
    )


@router.post("/shared-orders/{share_token}/pay", status_code=201, response_model=PaymentOut)
async def pay_shared_order(
    share_token: Token,
    body: SharedPayIn,
    user: CurrentUser,
    session: Session,
    key: IdempotencyKey = None,
) -> object:
    """Pay a friend's order: from your wallet at once, or at the gateway (`redirect_url`)."""

    async def work() -> PaymentOut:
        payment, url = await share.pay_shared(
            session, payer=user, token=share_token, method=body.method, return_url=body.return_url
        )
        return PaymentOut.of(payment, url)

    # The link dies once paid, so the scope names it by hash: a retry still replays.
    return await idempotency.run(
        session,
        user_id=user.id,
        scope=f"POST /shared-orders/{token_digest(share_token)[:32]}/pay",
        key=key,
        request=body,
        work=work,
        status=201,
    )
