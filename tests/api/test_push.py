"""Web Push end to end against a real push service double: a browser subscribes through the
API or the Me page, `deliver` encrypts and signs, the double verifies and decrypts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mobimart.db import Database
from mobimart.notifications import push
from mobimart.notifications.models import PushSubscription
from mobimart.web.deps import SESSION_COOKIE
from tests.pushservice import PushService

ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile"


@pytest.fixture
def service() -> Iterator[PushService]:
    with PushService() as running:
        yield running


async def _server_key(client: httpx.AsyncClient) -> str:
    response = await client.get("/api/v1/push/key")
    assert response.status_code == 200
    key: str = response.json()["application_server_key"]
    return key


async def _subscribe(
    client: httpx.AsyncClient, headers: dict[str, str], service: PushService
) -> tuple[Any, int]:
    browser = service.subscriber(server_key=await _server_key(client))
    response = await client.post(
        "/api/v1/me/push-subscriptions",
        json=browser.json(),
        headers=headers | {"User-Agent": ANDROID},
    )
    assert response.status_code == 201, response.text
    return browser, response.json()["id"]


async def _count(db: Database, user_id: int) -> int:
    async with db.session() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(PushSubscription)
                .where(PushSubscription.user_id == user_id)
            )
            or 0
        )


async def test_subscribe_and_deliver(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
) -> None:
    user = await make_user()
    headers = await auth_headers(user)
    browser, sub_id = await _subscribe(client, headers, service)

    listed = (await client.get("/api/v1/me/push-subscriptions", headers=headers)).json()
    assert [(d["id"], d["label"], d["service"]) for d in listed["items"]] == [
        (sub_id, "Chrome on Android", "127.0.0.1")
    ]
    async with db.session() as s:
        assert await push.has_subscription(s, [user.id, user.id + 1000]) == {user.id}
        delivered = await push.deliver(
            s, user_id=user.id, title="Flash sale", body="雨伞 ¥39 today", link="/products/7"
        )
        await s.commit()
    assert delivered is True
    (got,) = service.received(browser.endpoint)
    assert got.json() == {"title": "Flash sale", "body": "雨伞 ¥39 today", "link": "/products/7"}
    assert got.ttl == push.TTL_S
    listed = (await client.get("/api/v1/me/push-subscriptions", headers=headers)).json()
    assert listed["items"][0]["last_sent_at"] is not None


async def test_deliver_does_not_follow_a_redirect(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
) -> None:
    """A push service's 3xx could point our POST at an address inside our network."""
    user = await make_user()
    headers = await auth_headers(user)
    browser, _ = await _subscribe(client, headers, service)
    elsewhere = service.subscriber(server_key=await _server_key(client))
    service.redirect(browser.endpoint, elsewhere.endpoint)
    async with db.session() as s:
        assert not await push.deliver(s, user_id=user.id, title="A", body="B", link="/")
        await s.commit()
    assert service.received() == []
    assert service.refused == []  # the redirect's target was never asked
    assert await _count(db, user.id) == 1  # a failure, not a gone device


async def test_deliver_reaches_every_device_and_drops_gone_ones(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
) -> None:
    user = await make_user()
    headers = await auth_headers(user)
    phone, _ = await _subscribe(client, headers, service)
    laptop, laptop_id = await _subscribe(client, headers, service)
    service.answer_gone(laptop.endpoint)
    async with db.session() as s:
        assert await push.deliver(s, user_id=user.id, title="A", body="B", link="/")
        await s.commit()
    assert len(service.received(phone.endpoint)) == 1
    assert service.received(laptop.endpoint) == []
    listed = (await client.get("/api/v1/me/push-subscriptions", headers=headers)).json()
    assert laptop_id not in [d["id"] for d in listed["items"]]
    assert await _count(db, user.id) == 1

    service.answer_gone(phone.endpoint)
    async with db.session() as s:
        assert not await push.deliver(s, user_id=user.id, title="A", body="B", link="/")
        await s.commit()
    assert await _count(db, user.id) == 0
    async with db.session() as s:  # nobody to push to: nothing sent, False
        assert not await push.deliver(s, user_id=user.id, title="A", body="B", link="/")


async def test_a_push_service_error_keeps_the_subscription(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = await make_user()
    headers = await auth_headers(user)
    # Subscribed with another server's key: the double refuses our pushes with 403.
    browser = service.subscriber(server_key=service.subscriber().p256dh)
    response = await client.post(
        "/api/v1/me/push-subscriptions", json=browser.json(), headers=headers
    )
    assert response.status_code == 201
    async with db.session() as s:
        assert not await push.deliver(s, user_id=user.id, title="A", body="secret", link="/")
        await s.commit()
    assert service.refused[-1][0] == 403
    assert await _count(db, user.id) == 1
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "push refused" in logged
    assert browser.endpoint not in logged
    assert "secret" not in logged


async def test_same_endpoint_is_one_device(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
) -> None:
    """A browser that subscribes again (or passes to another account) stays one row."""
    first, second = await make_user(), await make_user()
    browser, sub_id = await _subscribe(client, await auth_headers(first), service)
    again = await client.post(
        "/api/v1/me/push-subscriptions", json=browser.json(), headers=await auth_headers(first)
    )
    assert again.json()["id"] == sub_id
    moved = await client.post(
        "/api/v1/me/push-subscriptions", json=browser.json(), headers=await auth_headers(second)
    )
    assert moved.json()["id"] == sub_id
    assert (await _count(db, first.id), await _count(db, second.id)) == (0, 1)


async def test_device_limit(
    client: httpx.AsyncClient,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
) -> None:
    headers = await auth_headers(await make_user())
    for _ in range(push.MAX_DEVICES):
        await _subscribe(client, headers, service)
    extra = service.subscriber()
    response = await client.post(
        "/api/v1/me/push-subscriptions", json=extra.json(), headers=headers
    )
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_devices"


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint": "http://push.example.com/x"},
        {"endpoint": "https://169.254.169.254/latest"},
        {"keys": {"p256dh": "A" * 87, "auth": "A" * 22}},
        {"keys": {"p256dh": "short", "auth": "A" * 22}},
        {"keys": {"auth": "A" * 22}},
        {"surprise": 1},
    ],
)
async def test_bad_subscriptions_refused(
    client: httpx.AsyncClient,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
    change: dict[str, Any],
) -> None:
    headers = await auth_headers(await make_user())
    body = service.subscriber().json() | change
    response = await client.post("/api/v1/me/push-subscriptions", json=body, headers=headers)
    assert response.status_code == 422, response.text


async def test_someone_elses_device_is_not_found(
    client: httpx.AsyncClient,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
) -> None:
    owner_headers = await auth_headers(await make_user())
    _, sub_id = await _subscribe(client, owner_headers, service)
    other = await auth_headers(await make_user())
    path = f"/api/v1/me/push-subscriptions/{sub_id}"
    assert (await client.delete(path, headers=other)).status_code == 404
    assert (await client.delete(path, headers=owner_headers)).status_code == 204
    assert (await client.delete(path, headers=owner_headers)).status_code == 404


async def test_test_push_through_the_api_is_limited(
    client: httpx.AsyncClient,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    service: PushService,
) -> None:
    headers = await auth_headers(await make_user())
    browser, _ = await _subscribe(client, headers, service)
    for _ in range(push.TESTS_PER_HOUR):
        response = await client.post("/api/v1/me/push-test", headers=headers)
        assert response.json() == {"delivered": True}
    assert len(service.received(browser.endpoint)) == push.TESTS_PER_HOUR
    assert service.received()[0].json()["link"] == "/me#push"
    response = await client.post("/api/v1/me/push-test", headers=headers)
    assert response.status_code == 429


# --- pages -------------------------------------------------------------------------------------


async def _page_client(app: Any, db: Database, user: Any) -> httpx.AsyncClient:
    from mobimart.accounts import service as accounts
    from mobimart.accounts.models import User

    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        cookies={SESSION_COOKIE: token, "mm_csrf": "c" * 43},
        headers={"User-Agent": ANDROID},
    )


async def test_me_page_turn_on_test_and_remove(
    app: Any, db: Database, make_user: Callable[..., Any], service: PushService
) -> None:
    user = await make_user()
    async with await _page_client(app, db, user) as c:
        page = await c.get("/me")
        assert page.status_code == 200
        assert "Notifications on this device" in page.text
        key = re.search(r'id="push" data-key="([^"]+)"', page.text)
        assert key is not None
        assert key.group(1) == push.application_server_key()
        assert "No device gets notifications yet." in page.text

        # What push.js posts once the browser has subscribed.
        browser = service.subscriber(server_key=key.group(1))
        form = {
            "csrf_token": "c" * 43,
            "endpoint": browser.endpoint,
            "p256dh": browser.p256dh,
            "auth": browser.auth,
        }
        response = await c.post("/me/push-subscriptions", data=form)
        assert response.status_code == 303
        assert response.headers["location"] == "/me?push=on#push"
        page = await c.get("/me?push=on")
        assert "Notifications are on for this device." in page.text
        assert "Chrome on Android" in page.text

        response = await c.post("/me/push-test", data={"csrf_token": "c" * 43})
        assert response.headers["location"] == "/me?push=sent#push"
        (got,) = service.received(browser.endpoint)
        assert got.json()["body"] == "Notifications work on this device."

        remove = re.search(r'action="(/me/push-subscriptions/\d+/delete)"', page.text)
        assert remove is not None
        response = await c.post(remove.group(1), data={"csrf_token": "c" * 43})
        assert response.headers["location"] == "/me?push=removed#push"
        assert await _count(db, user.id) == 0
        response = await c.post("/me/push-test", data={"csrf_token": "c" * 43})
        assert response.headers["location"] == "/me?push=none#push"


async def test_me_page_forms_check_csrf_and_input(
    app: Any, db: Database, make_user: Callable[..., Any], service: PushService
) -> None:
    user = await make_user()
    async with await _page_client(app, db, user) as c:
        browser = service.subscriber()
        form = {"endpoint": browser.endpoint, "p256dh": browser.p256dh, "auth": browser.auth}
        response = await c.post("/me/push-subscriptions", data=form | {"csrf_token": "x" * 43})
        assert response.status_code == 403
        bad = form | {"csrf_token": "c" * 43, "endpoint": "https://10.0.0.1/x"}
        response = await c.post("/me/push-subscriptions", data=bad)
        assert response.headers["location"] == "/me?push=refused#push"
    assert await _count(db, user.id) == 0


async def test_service_worker_is_served_from_the_root(client: httpx.AsyncClient) -> None:
    response = await client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["service-worker-allowed"] == "/"
    assert "showNotification" in response.text
    assert "notificationclick" in response.text
    assert (await client.get("/static/push.js")).status_code == 200


async def test_one_endpoint_posted_twice_at_once_is_one_row(
    db: Database, make_user: Callable[..., Any], service: PushService
) -> None:
    user = await make_user()
    browser = service.subscriber()

    async def post() -> int:
        async with db.session() as s:
            row = await push.subscribe(
                s,
                user_id=user.id,
                endpoint=browser.endpoint,
                p256dh=browser.p256dh,
                auth=browser.auth,
                label="Phone",
            )
            await s.commit()
            return row.id

    first, second = await asyncio.gather(post(), post())
    assert first == second
    assert await _count(db, user.id) == 1
