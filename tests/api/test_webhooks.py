"""Merchants' webhooks, delivered over real HTTP to a receiver on 127.0.0.1: signed as
docs/webhooks.md says, retried with backoff under one delivery id, logged, resent on demand."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from mobimart.checkout.tasks import housekeeping
from mobimart.db import Database, utcnow
from mobimart.webhooks import service as webhooks
from mobimart.webhooks.models import WebhookDelivery
from tests import factories
from tests.api.test_checkout import _buyer, _shops

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


class Receiver:
    """A merchant's server, as small as HTTP/1.1 allows: records each request and answers
    with `status`."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        fields = [line.partition(":") for line in head.split("\r\n")[1:] if line]
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        writer.write(
            f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    server = await asyncio.start_server(r.handle, "127.0.0.1", 0)
    r.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hooks/mobimart"
    async with server:
        yield r


def documented_verify() -> Callable[[str, str, bytes], bool]:
    """The verification example from docs/webhooks.md, run as written."""
    found = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert found, "docs/webhooks.md has a Python example"
    scope: dict[str, Any] = {}
    exec(found.group(1), scope)  # noqa: S102 (our own documentation)
    verify: Callable[[str, str, bytes], bool] = scope["verify"]
    return verify


async def _paid_with_hook(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, url: str
) -> dict[str, Any]:
    world = await _shops(db, make_user)
    owner = await auth_headers(world["owners"][0])
    merchant = world["merchants"][0].id
    created = await client.post(
        f"/api/v1/merchants/{merchant}/webhooks",
        json={"url": url, "events": ["order.paid", "order.shipped"]},
        headers=owner,
    )
    assert created.status_code == 201, created.text
    user, headers, address = await _buyer(client, make_user, auth_headers)
    await factories.credit(db, user, 10_000, f"webhooks:{user.id}")
    await client.put(f"/api/v1/cart/items/{world['mug']}", json={"quantity": 1}, headers=headers)
    placed = await client.post("/api/v1/orders", json={"address_id": address}, headers=headers)
    order = placed.json()["orders"][0]
    paid = await client.post(
        "/api/v1/payments", json={"order_ids": [order["id"]], "method": "wallet"}, headers=headers
    )
    assert paid.status_code == 201, paid.text
    return {
        **world,
        "owner": owner,
        "merchant": merchant,
        "endpoint": created.json(),
        "base": f"/api/v1/merchants/{merchant}/webhooks/{created.json()['id']}",
        "order": order,
    }


async def test_a_failed_delivery_is_retried_with_backoff_under_the_same_id(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    receiver: Receiver,
) -> None:
    w = await _paid_with_hook(client, db, make_user, auth_headers, receiver.url)
    secret = w["endpoint"]["secret"]
    assert secret.startswith("whsec_")
    listed = (
        await client.get(f"/api/v1/merchants/{w['merchant']}/webhooks", headers=w["owner"])
    ).json()
    assert [e["url"] for e in listed] == [receiver.url]
    assert "secret" not in listed[0]  # shown on creation only

    receiver.status = 503
    before = utcnow()
    assert (await housekeeping(db))["webhooks_delivered"] == 0
    log = (await client.get(f"{w['base']}/deliveries", headers=w["owner"])).json()
    (first,) = log["items"]
    assert first["event"] == "order.paid"
    assert first["status"] == "pending"
    assert first["attempts"] == 1
    assert first["last_status"] == 503
    wait = dt.datetime.fromisoformat(first["next_attempt_at"]) - before
    assert dt.timedelta(seconds=55) < wait < dt.timedelta(seconds=65)  # the first backoff, 1 min
    # Not due yet: the next run leaves it alone.
    assert (await housekeeping(db))["webhooks_delivered"] == 0
    assert len(receiver.requests) == 1

    async with db.session() as s:
        await s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == first["id"])
            .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )
        await s.commit()
    receiver.status = 200
    assert (await housekeeping(db))["webhooks_delivered"] == 1
    assert len(receiver.requests) == 2
    ids = {h["mobimart-delivery"] for h, _ in receiver.requests}
    assert ids == {first["delivery_id"]}
    verify = documented_verify()
    for headers, body in receiver.requests:
        assert headers["mobimart-event"] == "order.paid"
        assert verify(secret, headers["mobimart-signature"], body)
        assert not verify("whsec_wrong", headers["mobimart-signature"], body)
        assert not verify(secret, headers["mobimart-signature"], body + b" ")
        event = json.loads(body)
        assert event["id"] == first["delivery_id"]
        assert event["data"]["order"] == w["order"]["number"]
        assert event["data"]["total_minor"] == w["order"]["total_minor"]
    done = (await client.get(f"{w['base']}/deliveries", headers=w["owner"])).json()["items"][0]
    assert (done["status"], done["attempts"], done["last_status"]) == ("delivered", 2, 200)
    assert done["delivered_at"] is not None


async def test_a_failed_delivery_is_resent_on_demand_and_the_log_pages(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    receiver: Receiver,
) -> None:
    w = await _paid_with_hook(client, db, make_user, auth_headers, receiver.url)
    ship = await client.post(
        f"/api/v1/merchants/{w['merchant']}/orders/{w['order']['id']}/shipment",
        json={"carrier": "jd", "tracking_number": "JD0012345678"},
        headers=w["owner"],
    )
    assert ship.status_code == 201
    first = (await client.get(f"{w['base']}/deliveries?limit=1", headers=w["owner"])).json()
    assert [d["event"] for d in first["items"]] == ["order.shipped"]
    rest = (
        await client.get(
            f"{w['base']}/deliveries?limit=1&cursor={first['next_cursor']}", headers=w["owner"]
        )
    ).json()
    assert [d["event"] for d in rest["items"]] == ["order.paid"]
    assert rest["next_cursor"] is None
    paid = rest["items"][0]

    resend = f"{w['base']}/deliveries/{paid['id']}/redeliver"
    pending = await client.post(resend, headers=w["owner"])
    assert pending.status_code == 409  # still on its retry schedule
    async with db.session() as s:  # every retry spent while the receiver was down
        await s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == paid["id"])
            .values(status="failed", attempts=8, last_status=502, next_attempt_at=None)
        )
        await s.commit()
    staff = await make_user()
    await factories.add_staff(db, w["merchants"][0], w["owners"][0], staff)
    resent = await client.post(resend, headers=await auth_headers(staff))
    assert resent.status_code == 200, resent.text
    assert (resent.json()["status"], resent.json()["attempts"]) == ("delivered", 9)
    assert [h["mobimart-delivery"] for h, _ in receiver.requests] == [paid["delivery_id"]]
    again = await client.post(resend, headers=w["owner"])
    assert again.status_code == 409

    other = await auth_headers(w["owners"][1])
    assert (await client.get(f"{w['base']}/deliveries", headers=other)).status_code == 404
    assert (await client.post(resend, headers=other)).status_code == 404


async def test_only_the_owner_manages_endpoints(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _shops(db, make_user)
    merchant = world["merchants"][0]
    staff = await make_user()
    await factories.add_staff(db, merchant, world["owners"][0], staff)
    owner, staff_headers = await auth_headers(world["owners"][0]), await auth_headers(staff)
    url = f"/api/v1/merchants/{merchant.id}/webhooks"
    body = {"url": "https://hooks.example.com/a", "events": ["order.completed"]}
    assert (await client.post(url, json=body, headers=staff_headers)).status_code == 403
    bad = await client.post(url, json={**body, "events": ["order.eaten"]}, headers=owner)
    assert bad.status_code == 422
    assert (
        await client.post(url, json={**body, "url": "ftp://x/y"}, headers=owner)
    ).status_code == 422
    created = (await client.post(url, json=body, headers=owner)).json()
    assert [e["id"] for e in (await client.get(url, headers=staff_headers)).json()] == [
        created["id"]
    ]
    async with db.session() as s:  # an event queued for it before it goes
        await webhooks.emit(s, merchant_id=merchant.id, event="order.completed", data={})
        await s.commit()
    gone = f"{url}/{created['id']}"
    assert (await client.delete(gone, headers=staff_headers)).status_code == 403
    assert (await client.delete(gone, headers=owner)).status_code == 204
    assert (await client.get(url, headers=owner)).json() == []
    # A deleted endpoint receives nothing more, even what was queued for it.
    assert (await housekeeping(db))["webhooks_delivered"] == 0
    (dropped,) = (await client.get(f"{gone}/deliveries", headers=owner)).json()["items"]
    assert (dropped["status"], dropped["attempts"]) == ("failed", 0)
    assert dropped["last_error"] == "endpoint deleted"


@pytest.mark.parametrize(
    ("address", "is_public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1::1", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),  # cloud metadata services
        ("::1", False),
        ("fe80::1%eth0", False),
        ("not an address", False),
    ],
)
def test_only_public_addresses_are_webhook_targets(address: str, is_public: bool) -> None:
    from mobimart.webhooks import domain

    assert domain.public(address) is is_public


async def test_in_production_webhooks_never_reach_our_own_network(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mobimart.settings import get_settings

    w = await _paid_with_hook(client, db, make_user, auth_headers, receiver.url)
    monkeypatch.setattr(get_settings(), "environment", "production")
    add = f"/api/v1/merchants/{w['merchant']}/webhooks"
    for url in ("http://127.0.0.1:8000/admin", "http://169.254.169.254/latest/meta-data"):
        refused = await client.post(
            add, json={"url": url, "events": ["order.paid"]}, headers=w["owner"]
        )
        assert refused.status_code == 422, refused.text
    allowed = await client.post(
        add,
        json={"url": "https://93.184.216.34/hooks", "events": ["order.paid"]},
        headers=w["owner"],
    )
    assert allowed.status_code == 201, allowed.text
    # The endpoint added in development, on 127.0.0.1, gets nothing now.
    await housekeeping(db)
    assert receiver.requests == []
    log = (await client.get(f"{w['base']}/deliveries", headers=w["owner"])).json()
    assert log["items"][0]["last_error"] == "PermissionError"
