"""Promotions and coupons (merchants' and the platform's), and flash sales."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mobimart.checkout import views
from mobimart.checkout.schemas import OrderOut
from mobimart.infra import idempotency
from mobimart.infra.idempotency import IdempotencyKey
from mobimart.merchants import service as merchants
from mobimart.promotions import flashsale
from mobimart.promotions import service as promotions
from mobimart.promotions.models import FlashSale, Promotion
from mobimart.promotions.schemas import (
    FlashBuyIn,
    FlashSaleIn,
    FlashSaleOut,
    PromotionIn,
    PromotionOut,
)
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["promotions"])

Paging = Annotated[PageParams, Depends(page_params)]


def _out(row: Promotion) -> PromotionOut:
    return PromotionOut.model_validate(row, from_attributes=True)


def _spec(body: PromotionIn) -> promotions.Spec:
    return promotions.Spec(**body.model_dump())


@router.post("/merchants/{merchant_id}/promotions", status_code=201)
async def create_promotion(
    merchant_id: IdPath, body: PromotionIn, user: CurrentUser, session: Session
) -> PromotionOut:
    """A coupon (with `code`), an automatic order promotion or a catalogue price cut, for
    this merchant's products."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    merchants.require_approved(merchant)
    return _out(await promotions.create(session, merchant_id=merchant_id, spec=_spec(body)))


@router.get("/merchants/{merchant_id}/promotions")
async def list_promotions(
    merchant_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[PromotionOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await promotions.listed(
        session, merchant_id=merchant_id, after=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, _out, key=lambda r: r.id)


@router.post("/merchants/{merchant_id}/promotions/{promotion_id}/end")
async def end_promotion(
    merchant_id: IdPath, promotion_id: IdPath, user: CurrentUser, session: Session
) -> PromotionOut:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return _out(await promotions.end(session, promotion_id=promotion_id, merchant_id=merchant_id))


@router.post("/admin/promotions", status_code=201)
async def create_platform_promotion(
    body: PromotionIn, admin: Admin, session: Session
) -> PromotionOut:
    """A platform promotion: for every shop, funded by the platform."""
    return _out(await promotions.create(session, merchant_id=None, spec=_spec(body)))


@router.get("/admin/promotions")
async def list_platform_promotions(
    admin: Admin, session: Session, page: Paging
) -> Page[PromotionOut]:
    rows = await promotions.listed(
        session, merchant_id=None, after=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, _out, key=lambda r: r.id)


@router.post("/admin/promotions/{promotion_id}/end")
async def end_platform_promotion(
    promotion_id: IdPath, admin: Admin, session: Session
) -> PromotionOut:
    """End any promotion, the platform's or a merchant's."""
    return _out(
        await promotions.end(session, promotion_id=promotion_id, merchant_id=None, admin=True)
    )


# --- flash sales -----------------------------------------------------------------------------


async def _sale_out(session: Session, sale: FlashSale) -> FlashSaleOut:
    out = FlashSaleOut.model_validate(sale, from_attributes=True)
    if sale.closed_at is None:
        out.sold = await flashsale.counter().sold(session, sale)
    return out


@router.post("/merchants/{merchant_id}/flash-sales", status_code=201)
async def create_flash_sale(
    merchant_id: IdPath, body: FlashSaleIn, user: CurrentUser, session: Session
) -> FlashSaleOut:
    """Put `quantity` units of a variant on sale; they leave its stock now and the unsold
    ones come back when the sale ends."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    merchants.require_approved(merchant)
    sale = await flashsale.create(
        session, merchant_id=merchant_id, spec=flashsale.SaleSpec(**body.model_dump())
    )
    return await _sale_out(session, sale)


@router.get("/flash-sales/{sale_id}")
async def get_flash_sale(sale_id: IdPath, session: Session) -> FlashSaleOut:
    return await _sale_out(session, await flashsale.get(session, sale_id=sale_id))


@router.post("/flash-sales/{sale_id}/orders", status_code=201, response_model=OrderOut)
async def buy_flash_sale(
    sale_id: IdPath,
    body: FlashBuyIn,
    user: CurrentUser,
    session: Session,
    key: IdempotencyKey = None,
) -> object:
    """Buy at the flash price: an order held for payment like any other. 409 `sold_out`,
    `limit_reached`, `not_started` or `ended` say why not."""
    scope = f"POST /flash-sales/{sale_id}/orders"
    first = await idempotency.previous(session, user_id=user.id, scope=scope, key=key, request=body)
    if first is not None:  # a retry of a purchase made before the sale sold out
        return first
    await flashsale.check_open(session, sale_id=sale_id)  # before the key's write
    await session.commit()  # end the read (keeping loaded objects): the write starts afresh

    async def work() -> OrderOut:
        order = await flashsale.buy(
            session,
            sale_id=sale_id,
            user=user,
            quantity=body.quantity,
            address_id=body.address_id,
        )
        return (await views.orders_out(session, [order]))[0]

    return await idempotency.run(
        session,
        user_id=user.id,
        scope=scope,
        key=key,
        request=body,
        work=work,
        status=201,
    )
