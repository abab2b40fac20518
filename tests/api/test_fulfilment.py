"""After payment: the shop ships, carriers report the parcel's journey by signed callbacks,
the buyer confirms receipt (or the order completes by itself) and the shop is settled, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from mobimart import signing
from mobimart.checkout.models import Order
from mobimart.checkout.tasks import housekeeping
from mobimart.db import Database, utcnow
from mobimart.logistics import service as logistics
from mobimart.payments import ledger
from mobimart.payments import service as payments
from mobimart.settings import get_settings
from mobimart.webhooks.models import WebhookDelivery
from tests import factories
from tests.api.test_checkout import _buyer, _shops

_refs = itertools.count(1)
MUG_ORDER = 2 * 2500 + 800  # two mugs and shipping


async def _paid_order(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> dict[str, Any]:
    """Merchant 0's order of two mugs, paid from the buyer's wallet."""
    world = await _shops(db, make_user)
    user, headers, address = await _buyer(client, make_user, auth_headers)
    await factories.credit(db, user, 20_000, f"fulfilment:{next(_refs)}")
    await client.put(f"/api/v1/cart/items/{world['mug']}", json={"quantity": 2}, headers=headers)
    placed = await client.post("/api/v1/orders", json={"address_id": address}, headers=headers)
    order = placed.json()["orders"][0]
    paid = await client.post(
        "/api/v1/payments", json={"order_ids": [order["id"]], "method": "wallet"}, headers=headers
    )
    assert paid.status_code == 201, paid.text
    assert order["total_minor"] == MUG_ORDER
    merchant = world["merchants"][0].id
    return {
        **world,
        "buyer": headers,
        "owner": await auth_headers(world["owners"][0]),
        "other_owner": await auth_headers(world["owners"][1]),
        "order": order["id"],
        "base": f"/api/v1/merchants/{merchant}/orders/{order['id']}",
        "merchant": merchant,
    }


def _signed(payload: dict[str, Any], *, at: int | None = None) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    secret = get_settings().carrier_secret.get_secret_value()
    header = signing.sign(secret, int(time.time()) if at is None else at, body)
    return {
        "content": body,
        "headers": {"Content-Type": "application/json", "X-Carrier-Signature": header},
    }


def _event(event_id: str, status: str, minutes_ago: int) -> dict[str, str]:
    at = utcnow() - dt.timedelta(minutes=minutes_ago)
    return {
        "id": event_id,
        "status": status,
        "description": status.replace("_", " "),
        "location": "上海",
        "occurred_at": at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat(),
    }


async def _balance(client: httpx.AsyncClient, w: dict[str, Any]) -> dict[str, int]:
    answer = await client.get(f"/api/v1/merchants/{w['merchant']}/balance", headers=w["owner"])
    data: dict[str, int] = answer.json()
    return data


async def test_ship_track_deliver_receive_and_settle_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    hook = await client.post(
        f"/api/v1/merchants/{w['merchant']}/webhooks",
        json={
            "url": "https://hooks.example.com/mm",
            "events": ["order.shipped", "order.delivered", "order.completed"],
        },
        headers=w["owner"],
    )
    assert hook.status_code == 201, hook.text

    shipped = await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "sf", "tracking_number": "sf 1234 5678 90"},
        headers=w["owner"],
    )
    assert shipped.status_code == 201, shipped.text
    assert shipped.json()["tracking_number"] == "SF1234567890"
    assert shipped.json()["carrier_name"] == "SF Express"
    again = await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "sf", "tracking_number": "SF1234567890"},
        headers=w["owner"],
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_shipped"
    mine = (await client.get(f"/api/v1/orders/{w['order']}", headers=w["buyer"])).json()
    assert mine["status"] == "shipped"
    assert mine["shipped_at"] is not None

    # The shop enters a step itself; the carrier reports two, then again with the delivery.
    two_hours_ago = (utcnow() - dt.timedelta(hours=2)).isoformat()
    staff_step = await client.post(
        f"{w['base']}/tracking-events",
        json={"status": "picked_up", "description": "Handed over", "occurred_at": two_hours_ago},
        headers=w["owner"],
    )
    assert staff_step.status_code == 201, staff_step.text
    assert staff_step.json()["source"] == "staff"
    url = "/api/v1/logistics/carriers/sf/events"
    # Carriers batch events in any order; the timeline goes by when each happened.
    first = [_event("e2", "out_for_delivery", 20), _event("e1", "in_transit", 50)]
    payload = {"tracking_number": "SF1234567890", "events": first}
    answer = await client.post(url, **_signed(payload))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"recorded": 2, "duplicates": 0}
    balance_before = await _balance(client, w)
    assert balance_before["pending_minor"] == MUG_ORDER

    payload["events"] = [*first, _event("e3", "delivered", 1)]
    answer = await client.post(url, **_signed(payload))
    assert answer.json() == {"recorded": 1, "duplicates": 2}
    tracking = (
        await client.get(f"/api/v1/orders/{w['order']}/tracking", headers=w["buyer"])
    ).json()
    assert tracking["order_status"] == "delivered"
    statuses = [e["status"] for e in tracking["shipment"]["events"]]
    assert statuses == ["picked_up", "in_transit", "out_for_delivery", "delivered"]
    assert [e["source"] for e in tracking["shipment"]["events"]] == ["staff"] + ["carrier"] * 3
    assert tracking["shipment"]["events"][1]["location"] == "上海"

    detail = (await client.get(w["base"], headers=w["owner"])).json()
    assert detail["status"] == "delivered"
    assert detail["delivered_at"] is not None
    assert len(detail["shipment"]["events"]) == 4
    assert detail["refunds"] == []
    assert [line["quantity"] for line in detail["lines"]] == [2]

    # The buyer confirms: completed and settled, less the 5 % commission, once only.
    received = await client.post(f"/api/v1/orders/{w['order']}/receive", headers=w["buyer"])
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "completed"
    settled = {"pending_minor": 0, "available_minor": MUG_ORDER - MUG_ORDER * 5 // 100}
    assert {k: v for k, v in (await _balance(client, w)).items() if k in settled} == settled
    twice = await client.post(f"/api/v1/orders/{w['order']}/receive", headers=w["buyer"])
    assert twice.json()["status"] == "completed"
    assert {k: v for k, v in (await _balance(client, w)).items() if k in settled} == settled
    report = await housekeeping(db)
    assert report["completed"] == 0

    receipt = (await client.get(f"/api/v1/orders/{w['order']}/receipt", headers=w["buyer"])).json()
    assert receipt["payment_method"] == "wallet"
    assert receipt["total_minor"] == receipt["net_minor"] == MUG_ORDER
    assert receipt["number"] == detail["number"]
    assert receipt["shop_name"]

    async with db.session() as s:
        events = list(await s.scalars(select(WebhookDelivery.event).order_by(WebhookDelivery.id)))
    assert events == ["order.shipped", "order.delivered", "order.completed"]


async def test_carrier_callbacks_need_a_fresh_valid_signature(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "zto", "tracking_number": "7312345678"},
        headers=w["owner"],
    )
    url = "/api/v1/logistics/carriers/zto/events"
    payload = {"tracking_number": "7312345678", "events": [_event("x1", "delivered", 1)]}

    unsigned = await client.post(url, json=payload)
    stale = await client.post(url, **_signed(payload, at=int(time.time()) - 301))
    forged = _signed(payload)
    forged["content"] = forged["content"].replace(b"x1", b"x2")  # signed, then changed
    other_secret = _signed(payload)
    other_secret["headers"]["X-Carrier-Signature"] = signing.sign(
        "not-the-secret", int(time.time()), other_secret["content"]
    )
    for refused in (
        unsigned,
        stale,
        await client.post(url, **forged),
        await client.post(url, **other_secret),
    ):
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    order = (await client.get(f"/api/v1/orders/{w['order']}", headers=w["buyer"])).json()
    assert order["status"] == "shipped"

    # Signed but for another carrier's parcel, or an unknown one: not found.
    wrong_carrier = await client.post("/api/v1/logistics/carriers/sf/events", **_signed(payload))
    assert wrong_carrier.status_code == 404
    nowhere = await client.post("/api/v1/logistics/carriers/nope/events", **_signed(payload))
    assert nowhere.status_code == 404
    bad_body = await client.post(url, **_signed({"tracking_number": "7312345678", "events": []}))
    assert bad_body.status_code == 422
    assert bad_body.json()["code"] == "validation_error"

    ok = await client.post(url, **_signed(payload))
    assert ok.json() == {"recorded": 1, "duplicates": 0}
    order = (await client.get(f"/api/v1/orders/{w['order']}", headers=w["buyer"])).json()
    assert order["status"] == "delivered"
    # The same callback again (a carrier retrying): recorded once, the order stays put.
    repeat = await client.post(url, **_signed(payload))
    assert repeat.json() == {"recorded": 0, "duplicates": 1}
    tracking = (
        await client.get(f"/api/v1/orders/{w['order']}/tracking", headers=w["buyer"])
    ).json()
    assert len(tracking["shipment"]["events"]) == 1


async def test_other_merchants_and_buyers_cannot_see_or_ship_an_order(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    body = {"carrier": "sf", "tracking_number": "SF000111222"}
    other = w["other_owner"]
    other_base = f"/api/v1/merchants/{w['merchants'][1].id}/orders/{w['order']}"
    for url in (w["base"], other_base):
        assert (await client.get(url, headers=other)).status_code == 404
        assert (await client.post(f"{url}/shipment", json=body, headers=other)).status_code == 404
        events = await client.post(
            f"{url}/tracking-events", json={"status": "delivered"}, headers=other
        )
        assert events.status_code == 404
    own_list = await client.get(f"/api/v1/merchants/{w['merchants'][1].id}/orders", headers=other)
    assert own_list.json()["items"] == []
    buyer = await client.post(f"{w['base']}/shipment", json=body, headers=w["buyer"])
    assert buyer.status_code == 404
    # Nobody but the buyer confirms receipt or reads the receipt.
    shipped = await client.post(f"{w['base']}/shipment", json=body, headers=w["owner"])
    assert shipped.status_code == 201
    for url in (f"/api/v1/orders/{w['order']}/receive", f"/api/v1/orders/{w['order']}/receipt"):
        method = "POST" if url.endswith("receive") else "GET"
        for headers in (w["owner"], other):
            assert (await client.request(method, url, headers=headers)).status_code == 404
    order = (await client.get(f"/api/v1/orders/{w['order']}", headers=w["buyer"])).json()
    assert order["status"] == "shipped"


async def test_merchant_order_list_masks_phones_and_filters_by_status(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    url = f"/api/v1/merchants/{w['merchant']}/orders"
    listed = await client.get(url, headers=w["owner"])
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["address"] == {
        "recipient": "韩梅梅",
        "phone_masked": "139****5678",
        "region": "上海市 徐汇区",
        "detail": "漕溪北路 1 号",
    }
    assert "13912345678" not in listed.text
    assert item["carrier"] is None
    detail = await client.get(w["base"], headers=w["owner"])
    assert "13912345678" not in detail.text
    assert detail.json()["address"]["phone_masked"] == "139****5678"

    assert [
        o["id"]
        for o in (await client.get(f"{url}?status=paid", headers=w["owner"])).json()["items"]
    ] == [w["order"]]
    assert (await client.get(f"{url}?status=shipped", headers=w["owner"])).json()["items"] == []
    assert (await client.get(f"{url}?status=lost", headers=w["owner"])).status_code == 422

    # Pages of one, newest first, through the cursor.
    await client.put(f"/api/v1/cart/items/{w['tea']}", json={"quantity": 1}, headers=w["buyer"])
    (address,) = (await client.get("/api/v1/me/addresses", headers=w["buyer"])).json()
    await client.put(f"/api/v1/cart/items/{w['mug']}", json={"quantity": 1}, headers=w["buyer"])
    newer = await client.post(
        "/api/v1/orders", json={"address_id": address["id"]}, headers=w["buyer"]
    )
    newest_mug = next(o["id"] for o in newer.json()["orders"] if o["merchant_id"] == w["merchant"])
    first = (await client.get(f"{url}?limit=1", headers=w["owner"])).json()
    assert [o["id"] for o in first["items"]] == [newest_mug]
    second = (
        await client.get(f"{url}?limit=1&cursor={first['next_cursor']}", headers=w["owner"])
    ).json()
    assert [o["id"] for o in second["items"]] == [w["order"]]
    assert second["next_cursor"] is None


async def test_delivered_orders_complete_by_themselves_after_the_set_days(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "own", "tracking_number": "RUN-0001"},
        headers=w["owner"],
    )
    # The shop's own courier: staff mark it delivered. Then a partial refund for a chip.
    delivered = await client.post(
        f"{w['base']}/tracking-events", json={"status": "delivered"}, headers=w["owner"]
    )
    assert delivered.status_code == 201, delivered.text
    refund = await client.post(
        f"{w['base']}/refunds", json={"amount_minor": 1000}, headers=w["owner"]
    )
    assert refund.status_code == 201, refund.text

    assert (await housekeeping(db))["completed"] == 0  # delivered just now
    days = get_settings().auto_complete_days
    async with db.session() as s:
        await s.execute(
            update(Order)
            .where(Order.id == w["order"])
            .values(delivered_at=utcnow() - dt.timedelta(days=days, minutes=1))
        )
        await s.commit()
    assert (await housekeeping(db))["completed"] == 1
    assert (await housekeeping(db))["completed"] == 0
    order = (await client.get(f"/api/v1/orders/{w['order']}", headers=w["buyer"])).json()
    assert order["status"] == "completed"
    kept = MUG_ORDER - 1000
    balance = await _balance(client, w)
    assert balance["pending_minor"] == 0
    assert balance["available_minor"] == kept - (kept * 5 + 50) // 100
    receipt = (await client.get(f"/api/v1/orders/{w['order']}/receipt", headers=w["buyer"])).json()
    assert receipt["refunded_minor"] == 1000
    assert receipt["net_minor"] == kept
    assert [r["amount_minor"] for r in receipt["refunds"]] == [1000]


async def test_orders_not_yet_shipped_or_paid_refuse_the_later_steps(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    early = await client.post(
        f"{w['base']}/tracking-events", json={"status": "in_transit"}, headers=w["owner"]
    )
    assert early.status_code == 409
    assert early.json()["code"] == "not_shipped"
    receive = await client.post(f"/api/v1/orders/{w['order']}/receive", headers=w["buyer"])
    assert receive.status_code == 409
    unknown_carrier = await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "pigeon", "tracking_number": "SF1234567890"},
        headers=w["owner"],
    )
    assert unknown_carrier.status_code == 422
    bad_number = await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "sf", "tracking_number": "12/34"},
        headers=w["owner"],
    )
    assert bad_number.status_code == 422
    too_short = await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "sf", "tracking_number": "SF1"},
        headers=w["owner"],
    )
    assert too_short.status_code == 422
    shipped = await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "sf", "tracking_number": "SF1234567890"},
        headers=w["owner"],
    )
    assert shipped.status_code == 201
    tomorrow = (utcnow() + dt.timedelta(days=1)).isoformat()
    future = await client.post(
        f"{w['base']}/tracking-events",
        json={"status": "delivered", "occurred_at": tomorrow},
        headers=w["owner"],
    )
    assert future.status_code == 422
    assert future.json()["code"] == "invalid_time"
    order = (await client.get(f"/api/v1/orders/{w['order']}", headers=w["buyer"])).json()
    assert order["status"] == "shipped"

    # An unpaid order: no shipping, no receipt.
    await client.put(f"/api/v1/cart/items/{w['mug']}", json={"quantity": 1}, headers=w["buyer"])
    (address,) = (await client.get("/api/v1/me/addresses", headers=w["buyer"])).json()
    unpaid = (
        await client.post("/api/v1/orders", json={"address_id": address["id"]}, headers=w["buyer"])
    ).json()["orders"][0]["id"]
    ship = await client.post(
        f"/api/v1/merchants/{w['merchant']}/orders/{unpaid}/shipment",
        json={"carrier": "sf", "tracking_number": "SF1234567890"},
        headers=w["owner"],
    )
    assert ship.status_code == 409
    assert ship.json()["code"] == "not_shippable"
    receipt = await client.get(f"/api/v1/orders/{unpaid}/receipt", headers=w["buyer"])
    assert receipt.status_code == 409
    assert receipt.json()["code"] == "not_paid"


async def test_parallel_confirmations_and_callbacks_complete_and_settle_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    await client.post(
        f"/api/v1/merchants/{w['merchant']}/webhooks",
        json={
            "url": "https://hooks.example.com/mm",
            "events": ["order.delivered", "order.completed"],
        },
        headers=w["owner"],
    )
    await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "yto", "tracking_number": "YT7000000001"},
        headers=w["owner"],
    )
    url = "/api/v1/logistics/carriers/yto/events"
    payload = {"tracking_number": "YT7000000001", "events": [_event("d1", "delivered", 1)]}
    callbacks = await asyncio.gather(*(client.post(url, **_signed(payload)) for _ in range(4)))
    assert [c.status_code for c in callbacks] == [200] * 4, [c.text for c in callbacks]
    assert sum(c.json()["recorded"] for c in callbacks) == 1
    receipts = await asyncio.gather(
        *(client.post(f"/api/v1/orders/{w['order']}/receive", headers=w["buyer"]) for _ in range(4))
    )
    assert {(r.status_code, r.json()["status"]) for r in receipts} == {(200, "completed")}
    balance = await _balance(client, w)
    assert balance["available_minor"] == MUG_ORDER - MUG_ORDER * 5 // 100
    async with db.session() as s:
        events = list(await s.scalars(select(WebhookDelivery.event).order_by(WebhookDelivery.id)))
    assert events == ["order.delivered", "order.completed"]


async def test_one_order_the_ledger_refuses_does_not_hold_up_the_others(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    await client.put(f"/api/v1/cart/items/{w['mug']}", json={"quantity": 1}, headers=w["buyer"])
    (address,) = (await client.get("/api/v1/me/addresses", headers=w["buyer"])).json()
    placed = await client.post(
        "/api/v1/orders", json={"address_id": address["id"]}, headers=w["buyer"]
    )
    second = placed.json()["orders"][0]["id"]
    await client.post(
        "/api/v1/payments", json={"order_ids": [second], "method": "wallet"}, headers=w["buyer"]
    )
    for n, order_id in enumerate((w["order"], second)):
        base = f"/api/v1/merchants/{w['merchant']}/orders/{order_id}"
        await client.post(
            f"{base}/shipment",
            json={"carrier": "own", "tracking_number": f"RUN-{n:04d}"},
            headers=w["owner"],
        )
        await client.post(
            f"{base}/tracking-events", json={"status": "delivered"}, headers=w["owner"]
        )
    real_settle = payments.settle

    async def refuse_the_first(session: Any, *, order: Order) -> None:
        if order.id == w["order"]:
            raise ledger.InsufficientFunds()
        await real_settle(session, order=order)

    monkeypatch.setattr(payments, "settle", refuse_the_first)
    later = utcnow() + dt.timedelta(days=get_settings().auto_complete_days, minutes=1)
    async with db.session() as s:
        assert await logistics.complete_delivered(s, now=later) == 1
    statuses = {
        o: (await client.get(f"/api/v1/orders/{o}", headers=w["buyer"])).json()["status"]
        for o in (w["order"], second)
    }
    assert statuses == {w["order"]: "delivered", second: "completed"}
