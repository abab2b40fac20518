"""The shopper's and the merchant's order pages over HTTP: a guest cart kept through sign-in,
checkout with a coupon, paying from the wallet, shipping and tracking, refunds from the
console. The browser test in tests/e2e walks the same path in Chromium."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.catalog.models import Variant
from mobimart.checkout.models import Order
from mobimart.db import Database
from mobimart.payments import ledger
from mobimart.payments.models import Refund
from mobimart.web.deps import SESSION_COOKIE
from tests import factories
from tests.api.test_pages import csrf_of


async def _session(db: Database, user: User) -> str:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return token


async def _shop(db: Database, make_user: Any) -> dict[str, Any]:
    admin, owner = await make_user(admin=True), await make_user()
    merchant = await factories.merchant(db, owner, admin=admin, n=1)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name="Ceramic Mug", price_minor=2500, stock=5, publish=True
        )
        shop = await catalog.shop_for(s, merchant=merchant)
        shop.shipping_minor = 800
        await s.commit()
        variant = await s.scalar(select(Variant).where(Variant.product_id == product.id))
        assert variant is not None
    return {"merchant": merchant, "owner": owner, "product": product.id, "variant": variant.id}


async def _add(client: httpx.AsyncClient, world: dict[str, Any], quantity: int) -> httpx.Response:
    page = await client.get(f"/products/{world['product']}")
    assert 'id="add-to-cart"' in page.text
    return await client.post(
        "/cart/items",
        data={
            "variant_id": world["variant"],
            "quantity": quantity,
            "csrf_token": csrf_of(page.text),
        },
    )


async def test_guest_cart_is_kept_through_sign_in(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    world = await _shop(db, make_user)
    empty = await client.get("/cart")
    assert "Your cart is empty" in empty.text

    added = await _add(client, world, 2)
    assert added.status_code == 303
    assert "mm_cart" in added.headers["set-cookie"]
    assert "HttpOnly" in added.headers["set-cookie"]
    cart = await client.get("/cart")
    assert "Ceramic Mug" in cart.text
    assert "¥58.00" in cart.text  # 2 × 25.00 + 8.00 shipping

    # The person already had one in their own cart: signing in adds the guest's two.
    buyer = await make_user()
    await factories.credit(db, buyer, 10_000, "guest-merge")
    client.cookies.set(SESSION_COOKIE, await _session(db, buyer))
    await _add(client, world, 1)  # goes to the person's cart and merges the guest's
    merged = await client.get("/cart")
    assert re.search(r'name="quantity"[^>]*value="3"', merged.text), merged.text
    assert "mm_cart" not in client.cookies


async def test_checkout_with_coupon_pay_ship_track_and_refund(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shop(db, make_user)
    owner_headers = await auth_headers(world["owner"])
    coupon = await client.post(
        f"/api/v1/merchants/{world['merchant'].id}/promotions",
        json={"name": "Five off", "kind": "fixed", "scope": "order", "value": 500, "code": "mug5"},
        headers=owner_headers,
    )
    assert coupon.status_code == 201, coupon.text
    buyer = await make_user()
    await factories.credit(db, buyer, 10_000, "pages-flow")
    client.cookies.set(SESSION_COOKIE, await _session(db, buyer))
    await _add(client, world, 2)

    cart = await client.get("/cart?code=mug5")
    assert "−¥5.00 · Five off" in cart.text
    assert "¥53.00" in cart.text
    assert 'href="/checkout?code=MUG5"' in cart.text

    checkout = await client.get("/checkout?code=MUG5")
    assert "Where should it go?" in checkout.text
    bad = await client.post(
        "/checkout/addresses",
        data={
            "recipient": "Han",
            "phone": "12",
            "region": "Shanghai",
            "detail": "1 Road",
            "code": "MUG5",
            "csrf_token": csrf_of(checkout.text),
        },
    )
    assert bad.status_code == 422
    assert 'value="MUG5"' in bad.text  # the coupon is still there
    saved = await client.post(
        "/checkout/addresses",
        data={
            "recipient": "Han",
            "phone": "13912345678",
            "region": "Shanghai",
            "detail": "1 Road",
            "code": "MUG5",
            "csrf_token": csrf_of(checkout.text),
        },
    )
    assert saved.headers["location"].startswith("/checkout?notice=address&code=MUG5")
    checkout = await client.get("/checkout?code=MUG5")
    address_id = re.search(r'name="address_id" value="(\d+)"', checkout.text)
    assert address_id
    placed = await client.post(
        "/checkout",
        data={
            "address_id": address_id.group(1),
            "code": "MUG5",
            "csrf_token": csrf_of(checkout.text),
        },
    )
    assert placed.status_code == 303
    assert placed.headers["location"].startswith("/pay?order=")
    pay = await client.get(placed.headers["location"])
    assert "¥53.00" in pay.text
    order_id = int(placed.headers["location"].split("=")[1])
    paid = await client.post(
        "/pay", data={"order": order_id, "method": "wallet", "csrf_token": csrf_of(pay.text)}
    )
    assert paid.headers["location"] == f"/orders/{order_id}?notice=paid"
    again = await client.post(  # the same form sent twice charges once
        "/pay", data={"order": order_id, "method": "wallet", "csrf_token": csrf_of(pay.text)}
    )
    assert again.status_code == 409
    async with db.session() as s:
        from mobimart.payments import domain

        assert await ledger.balance(s, domain.wallet(buyer.id), "CNY") == 10_000 - 5300
    listed = (await client.get("/orders")).text.split('id="order-list"')[1]
    assert "badge-order-paid" in listed
    assert "badge-order-pending_payment" not in listed

    # The merchant sees the order with the buyer's number masked, ships and adds a step.
    client.cookies.set(SESSION_COOKIE, await _session(db, world["owner"]))
    base = f"/console/{world['merchant'].id}/orders"
    listing = await client.get(base)
    assert f"{base}/{order_id}" in listing.text
    detail = await client.get(f"{base}/{order_id}")
    assert "139****5678" in detail.text
    assert "13912345678" not in detail.text
    token = csrf_of(detail.text)
    shipped = await client.post(
        f"{base}/{order_id}/ship",
        data={"carrier": "sf", "tracking_number": "SF1234567890", "csrf_token": token},
    )
    assert shipped.headers["location"] == f"{base}/{order_id}?notice=shipped"
    await client.post(
        f"{base}/{order_id}/tracking",
        data={
            "status": "in_transit",
            "description": "Left the Shanghai hub",
            "location": "Shanghai",
            "csrf_token": token,
        },
    )

    client.cookies.set(SESSION_COOKIE, await _session(db, buyer))
    order_page = await client.get(f"/orders/{order_id}")
    assert "SF1234567890" in order_page.text
    assert "Left the Shanghai hub" in order_page.text
    assert "Shipped" in order_page.text

    # A partial refund sent twice from the same form refunds once.
    client.cookies.set(SESSION_COOKIE, await _session(db, world["owner"]))
    detail = await client.get(f"{base}/{order_id}")
    form = {
        "amount": "10.00",
        "reason": "chipped",
        "seen_refunded": "0",
        "csrf_token": csrf_of(detail.text),
    }
    first = await client.post(f"{base}/{order_id}/refund", data=form)
    assert first.status_code == 303
    second = await client.post(f"{base}/{order_id}/refund", data=form)
    assert second.status_code == 409
    async with db.session() as s:
        refunds = list(await s.scalars(select(Refund).where(Refund.order_id == order_id)))
        assert [r.amount_minor for r in refunds] == [1000]
        order = await s.get(Order, order_id)
        assert order is not None
        assert order.refunded_minor == 1000

    # The buyer cannot cancel a shipped order from its page, and confirms receipt instead.
    client.cookies.set(SESSION_COOKIE, await _session(db, buyer))
    page = await client.get(f"/orders/{order_id}")
    cancel = await client.post(
        f"/orders/{order_id}/cancel", data={"csrf_token": csrf_of(page.text)}
    )
    assert cancel.status_code == 409
    assert "ask the shop for a refund" in cancel.text
    received = await client.post(
        f"/orders/{order_id}/receive", data={"csrf_token": csrf_of(page.text)}
    )
    assert received.headers["location"] == f"/orders/{order_id}?notice=received"
    done = await client.get(received.headers["location"])
    assert "Thank you! The order is complete." in done.text
    assert "badge-order-completed" in done.text


async def test_another_merchant_cannot_open_or_ship_the_order(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    world = await _shop(db, make_user)
    buyer = await make_user()
    await factories.credit(db, buyer, 10_000, "other-merchant")
    client.cookies.set(SESSION_COOKIE, await _session(db, buyer))
    await _add(client, world, 1)
    checkout = await client.get("/checkout")
    await client.post(
        "/checkout/addresses",
        data={
            "recipient": "Han",
            "phone": "13912345678",
            "region": "Shanghai",
            "detail": "1 Road",
            "csrf_token": csrf_of(checkout.text),
        },
    )
    checkout = await client.get("/checkout")
    address_id = re.search(r'name="address_id" value="(\d+)"', checkout.text)
    assert address_id
    placed = await client.post(
        "/checkout",
        data={"address_id": address_id.group(1), "csrf_token": csrf_of(checkout.text)},
    )
    order_id = int(placed.headers["location"].split("=")[1])

    admin, other_owner = await make_user(admin=True), await make_user()
    other = await factories.merchant(db, other_owner, admin=admin, n=2)
    client.cookies.set(SESSION_COOKIE, await _session(db, other_owner))
    assert (await client.get(f"/console/{other.id}/orders/{order_id}")).status_code == 404
    page = await client.get(f"/console/{other.id}/orders")
    assert "No orders here yet" in page.text
    refused = await client.post(
        f"/console/{world['merchant'].id}/orders/{order_id}/ship",
        data={"carrier": "sf", "tracking_number": "X1234", "csrf_token": client.cookies["mm_csrf"]},
    )
    assert refused.status_code == 404
    # Nor can another shopper see it.
    stranger = await make_user()
    client.cookies.set(SESSION_COOKIE, await _session(db, stranger))
    assert (await client.get(f"/orders/{order_id}")).status_code == 404
    assert (await client.get(f"/pay?order={order_id}")).status_code == 404
