"""Orders in the merchant console: the list by status, an order's detail, shipping it, adding
tracking steps and refunding. Buyers' numbers are masked here as everywhere merchants look."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.checkout import service as checkout
from mobimart.checkout import views
from mobimart.checkout.pages import STATUS_TABS
from mobimart.errors import DomainError
from mobimart.logistics import service as logistics
from mobimart.logistics.domain import TrackingStatus
from mobimart.merchants import service as merchants
from mobimart.payments import service as payments
from mobimart.text import clean, parse_amount
from mobimart.web.deps import PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
Text = Annotated[str, Form(max_length=200)]


def _notice(code: str) -> str:
    return {
        "shipped": _("Shipped. The buyer can follow the parcel."),
        "event": _("Tracking step added."),
        "refunded": _("Refund made."),
    }.get(code, "")


@router.get("/console/{merchant_id}/orders")
async def orders_page(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    status: Annotated[str | None, Query(max_length=20)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    chosen = status if status in STATUS_TABS else None
    params = page_params(cursor=cursor, limit=20)
    rows = await checkout.orders_of(
        session, merchant_id=merchant.id, status=chosen, before=params.before_id, limit=params.fetch
    )
    orders, next_cursor = split_page(rows, params, key=lambda o: o.id)
    return render(
        request,
        "checkout/console_orders.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "orders": await views.orders_out(session, orders),
            "status": chosen,
            "tabs": STATUS_TABS,
            "next_cursor": next_cursor,
        },
    )


async def _order_page(
    request: Request,
    session: AsyncSession,
    user: User,
    ids: tuple[int, int],
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    merchant_id, order_id = ids
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    order = await checkout.merchant_order(session, merchant_id=merchant.id, order_id=order_id)
    return render(
        request,
        "checkout/console_order.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            **await views.order_page_context(session, order),
            "notice": notice,
            "error": error,
        },
        status=status,
    )


@router.get("/console/{merchant_id}/orders/{order_id}")
async def order_page(
    request: Request,
    merchant_id: IdPath,
    order_id: IdPath,
    user: PageUser,
    session: Session,
    notice: str = "",
) -> Response:
    return await _order_page(
        request, session, user, (merchant_id, order_id), notice=_notice(notice)
    )


async def _act(
    request: Request,
    session: AsyncSession,
    user: User,
    ids: tuple[int, int],
    csrf_token: str,
    action: Callable[[], Awaitable[object]],
    notice: str,
) -> Response:
    """Check the form and membership, run one change, then show the order again: with the
    change, or with the broken rule's message."""
    verify_csrf(request, csrf_token)
    await merchants.membership(session, merchant_id=ids[0], user=user)
    try:
        await action()
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _order_page(
            request, session, user, ids, error=message_of(exc), status=exc.status
        )
    return see_other(f"/console/{ids[0]}/orders/{ids[1]}", notice)


@router.post("/console/{merchant_id}/orders/{order_id}/ship")
async def ship(
    request: Request,
    merchant_id: IdPath,
    order_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    carrier: Annotated[str, Form(max_length=20)],
    tracking_number: Annotated[str, Form(max_length=40)],
) -> Response:
    def act() -> Awaitable[object]:
        return logistics.ship(
            session,
            merchant_id=merchant_id,
            order_id=order_id,
            carrier=clean(carrier, 20),
            tracking_number=clean(tracking_number, 40),
            actor=user,
        )

    ids = (merchant_id, order_id)
    return await _act(request, session, user, ids, csrf_token, act, "shipped")


@router.post("/console/{merchant_id}/orders/{order_id}/tracking")
async def add_tracking_event(
    request: Request,
    merchant_id: IdPath,
    order_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    status: Annotated[TrackingStatus, Form()],
    description: Text = "",
    location: Annotated[str, Form(max_length=80)] = "",
) -> Response:
    def act() -> Awaitable[object]:
        event = logistics.EventSpec(
            status=TrackingStatus(status),
            description=clean(description, 200),
            location=clean(location, 80),
        )
        return logistics.add_event(
            session, merchant_id=merchant_id, order_id=order_id, actor=user, event=event
        )

    ids = (merchant_id, order_id)
    return await _act(request, session, user, ids, csrf_token, act, "event")


@router.post("/console/{merchant_id}/orders/{order_id}/refund")
async def refund(
    request: Request,
    merchant_id: IdPath,
    order_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    seen_refunded: Annotated[int, Form(ge=0)],
    amount: Annotated[str, Form(max_length=20)] = "",
    reason: Text = "",
) -> Response:
    async def act() -> object:
        return await payments.refund(
            session,
            merchant_id=merchant_id,
            order_id=order_id,
            amount_minor=parse_amount(amount) if amount.strip() else None,
            reason=clean(reason, 200),
            actor=user,
            seen_refunded=seen_refunded,
        )

    ids = (merchant_id, order_id)
    return await _act(request, session, user, ids, csrf_token, act, "refunded")
