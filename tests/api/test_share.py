"""Pay-for-me: a buyer shares an unpaid order and a friend pays it, over the API and the pages,
on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.catalog.domain import VariantSpec
from mobimart.catalog.models import Variant
from mobimart.checkout.models import Order
from mobimart.db import Database
from mobimart.payments.models import Payment
from mobimart.settings import get_settings
from mobimart.signing import token_digest
from mobimart.web.deps import SESSION_COOKIE
from mobimart.web.templating import CSRF_COOKIE
from tests import factories

_refs = itertools.count(1)
CSRF = "s" * 43
RECIPIENT, PHONE, REGION, STREET = "韩梅梅", "+8613912345678", "上海市 徐汇区", "漕溪北路 88 号"


@dataclass
class Placed:
    buyer: User
    headers: dict[str, str]
    order: dict[str, Any]


async def _placed_order(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> Placed:
    admin, owner = await make_user(admin=True), await make_user()
    merchant = await factories.merchant(db, owner, admin=admin)
    async with db.session() as s:
        product = await catalog.create_product(
            s,
            merchant=merchant,
            name="Ceramic Mug",
            variants=[VariantSpec("MUG-B", 2500, 5, {"colour": "blue"})],
            publish=True,
        )
        (await catalog.shop_for(s, merchant=merchant)).shipping_minor = 800
        await s.commit()
        variant = await s.scalar(select(Variant.id).where(Variant.product_id == product.id))
    buyer = await make_user(name="Meimei")
    headers = await auth_headers(buyer)
    address = await client.post(
        "/api/v1/me/addresses",
        json={"recipient": RECIPIENT, "phone": PHONE, "region": REGION, "detail": STREET},
        headers=headers,
    )
    await client.put(f"/api/v1/cart/items/{variant}", json={"quantity": 2}, headers=headers)
    placed = await client.post(
        "/api/v1/orders",
        json={"address_id": address.json()["id"], "note": "ring twice"},
        headers=headers,
    )
    assert placed.status_code == 201, placed.text
    return Placed(buyer, headers, placed.json()["orders"][0])


async def _share(client: httpx.AsyncClient, placed: Placed) -> str:
    shared = await client.post(f"/api/v1/orders/{placed.order['id']}/share", headers=placed.headers)
    assert shared.status_code == 201, shared.text
    url = str(shared.json()["url"])
    assert url.startswith(get_settings().base_url + "/pay/s/")
    assert shared.json()["expires_at"] == placed.order["expires_at"]
    return url.rsplit("/", 1)[1]


def _leaks(text: str) -> list[str]:
    return [
        p
        for p in (RECIPIENT, PHONE, PHONE[3:], PHONE[-4:], STREET, REGION, "ring twice")
        if p in text
    ]


async def test_a_friend_pays_the_shared_order_and_the_link_dies(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    placed = await _placed_order(client, db, make_user, auth_headers)
    await factories.credit(db, placed.buyer, 10_000, f"test:{next(_refs)}")
    token = await _share(client, placed)
    async with db.session() as s:
        order = await s.get(Order, placed.order["id"])
        assert order is not None
        assert order.share_hash == token_digest(token)
        assert token not in order.share_hash

    seen = await client.get(f"/api/v1/shared-orders/{token}")  # the friend need not sign in
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert body["shop_name"] == "Test shop 1"
    assert body["requested_by"] == "Meimei"
    assert body["lines"] == [
        {
            "name": "Ceramic Mug",
            "options": {"colour": "blue"},
            "quantity": 2,
            "unit_price_minor": 2500,
            "total_minor": 5000,
        }
    ]
    assert body["total_minor"] == placed.order["total_minor"] == 5800
    assert _leaks(seen.text) == []

    friend = await make_user(name="Lei")
    friend_headers = await auth_headers(friend)
    await factories.credit(db, friend, 6000, f"test:{next(_refs)}")
    keyed = {**friend_headers, "Idempotency-Key": "for-meimei"}
    url = f"/api/v1/shared-orders/{token}/pay"
    paid = await client.post(url, json={"method": "wallet"}, headers=keyed)
    assert paid.status_code == 201, paid.text
    assert paid.json()["order_ids"] == [placed.order["id"]]
    # The link is dead once paid, yet the friend's retry still replays the first answer.
    replay = await client.post(url, json={"method": "wallet"}, headers=keyed)
    assert replay.status_code == 201
    assert replay.json()["id"] == paid.json()["id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    reused = await client.post(url, json={"method": "gateway"}, headers=keyed)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"

    assert (await client.get(f"/api/v1/shared-orders/{token}")).status_code == 404
    again = await client.post(url, json={"method": "wallet"}, headers=friend_headers)
    assert again.status_code == 404
    assert again.json()["code"] == "share_link_dead"
    order_now = await client.get(f"/api/v1/orders/{placed.order['id']}", headers=placed.headers)
    assert order_now.json()["status"] == "paid"
    wallets = [
        (await client.get("/api/v1/me/wallet", headers=h)).json()["balance_minor"]
        for h in (placed.headers, friend_headers)
    ]
    assert wallets == [10_000, 200]  # the friend paid, not the buyer
    async with db.session() as s:
        payment = await s.get(Payment, paid.json()["id"])
        assert payment is not None
        assert payment.payer_id == friend.id
        assert (await s.get(Order, placed.order["id"])).share_hash is None  # type: ignore[union-attr]


async def test_the_link_dies_when_the_order_is_cancelled_or_relinked(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    placed = await _placed_order(client, db, make_user, auth_headers)
    first = await _share(client, placed)
    second = await _share(client, placed)
    assert (await client.get(f"/api/v1/shared-orders/{first}")).status_code == 404
    assert (await client.get(f"/api/v1/shared-orders/{second}")).status_code == 200

    cancelled = await client.post(
        f"/api/v1/orders/{placed.order['id']}/cancel", headers=placed.headers
    )
    assert cancelled.json()["status"] == "cancelled"
    gone = await client.get(f"/api/v1/shared-orders/{second}")
    assert gone.status_code == 410
    assert gone.json()["code"] == "share_link_dead"
    friend = await make_user()
    friend_headers = await auth_headers(friend)
    await factories.credit(db, friend, 10_000, f"test:{next(_refs)}")
    pay = await client.post(
        f"/api/v1/shared-orders/{second}/pay", json={"method": "wallet"}, headers=friend_headers
    )
    assert pay.status_code == 410
    relink = await client.post(f"/api/v1/orders/{placed.order['id']}/share", headers=placed.headers)
    assert relink.status_code == 409
    assert relink.json()["code"] == "not_payable"


async def test_only_the_buyer_shares_and_a_short_friend_is_refused(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    placed = await _placed_order(client, db, make_user, auth_headers)
    stranger = await auth_headers(await make_user())
    theirs = await client.post(f"/api/v1/orders/{placed.order['id']}/share", headers=stranger)
    assert theirs.status_code == 404
    token = await _share(client, placed)
    friend = await make_user()
    await factories.credit(db, friend, 1000, f"test:{next(_refs)}")
    short = await client.post(
        f"/api/v1/shared-orders/{token}/pay",
        json={"method": "wallet"},
        headers=await auth_headers(friend),
    )
    assert short.status_code == 409
    assert short.json()["code"] == "insufficient_funds"
    assert (await client.get(f"/api/v1/shared-orders/{token}")).status_code == 200


@asynccontextmanager
async def _browser(app: Any, db: Database, user: User | None) -> AsyncIterator[httpx.AsyncClient]:
    cookies = {CSRF_COOKIE: CSRF}
    if user is not None:
        async with db.session() as s:
            fresh = await s.get(User, user.id)
            assert fresh is not None
            cookies[SESSION_COOKIE], _ = await accounts.issue_token(s, user=fresh, kind="session")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies=cookies
    ) as c:
        yield c


async def test_share_pages_show_no_address_and_let_a_friend_pay(
    app: Any, client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    placed = await _placed_order(client, db, make_user, auth_headers)
    async with _browser(app, db, placed.buyer) as buyer:
        made = await buyer.post(
            "/pay/s", data={"order_id": str(placed.order["id"]), "csrf_token": CSRF}
        )
        assert made.status_code == 200
        assert made.headers["cache-control"] == "private, no-store"
        assert 'id="share-qr"' in made.text
    start = made.text.index('id="share-url"')
    url = made.text[start:].split('value="', 1)[1].split('"', 1)[0]
    path = url.removeprefix(get_settings().base_url)
    assert path.startswith("/pay/s/")

    async with _browser(app, db, None) as anonymous:
        page = await anonymous.get(path)
    assert page.status_code == 200
    assert "Ceramic Mug" in page.text
    assert "¥58.00" in page.text
    assert "Meimei asked you to pay" in page.text
    assert f'href="/signin?next={path}"' in page.text
    assert _leaks(page.text) == []

    friend = await make_user()
    await factories.credit(db, friend, 6000, f"test:{next(_refs)}")
    async with _browser(app, db, friend) as phone:
        page = await phone.get(path)
        assert "Pay ¥58.00 from wallet" in page.text
        assert _leaks(page.text) == []
        paid = await phone.post(path, data={"csrf_token": CSRF})
        assert paid.status_code == 200
        assert "You paid ¥58.00" in paid.text
        dead = await phone.get(path)
        assert dead.status_code == 404
    order_now = await client.get(f"/api/v1/orders/{placed.order['id']}", headers=placed.headers)
    assert order_now.json()["status"] == "paid"
