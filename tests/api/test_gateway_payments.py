"""Paying at the gateway through the app, as a phone would: the order's `redirect_url` opens the
sandbox provider's page, the payer confirms, the provider's signed notification (sent over HTTP
to our notify URL) marks the order paid once, and refunds go back through the provider, retried
by housekeeping when it does not answer. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from mobimart.db import Database, utcnow
from mobimart.infra import http
from mobimart.payments import domain, ledger
from mobimart.payments import service as payments
from mobimart.payments.models import Refund
from tests import factories
from tests.api.test_checkout import _buyer, _shops


@pytest.fixture
def provider_reaches_us(app: Any) -> Iterator[dict[str, bool]]:
    """Outbound HTTP (the provider's notifications, our refund calls) goes to the app in this
    process; `down` makes every call fail as a network error would."""
    state = {"down": False}

    async def handler(request: httpx.Request) -> httpx.Response:
        if state["down"]:
            raise httpx.ConnectError("provider unreachable", request=request)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as inner:
            return await inner.request(
                request.method,
                request.url.path,
                params=request.url.params,
                content=request.content,
                headers={"content-type": request.headers.get("content-type", "")},
            )

    def factory() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(handler))

    original = http.factory
    http.factory = factory
    yield state
    http.factory = original


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def test_pay_at_the_gateway_then_refund_through_it_with_a_retry(
    client: httpx.AsyncClient,
    app: Any,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    provider_reaches_us: dict[str, bool],
) -> None:
    world = await _shops(db, make_user)
    _user, headers, address = await _buyer(client, make_user, auth_headers)
    await client.put(f"/api/v1/cart/items/{world['tea']}", json={"quantity": 1}, headers=headers)
    placed = await client.post("/api/v1/orders", json={"address_id": address}, headers=headers)
    order = placed.json()["orders"][0]
    paying = await client.post(
        "/api/v1/payments",
        json={"order_ids": [order["id"]], "method": "gateway"},
        headers={"Idempotency-Key": "gw-1", **headers},
    )
    assert paying.status_code == 201, paying.text
    assert paying.json()["status"] == "pending"
    page = await client.get(_local(paying.json()["redirect_url"]))
    assert page.status_code == 200
    assert "¥48.00" in page.text  # 40.00 and 8.00 shipping, as the provider shows it
    confirm_path = urlsplit(paying.json()["redirect_url"]).path + "/confirm"
    form_trade = page.text.split('name="trade_no" value="')[1].split('"')[0]
    back = await client.post(confirm_path, data={"trade_no": form_trade})
    assert back.status_code == 303  # to the shop's return URL: only for the payer's eyes
    await app.state.sandbox.drain()  # the signed notification reached us

    paid = (await client.get(f"/api/v1/orders/{order['id']}", headers=headers)).json()
    assert paid["status"] == "paid"
    payment = (await client.get(f"/api/v1/payments/{paying.json()['id']}", headers=headers)).json()
    assert payment["status"] == "succeeded"
    async with db.session() as s:
        assert await ledger.balance(s, domain.pending(order["merchant_id"]), "CNY") == 4800

    # The provider is down when the shop refunds: recorded and posted, the provider asked later.
    owner = await auth_headers(world["owners"][1])
    provider_reaches_us["down"] = True
    refund = await client.post(
        f"/api/v1/merchants/{order['merchant_id']}/orders/{order['id']}/refunds",
        json={"amount_minor": 1500, "reason": "dented tin"},
        headers=owner,
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "pending"
    provider_reaches_us["down"] = False
    async with db.session() as s:
        assert await payments.retry_refunds(s) == 0  # not yet: it was asked a moment ago
    async with db.session() as s:
        later = utcnow() + dt.timedelta(minutes=2)
        assert await payments.retry_refunds(s, now=later) == 1
    async with db.session() as s:
        row = await s.scalar(select(Refund).where(Refund.id == refund.json()["id"]))
        assert row is not None
        assert row.status == "refunded"
        assert await ledger.balance(s, domain.pending(order["merchant_id"]), "CNY") == 3300
        assert (await ledger.check(s)).ok
    async with db.session() as s:
        assert await payments.retry_refunds(s, now=later) == 0  # nothing left to ask


async def test_a_late_notification_for_a_cancelled_order_is_paid_back(
    client: httpx.AsyncClient,
    app: Any,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    provider_reaches_us: dict[str, bool],
) -> None:
    world = await _shops(db, make_user)
    user, headers, address = await _buyer(client, make_user, auth_headers)
    await factories.credit(db, user, 10_000, "late-notify")
    await client.put(f"/api/v1/cart/items/{world['tea']}", json={"quantity": 1}, headers=headers)
    placed = await client.post("/api/v1/orders", json={"address_id": address}, headers=headers)
    order = placed.json()["orders"][0]
    paying = await client.post(
        "/api/v1/payments", json={"order_ids": [order["id"]], "method": "gateway"}, headers=headers
    )
    page = await client.get(_local(paying.json()["redirect_url"]))
    form_trade = page.text.split('name="trade_no" value="')[1].split('"')[0]
    # Meanwhile the buyer cancels in the app, then confirms on the provider's page anyway.
    cancelled = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    await client.post(
        urlsplit(paying.json()["redirect_url"]).path + "/confirm", data={"trade_no": form_trade}
    )
    await app.state.sandbox.drain()
    async with db.session() as s:
        refunds = list(
            await s.scalars(select(Refund).where(Refund.payment_id == paying.json()["id"]))
        )
        assert [(r.amount_minor, r.status) for r in refunds] == [(4800, "refunded")]
        assert await ledger.balance(s, domain.pending(order["merchant_id"]), "CNY") == 0
        assert (await ledger.check(s)).ok
