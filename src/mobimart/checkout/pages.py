"""The shopper's pages: cart (guests too), checkout, paying, the wallet and "My orders".
The same services as the API; a broken rule shows its message on the page it came from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog.models import Shop
from mobimart.checkout import service as checkout
from mobimart.checkout import views
from mobimart.checkout.domain import Status
from mobimart.checkout.models import Cart, Order
from mobimart.db import utcnow
from mobimart.errors import DomainError
from mobimart.logistics import service as logistics
from mobimart.payments import domain as money_domain
from mobimart.payments import ledger
from mobimart.payments import service as payments
from mobimart.settings import get_settings
from mobimart.text import clean, parse_amount
from mobimart.web.deps import OptionalPageUser, PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()

GUEST_CART_COOKIE = "mm_cart"
GUEST_CART_DAYS = 30
Csrf = Annotated[str, Form(max_length=200)]
Text = Annotated[str, Form(max_length=200)]
Codes = Annotated[list[str], Query(max_length=5)]
OrderIds = Annotated[list[int], Query(max_length=20)]


def _codes(codes: list[str]) -> list[str]:
    return [c for c in (clean(code, 32).upper() for code in codes) if c][:5]


async def _cart(
    request: Request, session: AsyncSession, user: User | None, *, create: bool = False
) -> tuple[Cart | None, str | None, bool]:
    """The caller's cart, a guest token to set (a guest's first add), and whether a guest
    cart was just merged into the person's (its cookie is then dropped): signing in keeps
    what was put in the cart before."""
    guest = request.cookies.get(GUEST_CART_COOKIE)
    if user is not None:
        merged = False
        if guest:
            await checkout.merge_guest(session, guest_token=guest, user=user)
            merged = True
        return await checkout.cart_of(session, user_id=user.id), None, merged
    if guest and len(guest) <= 64:
        return await checkout.cart_of(session, guest_token=guest), None, False
    if not create:
        return None, None, False
    token = checkout.new_guest_token()
    return await checkout.cart_of(session, guest_token=token), token, False


def _with_cart_cookie(request: Request, response: Response, new_token: str | None) -> Response:
    if new_token:
        response.set_cookie(
            GUEST_CART_COOKIE,
            new_token,
            max_age=GUEST_CART_DAYS * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response


def _dropping_guest_cart(response: Response, merged: bool) -> Response:
    if merged:
        response.delete_cookie(GUEST_CART_COOKIE)
    return response


def _cart_notice(code: str) -> str:
    return {
        "added": _("Added to your cart."),
        "updated": _("Cart updated."),
        "cancelled": _("Order cancelled."),
        "paid": _("Paid. The shop has been told."),
        "received": _("Thank you! The order is complete."),
        "address": _("Address saved."),
    }.get(code, "")


async def _cart_page(
    request: Request,
    session: AsyncSession,
    user: User | None,
    *,
    codes: list[str],
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    cart, _token, merged = await _cart(request, session, user)
    entries = await checkout.cart_entries(session, cart=cart) if cart else []
    quote = await checkout.quote(
        session, entries=entries, codes=codes, user_id=user.id if user else None, now=utcnow()
    )
    out = views.cart_out(quote)
    response = render(
        request,
        "checkout/cart.html",
        {
            "user": user,
            "tab": "cart",
            "cart": out,
            "codes": codes,
            "shops": {s.shop_id: s for s in out.shops},
            "notice": notice,
            "error": error,
        },
        status=status,
    )
    return _dropping_guest_cart(response, merged)


@router.get("/cart")
async def cart_page(
    request: Request,
    session: Session,
    user: OptionalPageUser,
    code: Codes = [],  # noqa: B006
    notice: str = "",
) -> Response:
    return await _cart_page(request, session, user, codes=_codes(code), notice=_cart_notice(notice))


@router.post("/cart/items")
async def add_to_cart(
    request: Request,
    session: Session,
    user: OptionalPageUser,
    csrf_token: Csrf,
    variant_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    quantity: Annotated[int, Form(ge=1, le=checkout.MAX_QUANTITY)] = 1,
) -> Response:
    verify_csrf(request, csrf_token)
    cart, token, merged = await _cart(request, session, user, create=True)
    assert cart is not None
    try:
        await checkout.put(session, cart=cart, variant_id=variant_id, quantity=quantity, add=True)
    except DomainError as exc:
        await session.rollback()
        return await _cart_page(
            request, session, user, codes=[], error=message_of(exc), status=exc.status
        )
    response = see_other("/cart", "added")
    return _dropping_guest_cart(_with_cart_cookie(request, response, token), merged)


@router.post("/cart/items/{variant_id}")
async def change_cart_item(
    request: Request,
    variant_id: IdPath,
    session: Session,
    user: OptionalPageUser,
    csrf_token: Csrf,
    quantity: Annotated[int, Form(ge=0, le=checkout.MAX_QUANTITY)],
    code: Annotated[list[str], Form(max_length=5)] = [],  # noqa: B006
) -> Response:
    verify_csrf(request, csrf_token)
    cart, _token, merged = await _cart(request, session, user)
    if cart is not None:
        await checkout.put(session, cart=cart, variant_id=variant_id, quantity=quantity)
    query = "".join(f"&code={c}" for c in _codes(code))
    return _dropping_guest_cart(see_other(f"/cart?notice=updated{query}"), merged)


# --- checkout --------------------------------------------------------------------------------


async def _checkout_page(
    request: Request,
    session: AsyncSession,
    user: User,
    *,
    codes: list[str],
    note: str = "",
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    cart, _token, merged = await _cart(request, session, user)
    assert cart is not None
    entries = await checkout.cart_entries(session, cart=cart)
    if not entries:
        return _dropping_guest_cart(see_other("/cart"), merged)
    quote = await checkout.quote(
        session, entries=entries, codes=codes, user_id=user.id, now=utcnow()
    )
    response = render(
        request,
        "checkout/checkout.html",
        {
            "user": user,
            "tab": "cart",
            "cart": views.cart_out(quote),
            "codes": codes,
            "addresses": await checkout.addresses(session, user_id=user.id),
            "note": note,
            "error": error,
            "notice": notice,
            "timeout_minutes": get_settings().order_payment_timeout_s // 60,
        },
        status=status,
    )
    return _dropping_guest_cart(response, merged)


@router.get("/checkout")
async def checkout_page(
    request: Request,
    session: Session,
    user: PageUser,
    code: Codes = [],  # noqa: B006
    notice: str = "",
) -> Response:
    return await _checkout_page(
        request, session, user, codes=_codes(code), notice=_cart_notice(notice)
    )


@router.post("/checkout")
async def place_orders(
    request: Request,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    address_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    code: Annotated[list[str], Form(max_length=5)] = [],  # noqa: B006
    note: Text = "",
) -> Response:
    verify_csrf(request, csrf_token)
    codes = _codes(code)
    try:
        orders = await checkout.place(
            session, user=user, address_id=address_id, codes=codes, note=clean(note, 200)
        )
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _checkout_page(
            request, session, user, codes=codes, note=note, error=message_of(exc), status=exc.status
        )
    return see_other("/pay?" + "&".join(f"order={o.id}" for o in orders))


@router.post("/checkout/addresses")
async def add_address(
    request: Request,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    recipient: Annotated[str, Form(max_length=40)],
    phone: Annotated[str, Form(max_length=20)],
    region: Annotated[str, Form(max_length=80)],
    detail: Text,
    code: Annotated[list[str], Form(max_length=5)] = [],  # noqa: B006
) -> Response:
    verify_csrf(request, csrf_token)
    codes = _codes(code)
    spec = checkout.AddressSpec(recipient=recipient, phone=phone, region=region, detail=detail)
    try:
        await checkout.add_address(session, user=user, spec=spec, default=True)
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _checkout_page(
            request, session, user, codes=codes, error=message_of(exc), status=exc.status
        )
    query = "".join(f"&code={c}" for c in codes)
    return see_other(f"/checkout?notice=address{query}")


# --- paying ----------------------------------------------------------------------------------


async def _pay_page(
    request: Request,
    session: AsyncSession,
    user: User,
    order_ids: list[int],
    *,
    error: str = "",
    status: int = 200,
) -> Response:
    orders = [await checkout.own_order(session, user_id=user.id, order_id=i) for i in order_ids]
    unpaid = [o for o in orders if o.status == Status.pending_payment]
    currency = orders[0].currency if orders else get_settings().default_currency
    return render(
        request,
        "checkout/pay.html",
        {
            "user": user,
            "tab": "me",
            "orders": orders,
            "unpaid": unpaid,
            "total": sum(o.total_minor for o in unpaid),
            "currency": currency,
            "balance": await payments.wallet_balance(session, user_id=user.id, currency=currency),
            "gateway": get_settings().payment_gateway != "none",
            "error": error,
        },
        status=status,
    )


@router.get("/pay")
async def pay_page(
    request: Request,
    session: Session,
    user: PageUser,
    order: OrderIds = [],  # noqa: B006
) -> Response:
    if not order:
        return RedirectResponse("/orders", status_code=303)
    return await _pay_page(request, session, user, order)


@router.post("/pay")
async def pay(
    request: Request,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    method: Annotated[str, Form(pattern="^(wallet|gateway)$")],
    order: Annotated[list[int], Form(max_length=20)],
) -> Response:
    verify_csrf(request, csrf_token)
    target = f"/orders/{order[0]}" if len(order) == 1 else "/orders"
    try:
        _payment, url = await payments.pay(
            session,
            payer=user,
            order_ids=order,
            method=method,
            return_url=get_settings().base_url + target,
        )
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _pay_page(
            request, session, user, order, error=message_of(exc), status=exc.status
        )
    if url:  # the provider's page; the notification marks the orders paid
        return RedirectResponse(url, status_code=303)
    return see_other(target, "paid")


# --- my orders -------------------------------------------------------------------------------

STATUS_TABS = ("pending_payment", "paid", "shipped", "delivered", "completed", "cancelled")


async def _shop_names(session: AsyncSession, orders: list[Order]) -> dict[int, str]:
    ids = {o.shop_id for o in orders}
    if not ids:
        return {}
    rows = await session.execute(select(Shop.id, Shop.name).where(Shop.id.in_(ids)))
    return {i: name for i, name in rows.all()}


@router.get("/orders")
async def my_orders(
    request: Request,
    session: Session,
    user: PageUser,
    status: Annotated[str | None, Query(max_length=20)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    notice: str = "",
) -> Response:
    chosen = status if status in STATUS_TABS else None
    params = page_params(cursor=cursor, limit=20)
    rows = await checkout.orders_of(
        session, user_id=user.id, status=chosen, before=params.before_id, limit=params.fetch
    )
    orders, next_cursor = split_page(rows, params, key=lambda o: o.id)
    return render(
        request,
        "checkout/orders.html",
        {
            "user": user,
            "tab": "me",
            "orders": await views.orders_out(session, orders),
            "shop_names": await _shop_names(session, orders),
            "status": chosen,
            "tabs": STATUS_TABS,
            "next_cursor": next_cursor,
            "notice": _cart_notice(notice),
        },
    )


async def _order_page(
    request: Request,
    session: AsyncSession,
    user: User,
    order_id: int,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    order = await checkout.own_order(session, user_id=user.id, order_id=order_id)
    return render(
        request,
        "checkout/order.html",
        {
            "user": user,
            "tab": "me",
            "shop_name": (await _shop_names(session, [order])).get(order.shop_id, ""),
            **await views.order_page_context(session, order),
            "notice": notice,
            "error": error,
        },
        status=status,
    )


@router.get("/orders/{order_id}")
async def order_page(
    request: Request, order_id: IdPath, session: Session, user: PageUser, notice: str = ""
) -> Response:
    return await _order_page(request, session, user, order_id, notice=_cart_notice(notice))


async def _act_on_order(
    request: Request,
    session: AsyncSession,
    user: User,
    order_id: int,
    csrf_token: str,
    action: Callable[[], Awaitable[object]],
    notice: str,
) -> Response:
    """Check the form, make one change, then show the order again: with the change, or with
    the broken rule's message."""
    verify_csrf(request, csrf_token)
    try:
        await action()
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _order_page(
            request, session, user, order_id, error=message_of(exc), status=exc.status
        )
    return see_other(f"/orders/{order_id}", notice)


@router.post("/orders/{order_id}/cancel")
async def cancel_order(
    request: Request, order_id: IdPath, session: Session, user: PageUser, csrf_token: Csrf
) -> Response:
    def action() -> Awaitable[object]:
        return checkout.cancel(session, user=user, order_id=order_id)

    return await _act_on_order(request, session, user, order_id, csrf_token, action, "cancelled")


@router.post("/orders/{order_id}/receive")
async def confirm_receipt(
    request: Request, order_id: IdPath, session: Session, user: PageUser, csrf_token: Csrf
) -> Response:
    def action() -> Awaitable[object]:
        return logistics.receive(session, user=user, order_id=order_id)

    return await _act_on_order(request, session, user, order_id, csrf_token, action, "received")


# --- wallet ----------------------------------------------------------------------------------


async def _wallet_page(
    request: Request,
    session: AsyncSession,
    user: User,
    *,
    cursor: str | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    currency = get_settings().default_currency
    params = page_params(cursor=cursor, limit=20)
    rows = await ledger.entries(
        session,
        money_domain.wallet(user.id),
        currency,
        before=params.before_id,
        limit=params.fetch,
    )
    entries, next_cursor = split_page(rows, params, key=lambda row: row[0].id)
    return render(
        request,
        "checkout/wallet.html",
        {
            "user": user,
            "tab": "me",
            "currency": currency,
            "balance": await payments.wallet_balance(session, user_id=user.id),
            "entries": entries,
            "next_cursor": next_cursor,
            "gateway": get_settings().payment_gateway != "none",
            "error": error,
        },
        status=status,
    )


@router.get("/me/wallet")
async def wallet_page(
    request: Request,
    session: Session,
    user: PageUser,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    return await _wallet_page(request, session, user, cursor=cursor)


@router.post("/me/wallet/top-up")
async def top_up(
    request: Request,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    amount: Annotated[str, Form(max_length=20)],
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        _payment, url = await payments.start_top_up(
            session,
            user=user,
            amount_minor=parse_amount(amount),
            return_url=get_settings().base_url + "/me/wallet",
        )
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _wallet_page(request, session, user, error=message_of(exc), status=exc.status)
    return RedirectResponse(url, status_code=303)
