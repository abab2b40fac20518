"""Cart, coupons, checkout by shop, wallet payment, idempotency, flash sales and refunds over
the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.catalog.domain import VariantSpec
from mobimart.catalog.models import Variant
from mobimart.checkout import service as checkout
from mobimart.checkout.models import Order
from mobimart.db import Database, settled, utcnow
from mobimart.merchants.models import Merchant
from mobimart.payments import ledger
from mobimart.payments.models import Payment
from mobimart.promotions import flashsale
from mobimart.promotions.models import FlashSale
from mobimart.settings import get_settings
from tests import factories
from tests.conftest import absent
from tests.integration.test_jobs import REDIS_URL

_refs = itertools.count(1)


async def _shops(db: Database, make_user: Any) -> dict[str, Any]:
    admin = await make_user(admin=True)
    owners = [await make_user(), await make_user()]
    merchants: list[Merchant] = [
        await factories.merchant(db, owner, admin=admin, n=n + 1) for n, owner in enumerate(owners)
    ]
    async with db.session() as s:
        mug = await catalog.create_product(
            s,
            merchant=merchants[0],
            name="Ceramic Mug",
            variants=[VariantSpec("MUG-R", 2500, 5, {"colour": "red"})],
            publish=True,
        )
        tea = await catalog.create_product(
            s, merchant=merchants[1], name="Green Tea", price_minor=4000, stock=10, publish=True
        )
        shops = {m.id: await catalog.shop_for(s, merchant=m) for m in merchants}
        for shop in shops.values():
            shop.shipping_minor = 800
        await s.commit()
        variants = {
            v.product_id: v.id
            for v in await s.scalars(
                select(Variant).where(Variant.product_id.in_([mug.id, tea.id]))
            )
        }
    return {
        "merchants": merchants,
        "owners": owners,
        "admin": admin,
        "mug": variants[mug.id],
        "tea": variants[tea.id],
    }


async def _buyer(
    client: httpx.AsyncClient, make_user: Any, auth_headers: Any
) -> tuple[User, dict[str, str], int]:
    user = await make_user()
    headers = await auth_headers(user)
    address = await client.post(
        "/api/v1/me/addresses",
        json={
            "recipient": "韩梅梅",
            "phone": "+8613912345678",
            "region": "上海市 徐汇区",
            "detail": "漕溪北路 1 号",
        },
        headers=headers,
    )
    assert address.status_code == 201, address.text
    return user, headers, address.json()["id"]


async def test_cart_prices_with_explanations_and_checks_out_one_order_per_shop(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shops(db, make_user)
    _, headers, address = await _buyer(client, make_user, auth_headers)
    owner_headers = await auth_headers(world["owners"][0])
    coupon = await client.post(
        f"/api/v1/merchants/{world['merchants'][0].id}/promotions",
        json={
            "name": "Spend 40 save 5",
            "kind": "spend_save",
            "scope": "order",
            "value": 500,
            "threshold_minor": 4000,
            "code": "mug5",
            "total_uses": 1,
        },
        headers=owner_headers,
    )
    assert coupon.status_code == 201, coupon.text
    assert coupon.json()["code"] == "MUG5"
    await client.put(f"/api/v1/cart/items/{world['mug']}", json={"quantity": 2}, headers=headers)
    cart = await client.put(
        f"/api/v1/cart/items/{world['tea']}", json={"quantity": 1}, headers=headers
    )
    assert cart.json()["total_minor"] == 2 * 2500 + 4000 + 2 * 800

    priced = (await client.get("/api/v1/cart?code=mug5&code=nope", headers=headers)).json()
    mug_line = next(x for x in priced["lines"] if x["variant_id"] == world["mug"])
    assert mug_line["discounts"] == [
        {"promotion_id": coupon.json()["id"], "name": "Spend 40 save 5", "amount_minor": 500}
    ]
    assert priced["unknown_codes"] == ["NOPE"]
    assert priced["total_minor"] == 5000 - 500 + 4000 + 1600

    placed = await client.post(
        "/api/v1/orders", json={"address_id": address, "codes": ["MUG5"]}, headers=headers
    )
    assert placed.status_code == 201, placed.text
    orders = placed.json()["orders"]
    assert [o["total_minor"] for o in orders] == [5000 - 500 + 800, 4000 + 800]
    assert {o["status"] for o in orders} == {"pending_payment"}
    assert orders[0]["lines"][0]["discount_minor"] == 500
    async with db.session() as s:
        assert (await s.get(Variant, world["mug"])).stock == 3  # type: ignore[union-attr]
    assert (await client.get("/api/v1/cart", headers=headers)).json()["lines"] == []

    # The coupon's one use is taken; a second buyer is told so.
    _, other, other_address = await _buyer(client, make_user, auth_headers)
    await client.put(f"/api/v1/cart/items/{world['mug']}", json={"quantity": 2}, headers=other)
    again = await client.post(
        "/api/v1/orders", json={"address_id": other_address, "codes": ["MUG5"]}, headers=other
    )
    assert again.status_code == 422, again.text
    assert again.json()["code"] == "coupon_not_applied"
    assert "used up" in again.json()["detail"]

    # Cancelling gives the stock and the coupon's use back.
    cancelled = await client.post(f"/api/v1/orders/{orders[0]['id']}/cancel", headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    async with db.session() as s:
        assert (await s.get(Variant, world["mug"])).stock == 5  # type: ignore[union-attr]
    retry = await client.post(
        "/api/v1/orders", json={"address_id": other_address, "codes": ["MUG5"]}, headers=other
    )
    assert retry.status_code == 201, retry.text


async def test_wallet_payment_is_charged_once_under_concurrent_retries(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shops(db, make_user)
    user, headers, address = await _buyer(client, make_user, auth_headers)
    await factories.credit(db, user, 20_000, f"test:{next(_refs)}")
    await client.put(f"/api/v1/cart/items/{world['tea']}", json={"quantity": 2}, headers=headers)
    placed = await client.post("/api/v1/orders", json={"address_id": address}, headers=headers)
    order_id = placed.json()["orders"][0]["id"]
    total = placed.json()["total_minor"]

    body = {"order_ids": [order_id], "method": "wallet"}
    key = {"Idempotency-Key": "pay-once-123", **headers}
    answers = await asyncio.gather(
        *(client.post("/api/v1/payments", json=body, headers=key) for _ in range(6))
    )
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 5
    async with db.session() as s:
        assert await s.scalar(select(func.count(Payment.id))) == 1
    wallet = (await client.get("/api/v1/me/wallet", headers=headers)).json()
    assert wallet["balance_minor"] == 20_000 - total
    assert [e["kind"] for e in wallet["entries"]] == ["payment", "top_up"]
    order = (await client.get(f"/api/v1/orders/{order_id}", headers=headers)).json()
    assert order["status"] == "paid"

    reused = await client.post("/api/v1/payments", json={**body, "method": "gateway"}, headers=key)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    # Without a key, paying again is refused by the order's own state.
    again = await client.post("/api/v1/payments", json=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "not_payable"
    async with db.session() as s:
        assert (await ledger.check(s)).ok


async def test_wallet_cannot_go_below_zero_even_in_parallel(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shops(db, make_user)
    user, headers, address = await _buyer(client, make_user, auth_headers)
    order_ids = []
    for _ in range(3):
        await client.put(
            f"/api/v1/cart/items/{world['tea']}", json={"quantity": 1}, headers=headers
        )
        placed = await client.post("/api/v1/orders", json={"address_id": address}, headers=headers)
        order_ids.append(placed.json()["orders"][0]["id"])
    await factories.credit(db, user, 4800 * 2, f"test:{next(_refs)}")  # enough for two
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/v1/payments", json={"order_ids": [i], "method": "wallet"}, headers=headers
            )
            for i in order_ids
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 201, 409]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["code"] == "insufficient_funds"
    wallet = (await client.get("/api/v1/me/wallet", headers=headers)).json()
    assert wallet["balance_minor"] == 0
    async with db.session() as s:
        assert (await ledger.check(s)).ok


async def test_refunds_go_back_to_the_wallet_in_parts_and_in_full(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shops(db, make_user)
    user, headers, address = await _buyer(client, make_user, auth_headers)
    await factories.credit(db, user, 10_000, f"test:{next(_refs)}")
    await client.put(f"/api/v1/cart/items/{world['mug']}", json={"quantity": 2}, headers=headers)
    placed = (
        await client.post("/api/v1/orders", json={"address_id": address}, headers=headers)
    ).json()
    order = placed["orders"][0]
    paid = await client.post(
        "/api/v1/payments", json={"order_ids": [order["id"]], "method": "wallet"}, headers=headers
    )
    assert paid.status_code == 201
    merchant = world["merchants"][0].id
    owner = await auth_headers(world["owners"][0])
    url = f"/api/v1/merchants/{merchant}/orders/{order['id']}/refunds"
    part = await client.post(url, json={"amount_minor": 1000, "reason": "chipped"}, headers=owner)
    assert part.status_code == 201, part.text
    assert part.json()["status"] == "refunded"
    too_much = await client.post(url, json={"amount_minor": order["total_minor"]}, headers=owner)
    assert too_much.status_code == 422
    stranger = await auth_headers(world["owners"][1])
    assert (await client.post(url, json={}, headers=stranger)).status_code == 404
    rest = await client.post(url, json={}, headers=owner)
    assert rest.json()["amount_minor"] == order["total_minor"] - 1000
    back = (await client.get(f"/api/v1/orders/{order['id']}", headers=headers)).json()
    assert back["status"] == "cancelled"
    assert back["refunded_minor"] == order["total_minor"]
    wallet = (await client.get("/api/v1/me/wallet", headers=headers)).json()
    assert wallet["balance_minor"] == 10_000
    balance = (await client.get(f"/api/v1/merchants/{merchant}/balance", headers=owner)).json()
    assert balance["pending_minor"] == 0
    async with db.session() as s:
        assert (await s.get(Variant, world["mug"])).stock == 5  # type: ignore[union-attr]
        assert (await ledger.check(s)).ok


@pytest.fixture(params=["database", "redis"])
def flash_counter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where flash sales count: the database (default) or Redis (`MOBIMART_REDIS_URL`)."""
    if request.param == "redis":
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
        except redis.RedisError:
            absent(f"Redis not reachable at {REDIS_URL}")
        monkeypatch.setattr(get_settings(), "redis_url", REDIS_URL)
    return str(request.param)


async def test_flash_sale_never_oversells_and_holds_the_limit_per_person(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    flash_counter: str,
) -> None:
    world = await _shops(db, make_user)
    owner = await auth_headers(world["owners"][1])
    now = utcnow()
    sale = await client.post(
        f"/api/v1/merchants/{world['merchants'][1].id}/flash-sales",
        json={
            "variant_id": world["tea"],
            "price_minor": 990,
            "quantity": 4,
            "per_person": 1,
            "starts_at": (now - dt.timedelta(seconds=5)).isoformat(),
            "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
        },
        headers=owner,
    )
    assert sale.status_code == 201, sale.text
    sale_id = sale.json()["id"]
    async with db.session() as s:
        assert (await s.get(Variant, world["tea"])).stock == 6  # type: ignore[union-attr]
    buyers = [await _buyer(client, make_user, auth_headers) for _ in range(12)]
    answers = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/flash-sales/{sale_id}/orders",
                json={"address_id": address},
                headers=headers,
            )
            for _, headers, address in buyers
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 4 + [409] * 8, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"sold_out"}
    won = next(i for i, a in enumerate(answers) if a.status_code == 201)
    order = answers[won].json()
    assert order["lines"][0]["unit_price_minor"] == 990
    assert order["total_minor"] == 990 + 800
    _, headers, address = buyers[won]
    twice = await client.post(
        f"/api/v1/flash-sales/{sale_id}/orders", json={"address_id": address}, headers=headers
    )
    assert twice.status_code == 409
    assert (await client.get(f"/api/v1/flash-sales/{sale_id}")).json()["sold"] == 4
    if flash_counter == "redis":  # the count lives in Redis, not in the sale's row
        import redis

        from mobimart.promotions.flashsale import RedisCounter

        async with db.session() as s:
            row = await s.get(FlashSale, sale_id)
            assert row is not None
            assert row.sold == 0
        sold_key = RedisCounter(REDIS_URL)._keys(row)[0]
        assert redis.Redis.from_url(REDIS_URL).get(sold_key) == b"4"
        # A cancellation that rolls back frees nothing in Redis.
        async with db.session() as s:
            held = await s.get(Order, order["id"])
            assert held is not None
            assert await checkout.release(s, order=held, reason="test")
            await s.rollback()
        await settled()
        assert redis.Redis.from_url(REDIS_URL).get(sold_key) == b"4"

    # An unpaid flash order past its time gives its unit back to the sale.
    async with db.session() as s:
        released = await checkout.release_expired(s, now=utcnow() + dt.timedelta(hours=1))
    assert released == 4
    await settled()  # Redis hears of a cancellation once it has committed
    assert (await client.get(f"/api/v1/flash-sales/{sale_id}")).json()["sold"] == 0


async def test_coupon_limits_hold_when_many_check_out_at_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shops(db, make_user)
    owner = await auth_headers(world["owners"][1])
    coupon = await client.post(
        f"/api/v1/merchants/{world['merchants'][1].id}/promotions",
        json={
            "name": "Ten off",
            "kind": "fixed",
            "scope": "order",
            "value": 1000,
            "code": "TEN",
            "total_uses": 5,
            "budget_minor": 3000,  # the budget runs out first: three uses
        },
        headers=owner,
    )
    assert coupon.status_code == 201, coupon.text
    buyers = [await _buyer(client, make_user, auth_headers) for _ in range(8)]
    for _, headers, _ in buyers:
        await client.put(
            f"/api/v1/cart/items/{world['tea']}", json={"quantity": 1}, headers=headers
        )
    answers = await asyncio.gather(
        *(
            client.post(
                "/api/v1/orders", json={"address_id": address, "codes": ["TEN"]}, headers=headers
            )
            for _, headers, address in buyers
        )
    )
    assert sum(a.status_code == 201 for a in answers) == 3, [a.text for a in answers]
    # The others are told why: the coupon ran out while they checked out, or before.
    refused = {(a.status_code, a.json()["code"]) for a in answers if a.status_code != 201}
    assert refused <= {(409, "promotion_used_up"), (422, "coupon_not_applied")}, refused
    listed = (
        await client.get(f"/api/v1/merchants/{world['merchants'][1].id}/promotions", headers=owner)
    ).json()
    row = next(p for p in listed["items"] if p["code"] == "TEN")
    assert (row["used"], row["spent_minor"]) == (3, 3000)
    async with db.session() as s:
        assert (await s.get(Variant, world["tea"])).stock == 10 - 3  # type: ignore[union-attr]


async def test_placing_the_same_cart_twice_at_once_makes_one_set_of_orders(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    """A double tap on "Place order" without an Idempotency-Key: one order, stock taken once."""
    world = await _shops(db, make_user)
    _, headers, address = await _buyer(client, make_user, auth_headers)
    await client.put(f"/api/v1/cart/items/{world['mug']}", json={"quantity": 2}, headers=headers)
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/orders", json={"address_id": address}, headers=headers)
            for _ in range(4)
        )
    )
    assert sorted(a.status_code for a in answers)[0] == 201
    assert sum(a.status_code == 201 for a in answers) == 1, [a.text for a in answers]
    assert {a.status_code for a in answers} <= {201, 409, 422}
    mine = (await client.get("/api/v1/orders", headers=headers)).json()
    assert len(mine["items"]) == 1
    async with db.session() as s:
        assert (await s.get(Variant, world["mug"])).stock == 5 - 2  # type: ignore[union-attr]


async def test_flash_sale_retry_with_its_key_gets_the_order_after_the_sale_sells_out(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shops(db, make_user)
    now = utcnow()
    sale = await client.post(
        f"/api/v1/merchants/{world['merchants'][1].id}/flash-sales",
        json={
            "variant_id": world["tea"],
            "price_minor": 990,
            "quantity": 1,
            "starts_at": (now - dt.timedelta(seconds=5)).isoformat(),
            "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
        },
        headers=await auth_headers(world["owners"][1]),
    )
    url = f"/api/v1/flash-sales/{sale.json()['id']}/orders"
    _, headers, address = await _buyer(client, make_user, auth_headers)
    keyed = {"Idempotency-Key": "grab-the-tea", **headers}
    first = await client.post(url, json={"address_id": address}, headers=keyed)
    assert first.status_code == 201, first.text
    retry = await client.post(url, json={"address_id": address}, headers=keyed)  # lost answer
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]
    _, other, other_address = await _buyer(client, make_user, auth_headers)
    late = await client.post(url, json={"address_id": other_address}, headers=other)
    assert late.status_code == 409
    assert late.json()["code"] == "sold_out"


async def test_a_coupon_use_comes_back_only_with_the_last_order_of_its_checkout(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shops(db, make_user)
    admin = await auth_headers(world["admin"])
    coupon = await client.post(
        "/api/v1/admin/promotions",
        json={
            "name": "Site five",
            "kind": "fixed",
            "scope": "order",
            "value": 500,
            "code": "SITE5",
            "per_person": 1,
        },
        headers=admin,
    )
    assert coupon.status_code == 201, coupon.text
    _, headers, address = await _buyer(client, make_user, auth_headers)

    async def check_out() -> httpx.Response:
        for item in ("mug", "tea"):
            await client.put(
                f"/api/v1/cart/items/{world[item]}", json={"quantity": 1}, headers=headers
            )
        return await client.post(
            "/api/v1/orders", json={"address_id": address, "codes": ["SITE5"]}, headers=headers
        )

    placed = await check_out()
    assert placed.status_code == 201, placed.text
    first, second = (o["id"] for o in placed.json()["orders"])  # one per shop, both discounted
    await client.post(f"/api/v1/orders/{first}/cancel", headers=headers)
    refused = await check_out()  # the other order still carries the coupon
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "coupon_not_applied"
    await client.post(f"/api/v1/orders/{second}/cancel", headers=headers)
    again = await check_out()
    assert again.status_code == 201, again.text


async def test_an_ended_flash_sale_returns_every_unit_it_did_not_sell(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:

    world = await _shops(db, make_user)
    now = utcnow()
    sale = await client.post(
        f"/api/v1/merchants/{world['merchants'][1].id}/flash-sales",
        json={
            "variant_id": world["tea"],
            "price_minor": 990,
            "quantity": 3,
            "starts_at": (now - dt.timedelta(seconds=5)).isoformat(),
            "ends_at": (now + dt.timedelta(hours=1)).isoformat(),
        },
        headers=await auth_headers(world["owners"][1]),
    )
    url = f"/api/v1/flash-sales/{sale.json()['id']}/orders"
    _, keeper, a1 = await _buyer(client, make_user, auth_headers)
    _, quitter, a2 = await _buyer(client, make_user, auth_headers)
    kept = await client.post(url, json={"address_id": a1}, headers=keeper)
    dropped = await client.post(url, json={"address_id": a2}, headers=quitter)
    await client.post(f"/api/v1/orders/{dropped.json()['id']}/cancel", headers=quitter)

    async def stock() -> int:
        async with db.session() as s:
            return (await s.get(Variant, world["tea"])).stock  # type: ignore[union-attr]

    assert await stock() == 10 - 3
    async with db.session() as s:
        assert await flashsale.close_ended(s, now=now + dt.timedelta(hours=2)) == 1
    assert await stock() == 10 - 1  # the unsold two (one of them given back) are in stock
    async with db.session() as s:
        assert await flashsale.close_ended(s, now=now + dt.timedelta(hours=2)) == 0
    # The kept order is cancelled after the close: its unit goes to the stock, not the sale.
    await client.post(f"/api/v1/orders/{kept.json()['id']}/cancel", headers=keeper)
    assert await stock() == 10
