"""Chat over REST and over the WebSocket of a real server (uvicorn on a free port, in a thread
of its own), on SQLite and PostgreSQL: conversations with cards, numbering, idempotent sends,
read receipts and unread counts, the merchant's inbox (pick up, transfer), images, offline
notifications, and that nobody outside a conversation sees anything of it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.app import create_app
from mobimart.catalog import service as catalog
from mobimart.db import Database
from mobimart.moderation.models import BlockedWord
from mobimart.notifications.models import Notification
from mobimart.settings import get_settings
from mobimart.social import chat_api, live
from tests import factories


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def server(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The app under uvicorn in a thread: sockets and REST on one real port."""
    monkeypatch.setattr(live, "HELLO_WAIT_S", 0.2)
    app = create_app(get_settings().model_copy(update={"database_url": database_url}))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning", ws="websockets-sansio"
    )
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not runner.started:
        assert thread.is_alive(), "the server stopped"
        assert time.monotonic() < deadline, "the server did not start"
        await asyncio.sleep(0.02)
    yield f"127.0.0.1:{config.port}"
    runner.should_exit = True
    await asyncio.to_thread(thread.join, 20)


@dataclass
class Shop:
    merchant_id: int
    shop_id: int
    product_id: int
    owner: User
    staff: User
    other_staff: User


@dataclass
class World:
    consumer: User
    stranger: User
    a: Shop
    b: Shop
    headers: dict[int, dict[str, str]]
    admin: User | None = None


async def _shop(db: Database, make_user: Any, admin: User, n: int) -> Shop:
    owner = await make_user(name=f"Owner {n}")
    staff = await make_user(name=f"Staff {n}")
    other = await make_user(name=f"Clerk {n}")
    merchant = await factories.merchant(db, owner, admin=admin, n=n)
    await factories.add_staff(db, merchant, owner, staff)
    await factories.add_staff(db, merchant, owner, other)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name=f"Teapot {n}", price_minor=4900, stock=3, publish=True
        )
        shop_id = product.shop_id
        await s.commit()
    return Shop(merchant.id, shop_id, product.id, owner, staff, other)


@pytest.fixture
async def world(db: Database, make_user: Any, auth_headers: Any) -> World:
    admin = await make_user(admin=True)
    consumer = await make_user(name="Consumer")
    stranger = await make_user(name="Stranger")
    a = await _shop(db, make_user, admin, 1)
    b = await _shop(db, make_user, admin, 2)
    people = [consumer, stranger, a.owner, a.staff, a.other_staff, b.owner, b.staff, admin]
    return World(consumer, stranger, a, b, {u.id: await auth_headers(u) for u in people}, admin)


def _token(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def _open(http: httpx.AsyncClient, world: World, **card: int) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/conversations",
        json={"shop_id": world.a.shop_id, **card},
        headers=world.headers[world.consumer.id],
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=20) as client:
        yield client


class Socket:
    """A test client of /api/v1/chat/ws that keeps every frame it receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def until(
        self, check: Callable[[dict[str, Any]], bool], within: float = 5
    ) -> dict[str, Any]:
        for frame in self.frames:
            if check(frame):
                return frame
        async with asyncio.timeout(within):
            while True:
                frame = json.loads(await self.ws.recv())
                self.frames.append(frame)
                if check(frame):
                    return frame

    async def quiet(self, seconds: float = 0.4) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    self.frames.append(json.loads(await self.ws.recv()))
        except TimeoutError:
            pass
        return self.frames

    def messages(self, conversation_id: int) -> list[int]:
        return [
            f["message"]["seq"]
            for f in self.frames
            if f["type"] == "message" and f["message"]["conversation_id"] == conversation_id
        ]


async def _connect(server: str, headers: dict[str, str], **kwargs: Any) -> Socket:
    ws = await websockets.connect(
        f"ws://{server}/api/v1/chat/ws", additional_headers=headers, **kwargs
    )
    return Socket(ws)


async def _closed_with(socket: Socket, within: float = 5) -> int:
    """The close code the server ends the socket with (frames before it are kept)."""

    async def read_to_the_end() -> None:
        async with asyncio.timeout(within):
            while True:
                socket.frames.append(json.loads(await socket.ws.recv()))

    with pytest.raises(websockets.ConnectionClosed) as closed:
        await read_to_the_end()
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code


# --- REST --------------------------------------------------------------------------------------


async def test_a_conversation_from_a_product_with_replies_reads_and_unread_counts(
    http: httpx.AsyncClient, world: World
) -> None:
    consumer, staff = world.headers[world.consumer.id], world.headers[world.a.staff.id]
    opened = await _open(http, world, product_id=world.a.product_id)
    cid = opened["id"]
    assert opened["last_seq"] == 1
    assert opened["unread"] == 0
    card = opened["last_message"]
    assert card["kind"] == "product"
    assert card["ref_id"] == world.a.product_id
    assert card["card"]["title"] == "Teapot 1"
    assert card["card"]["url"].endswith(f"/{world.a.product_id}")
    # Opening again from the same product adds no second card; the same conversation.
    again = await _open(http, world, product_id=world.a.product_id)
    assert again["id"] == cid
    assert again["last_seq"] == 1

    sent = await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "c-1", "body": "<script>alert(1)</script> still in stock?"},
        headers=consumer,
    )
    assert sent.status_code == 201
    assert sent.json()["seq"] == 2
    assert sent.json()["body"] == "<script>alert(1)</script> still in stock?"
    resent = await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "c-1", "body": "<script>alert(1)</script> still in stock?"},
        headers=consumer,
    )
    assert resent.status_code == 200
    assert resent.json()["id"] == sent.json()["id"]

    url = f"/api/v1/merchants/{world.a.merchant_id}/conversations"
    unassigned = (await http.get(url, params={"view": "unassigned"}, headers=staff)).json()
    assert [c["id"] for c in unassigned["items"]] == [cid]
    assert unassigned["items"][0]["unread"] == 2  # the card and the question
    assert unassigned["items"][0]["customer_name"] == "Consumer"

    reply = await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "s-1", "body": "Yes, three left."},
        headers=staff,
    )
    assert reply.status_code == 201
    assert reply.json()["side"] == "shop"
    # The reply picked the conversation up for the staff member who wrote it.
    mine = (await http.get(url, params={"view": "mine"}, headers=staff)).json()["items"]
    assert [(c["id"], c["assignee_id"], c["unread"]) for c in mine] == [(cid, world.a.staff.id, 0)]
    assert (await http.get(url, params={"view": "unassigned"}, headers=staff)).json()["items"] == []

    listed = (await http.get("/api/v1/conversations", headers=consumer)).json()["items"]
    assert [(c["id"], c["unread"], c["last_message"]["body"]) for c in listed] == [
        (cid, 1, "Yes, three left.")
    ]
    read = await http.post(f"/api/v1/conversations/{cid}/read", json={"seq": 99}, headers=consumer)
    assert read.json() == {"conversation_id": cid, "seq": 3}  # never past the last message
    back = await http.post(f"/api/v1/conversations/{cid}/read", json={"seq": 1}, headers=consumer)
    assert back.json()["seq"] == 3  # never backwards
    listed = (await http.get("/api/v1/conversations", headers=consumer)).json()["items"]
    assert listed[0]["unread"] == 0
    assert listed[0]["consumer_read_seq"] == 3

    history = (await http.get(f"/api/v1/conversations/{cid}/messages", headers=staff)).json()
    assert [m["seq"] for m in history["items"]] == [1, 2, 3]
    after = await http.get(
        f"/api/v1/conversations/{cid}/messages", params={"after_seq": 1}, headers=consumer
    )
    assert [m["seq"] for m in after.json()["items"]] == [2, 3]
    before = await http.get(
        f"/api/v1/conversations/{cid}/messages",
        params={"before_seq": 3, "limit": 1},
        headers=consumer,
    )
    assert [m["seq"] for m in before.json()["items"]] == [2]


async def test_pick_up_and_transfer_rules(http: httpx.AsyncClient, world: World) -> None:
    cid = (await _open(http, world))["id"]
    base = f"/api/v1/merchants/{world.a.merchant_id}/conversations/{cid}"
    staff, clerk = world.headers[world.a.staff.id], world.headers[world.a.other_staff.id]
    owner = world.headers[world.a.owner.id]

    taken = await http.post(f"{base}/pick-up", headers=staff)
    assert taken.status_code == 200
    assert taken.json()["assignee_name"] == "Staff 1"
    assert (await http.post(f"{base}/pick-up", headers=staff)).status_code == 200  # idempotent
    late = await http.post(f"{base}/pick-up", headers=clerk)
    assert late.status_code == 409
    assert "Staff 1" in late.json()["detail"]
    # Another clerk cannot write in a conversation someone picked up; the owner can.
    refused = await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "x", "body": "hi"},
        headers=clerk,
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "picked_up"
    by_owner = await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "o", "body": "hi"},
        headers=owner,
    )
    assert by_owner.status_code == 201

    # Only the handler or the owner passes it on, and only to a member of this merchant.
    assert (
        await http.post(f"{base}/transfer", json={"user_id": world.a.staff.id}, headers=clerk)
    ).status_code == 403
    outsider = await http.post(
        f"{base}/transfer", json={"user_id": world.b.staff.id}, headers=staff
    )
    assert outsider.status_code == 422
    moved = await http.post(
        f"{base}/transfer", json={"user_id": world.a.other_staff.id}, headers=staff
    )
    assert moved.status_code == 200
    assert moved.json()["assignee_id"] == world.a.other_staff.id
    back = await http.post(f"{base}/transfer", json={"user_id": world.a.staff.id}, headers=owner)
    assert back.json()["assignee_id"] == world.a.staff.id


async def test_nobody_outside_a_conversation_sees_it(http: httpx.AsyncClient, world: World) -> None:
    cid = (await _open(http, world))["id"]
    await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "c", "body": "secret"},
        headers=world.headers[world.consumer.id],
    )
    for outsider in (world.stranger, world.b.owner, world.b.staff):
        headers = world.headers[outsider.id]
        for method, url, body in [
            ("GET", f"/api/v1/conversations/{cid}/messages", None),
            ("POST", f"/api/v1/conversations/{cid}/messages", {"client_id": "z", "body": "x"}),
            ("POST", f"/api/v1/conversations/{cid}/read", {"seq": 1}),
            ("GET", f"/api/v1/conversations/{cid}/images/1", None),
            ("POST", f"/api/v1/merchants/{world.a.merchant_id}/conversations/{cid}/pick-up", None),
            ("POST", f"/api/v1/merchants/{world.b.merchant_id}/conversations/{cid}/pick-up", None),
        ]:
            response = await http.request(method, url, json=body, headers=headers)
            assert response.status_code == 404, (outsider.display_name, url, response.text)
            assert "secret" not in response.text
        listed = (await http.get("/api/v1/conversations", headers=headers)).json()["items"]
        assert listed == []
    inbox_b = await http.get(
        f"/api/v1/merchants/{world.b.merchant_id}/conversations",
        headers=world.headers[world.b.staff.id],
    )
    assert inbox_b.json()["items"] == []


async def test_images_are_served_to_participants_only(
    http: httpx.AsyncClient, world: World
) -> None:
    cid = (await _open(http, world))["id"]
    consumer = world.headers[world.consumer.id]
    refused = await http.post(
        f"/api/v1/conversations/{cid}/images",
        files={"file": ("a.png", b"<html>not an image</html>", "image/png")},
        headers=consumer,
    )
    assert refused.status_code == 415
    sent = await http.post(
        f"/api/v1/conversations/{cid}/images",
        files={"file": ("a.png", factories.PNG, "image/png")},
        headers=consumer,
    )
    assert sent.status_code == 201, sent.text
    image = sent.json()
    assert image["kind"] == "image"
    assert image["image_url"].endswith(f"/images/{image['id']}")
    for reader in (world.consumer, world.a.staff):
        got = await http.get(image["image_url"], headers=world.headers[reader.id])
        assert got.status_code == 200
        assert got.content == factories.PNG
        assert got.headers["content-type"] == "image/png"
    for outsider in (world.stranger, world.b.staff):
        got = await http.get(image["image_url"], headers=world.headers[outsider.id])
        assert got.status_code == 404
    assert (await http.get(image["image_url"])).status_code == 401


async def test_a_blocked_word_is_refused_with_the_word_named(
    http: httpx.AsyncClient, world: World, db: Database
) -> None:
    async with db.session() as s:
        s.add(BlockedWord(word="fakebrand"))
        await s.commit()
    cid = (await _open(http, world))["id"]
    refused = await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "c", "body": "Selling FakeBrand cheap"},
        headers=world.headers[world.consumer.id],
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "blocked_words"
    assert "FakeBrand" in refused.json()["detail"]


# --- the socket --------------------------------------------------------------------------------


async def test_messages_cross_between_sockets_with_acks_and_read_receipts(
    server: str, http: httpx.AsyncClient, world: World
) -> None:
    cid = (await _open(http, world))["id"]
    consumer = await _connect(server, world.headers[world.consumer.id])
    staff = await _connect(server, world.headers[world.a.staff.id])
    colleague = await _connect(server, world.headers[world.a.other_staff.id])
    stranger = await _connect(server, world.headers[world.b.staff.id])
    try:
        await consumer.send({"type": "ping"})
        await consumer.until(lambda f: f["type"] == "pong")
        await consumer.send(
            {"type": "send", "conversation_id": cid, "client_id": "k1", "body": "Hello <b>shop</b>"}
        )
        ack = await consumer.until(lambda f: f["type"] == "ack")
        assert ack == {
            "type": "ack",
            "conversation_id": cid,
            "client_id": "k1",
            "seq": 1,
            "id": ack["id"],
        }
        got = await staff.until(lambda f: f["type"] == "message")
        assert got["message"]["body"] == "Hello <b>shop</b>"
        assert got["message"]["seq"] == 1
        await colleague.until(lambda f: f["type"] == "message")  # the whole inbox sees it
        await consumer.until(lambda f: f["type"] == "message")  # the sender's other devices

        await staff.send({"type": "send", "conversation_id": cid, "client_id": "r1", "body": "Hi!"})
        await consumer.until(lambda f: f["type"] == "message" and f["message"]["seq"] == 2)
        picked = await colleague.until(lambda f: f["type"] == "conversation")
        assert picked["conversation"]["assignee_id"] == world.a.staff.id

        await consumer.send({"type": "read", "conversation_id": cid, "seq": 2})
        receipt = await staff.until(lambda f: f["type"] == "read")
        assert receipt == {"type": "read", "conversation_id": cid, "side": "consumer", "seq": 2}

        # A resend with the same client id is acked with the same message, not a new one.
        await consumer.send(
            {"type": "send", "conversation_id": cid, "client_id": "k1", "body": "Hello <b>shop</b>"}
        )
        again = await consumer.until(lambda f: f["type"] == "ack" and f is not ack)
        assert again["seq"] == 1
        assert again["id"] == ack["id"]
        await staff.quiet()
        assert staff.messages(cid) == [1, 2]
        assert consumer.messages(cid) == [1, 2]
        # Someone else's socket heard nothing of it.
        assert await stranger.quiet() == []
    finally:
        for socket in (consumer, staff, colleague, stranger):
            await socket.ws.close()


async def test_naming_someone_elses_conversation_on_the_socket_leaks_nothing(
    server: str, http: httpx.AsyncClient, world: World
) -> None:
    cid = (await _open(http, world))["id"]
    await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "c", "body": "private words"},
        headers=world.headers[world.consumer.id],
    )
    for outsider in (world.stranger, world.b.staff):
        socket = await _connect(server, world.headers[outsider.id])
        try:
            await socket.send({"type": "hello", "cursors": {str(cid): 0}})
            await socket.send(
                {"type": "send", "conversation_id": cid, "client_id": "z", "body": "x"}
            )
            await socket.send({"type": "read", "conversation_id": cid, "seq": 1})
            frames = await socket.quiet(0.8)
            assert [f["type"] for f in frames] == ["error", "error", "error"], frames
            assert {f["code"] for f in frames} == {"not_found"}
            assert frames[1]["client_id"] == "z"
            assert "private" not in json.dumps(frames)
        finally:
            await socket.ws.close()
    history = await http.get(
        f"/api/v1/conversations/{cid}/messages", headers=world.headers[world.consumer.id]
    )
    assert [m["body"] for m in history.json()["items"]] == ["private words"]


async def test_reconnecting_with_a_cursor_catches_up_without_loss_or_duplicates(
    server: str, http: httpx.AsyncClient, world: World
) -> None:
    cid = (await _open(http, world))["id"]
    staff_headers = world.headers[world.a.staff.id]

    async def from_shop(n: int) -> None:
        response = await http.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"client_id": f"s{n}", "body": f"line {n}"},
            headers=staff_headers,
        )
        assert response.status_code == 201

    consumer = await _connect(server, world.headers[world.consumer.id])
    await consumer.send({"type": "hello", "cursors": {str(cid): 0}})
    for n in range(1, 4):
        await from_shop(n)
    await consumer.until(lambda f: f["type"] == "message" and f["message"]["seq"] == 3)
    await consumer.ws.close()
    seen = consumer.messages(cid)
    assert seen == [1, 2, 3]
    for n in range(4, 8):  # while the consumer is away
        await from_shop(n)
    back = await _connect(server, world.headers[world.consumer.id])
    try:
        await back.send({"type": "hello", "cursors": {str(cid): seen[-1]}})
        for n in range(8, 10):  # and while it catches up
            await from_shop(n)
        await back.until(lambda f: f["type"] == "message" and f["message"]["seq"] == 9)
        await back.quiet(0.3)
        assert back.messages(cid) == [4, 5, 6, 7, 8, 9]
    finally:
        await back.ws.close()


async def test_the_socket_refuses_strangers_and_other_sites(
    server: str, world: World, db: Database
) -> None:
    for headers in ({}, {"Authorization": "Bearer mm_not-a-token"}):
        socket = await _connect(server, headers)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket.ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401
    async with db.session() as s:
        user = await s.get(User, world.consumer.id)
        assert user is not None
        cookie, _ = await accounts.issue_token(s, user=user, kind="session")
    evil = await _connect(
        server,
        {"Cookie": f"mm_session={cookie}"},
        origin="http://evil.example",  # type: ignore[arg-type]
    )
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await evil.ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    ours = await _connect(
        server,
        {"Cookie": f"mm_session={cookie}"},
        origin=f"http://{server}",  # type: ignore[arg-type]
    )
    try:
        await ours.send({"type": "ping"})
        assert (await ours.until(lambda f: True))["type"] == "pong"
    finally:
        await ours.ws.close()


async def test_an_offline_recipient_gets_a_notification_and_an_online_one_does_not(
    server: str, http: httpx.AsyncClient, world: World, db: Database
) -> None:
    cid = (await _open(http, world))["id"]
    consumer_socket = await _connect(server, world.headers[world.consumer.id])
    try:
        await consumer_socket.send({"type": "ping"})
        await consumer_socket.until(lambda f: f["type"] == "pong")
        # Nobody of the shop is connected and nobody picked it up: every member is told.
        await consumer_socket.send(
            {"type": "send", "conversation_id": cid, "client_id": "a", "body": "Anyone there?"}
        )
        await consumer_socket.until(lambda f: f["type"] == "ack")
        # The staff member answers by REST while the consumer's socket is connected.
        await http.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"client_id": "b", "body": "Here!"},
            headers=world.headers[world.a.staff.id],
        )
        await consumer_socket.until(lambda f: f["type"] == "message" and f["message"]["seq"] == 2)
    finally:
        await consumer_socket.ws.close()
    async with db.session() as s:
        notes = list(await s.scalars(select(Notification).where(Notification.kind == "chat")))
    told = {n.user_id: n for n in notes}
    assert set(told) == {world.a.owner.id, world.a.staff.id, world.a.other_staff.id}
    assert told[world.a.staff.id].link == f"/console/{world.a.merchant_id}/inbox/{cid}"
    assert "Anyone there?" in told[world.a.staff.id].body
    # Once the consumer is gone, the shop's next message reaches their inbox instead.
    await asyncio.sleep(0.2)
    await http.post(
        f"/api/v1/conversations/{cid}/messages",
        json={"client_id": "c", "body": "Still there?"},
        headers=world.headers[world.a.staff.id],
    )
    async with db.session() as s:
        mine = list(
            await s.scalars(select(Notification).where(Notification.user_id == world.consumer.id))
        )
    assert [(n.kind, n.link, n.key) for n in mine] == [("chat", f"/chats/{cid}", f"chat:{cid}")]
    assert mine[0].body == "Test shop 1: Still there?"


async def test_a_hidden_message_keeps_its_place_and_shows_nothing(
    http: httpx.AsyncClient, world: World, db: Database
) -> None:
    from mobimart.social import chat

    cid = (await _open(http, world))["id"]
    consumer = world.headers[world.consumer.id]
    for n, body in enumerate(["hello", "buy cheap pills here", "bye"]):
        await http.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"client_id": f"h{n}", "body": body},
            headers=consumer,
        )
    history = await http.get(f"/api/v1/conversations/{cid}/messages", headers=consumer)
    spam = history.json()["items"][1]
    async with db.session() as s:
        await chat.hide_message(s, message_id=spam["id"])
        await s.commit()
    staff_view = await http.get(
        f"/api/v1/conversations/{cid}/messages", headers=world.headers[world.a.staff.id]
    )
    items = staff_view.json()["items"]
    assert [(m["seq"], m["body"], m["hidden"]) for m in items] == [
        (1, "hello", False),
        (2, "", True),
        (3, "bye", False),
    ]


async def test_the_hub_fills_gaps_and_drops_repeats_from_the_broker(
    world: World, db: Database
) -> None:
    """What two processes can do to a socket: bring a conversation's messages out of order and
    twice. The socket still gets 1..5 once each, in order (the gap read from the database)."""
    from mobimart.infra.pubsub import LocalBroker
    from mobimart.social import chat
    from mobimart.social.models import Message

    quiet = LocalBroker()  # nobody listens: the messages are only stored
    async with db.session() as s:
        consumer = await s.get(User, world.consumer.id)
        assert consumer is not None
        conversation = await chat.open_conversation(
            s, user=consumer, shop_id=world.a.shop_id, broker=quiet
        )
        for n in range(1, 6):
            await chat.send(
                s,
                user=consumer,
                conversation_id=conversation.id,
                body=f"m{n}",
                client_id=f"m{n}",
                broker=quiet,
            )
        rows = list(
            await s.scalars(
                select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.seq)
            )
        )
        frames = {m.seq: chat.message_frame(m, {}) for m in rows}

    hub = live.Hub(LocalBroker(), db)
    got: list[int] = []

    async def send(text: str) -> None:
        got.append(json.loads(text)["message"]["seq"])

    async def close(code: int) -> None:
        raise AssertionError(f"closed with {code}")

    connection = live.Connection(
        hub, user_id=world.consumer.id, merchant_ids=[], send=send, close=close
    )
    await hub.attach(connection)
    connection.follow({conversation.id: 0})
    connection.start()
    connection.ready()
    try:
        channel = chat.user_channel(world.consumer.id)
        for seq in (3, 1, 3, 5, 2, 4, 5):
            await hub.broker.publish(channel, frames[seq])
        for _ in range(200):
            if len(got) >= 5:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert got == [1, 2, 3, 4, 5]
    finally:
        await hub.detach(connection)
        await hub.stop()


# --- review fixes: access that changes, what the consumer sees, bounded work ------------------


async def test_a_removed_staff_members_socket_is_closed_and_hears_no_more(
    server: str, http: httpx.AsyncClient, world: World, db: Database, monkeypatch: Any
) -> None:
    """Shops are re-checked every RECHECK_S: a member removed meanwhile is closed with 4403
    (the client connects again) and the new socket carries nothing of that merchant."""
    from sqlalchemy import delete

    from mobimart.merchants.models import MerchantMember

    monkeypatch.setattr(chat_api, "RECHECK_S", 0.3)
    cid = (await _open(http, world))["id"]
    staff = await _connect(server, world.headers[world.a.staff.id])
    colleague = await _connect(server, world.headers[world.a.other_staff.id])
    try:
        await staff.send({"type": "hello", "cursors": {}})
        await colleague.send({"type": "hello", "cursors": {}})
        async with db.session() as s:
            await s.execute(
                delete(MerchantMember).where(
                    MerchantMember.merchant_id == world.a.merchant_id,
                    MerchantMember.user_id == world.a.staff.id,
                )
            )
            await s.commit()
        assert await _closed_with(staff) == chat_api.CLOSE_FORBIDDEN
        again = await _connect(server, world.headers[world.a.staff.id])
        try:
            await http.post(
                f"/api/v1/conversations/{cid}/messages",
                json={"client_id": "after", "body": "only for the shop's people"},
                headers=world.headers[world.consumer.id],
            )
            await colleague.until(lambda f: f["type"] == "message")  # a member still hears it
            assert await again.quiet(0.5) == []
        finally:
            await again.ws.close()
    finally:
        await colleague.ws.close()


async def test_a_signed_out_socket_is_closed_at_its_next_recheck(
    server: str, http: httpx.AsyncClient, world: World, db: Database, monkeypatch: Any
) -> None:
    """A sign-in revoked (signed out elsewhere, expired): the socket is closed with 4401 within
    RECHECK_S, whether it was sending or quiet, and nothing sent after that is stored."""
    from sqlalchemy import update

    from mobimart.accounts.models import AuthToken
    from mobimart.db import utcnow
    from mobimart.signing import token_digest

    async def revoke(headers: dict[str, str]) -> None:
        async with db.session() as s:
            await s.execute(
                update(AuthToken)
                .where(AuthToken.token_hash == token_digest(_token(headers)))
                .values(revoked_at=utcnow())
            )
            await s.commit()

    monkeypatch.setattr(chat_api, "RECHECK_S", 0.3)
    cid = (await _open(http, world))["id"]
    consumer = await _connect(server, world.headers[world.consumer.id])
    staff = await _connect(server, world.headers[world.a.staff.id])
    await consumer.send({"type": "ping"})
    await consumer.until(lambda f: f["type"] == "pong")
    await staff.send({"type": "hello", "cursors": {}})
    await revoke(world.headers[world.consumer.id])
    await revoke(world.headers[world.a.staff.id])
    assert await _closed_with(staff) == chat_api.CLOSE_UNAUTHORIZED
    assert await _closed_with(consumer) == chat_api.CLOSE_UNAUTHORIZED
    history = await http.get(
        f"/api/v1/conversations/{cid}/messages", headers=world.headers[world.a.owner.id]
    )
    assert history.json()["items"] == []


async def test_the_consumer_learns_nothing_of_the_shops_staff(
    server: str, http: httpx.AsyncClient, world: World
) -> None:
    cid = (await _open(http, world))["id"]
    consumer_headers = world.headers[world.consumer.id]
    consumer = await _connect(server, consumer_headers)
    staff = await _connect(server, world.headers[world.a.staff.id])
    try:
        await consumer.send({"type": "hello", "cursors": {str(cid): 0}})
        await staff.send({"type": "hello", "cursors": {str(cid): 0}})
        sent = await http.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"client_id": "s1", "body": "Hello from the shop"},
            headers=world.headers[world.a.staff.id],
        )
        assert sent.json()["sender_id"] == world.a.staff.id  # the shop sees its own people
        live_frame = await consumer.until(lambda f: f["type"] == "message")
        assert live_frame["message"]["sender_id"] is None
        shop_frame = await staff.until(lambda f: f["type"] == "message")
        assert shop_frame["message"]["sender_id"] == world.a.staff.id
        await consumer.ws.close()
        # Caught up from the database after a reconnect: the same.
        back = await _connect(server, consumer_headers)
        try:
            await back.send({"type": "hello", "cursors": {str(cid): 0}})
            caught = await back.until(lambda f: f["type"] == "message")
            assert caught["message"]["sender_id"] is None
        finally:
            await back.ws.close()
    finally:
        await staff.ws.close()
    listed = (await http.get("/api/v1/conversations", headers=consumer_headers)).json()
    history = (
        await http.get(f"/api/v1/conversations/{cid}/messages", headers=consumer_headers)
    ).json()
    for row in (listed["items"][0], history["conversation"]):
        assert row["assignee_id"] is None
        assert row["assignee_name"] == ""
        assert row["last_message"]["sender_id"] is None
    assert [m["sender_id"] for m in history["items"]] == [None]
    text = json.dumps([listed, history])
    assert "Staff 1" not in text
    shop = (
        await http.get(
            f"/api/v1/merchants/{world.a.merchant_id}/conversations",
            headers=world.headers[world.a.owner.id],
        )
    ).json()["items"][0]
    assert shop["assignee_id"] == world.a.staff.id
    assert shop["assignee_name"] == "Staff 1"


async def test_a_hello_names_at_most_max_cursors_and_frames_are_rate_limited(
    server: str, http: httpx.AsyncClient, world: World, monkeypatch: Any
) -> None:
    cid = (await _open(http, world))["id"]
    socket = await _connect(server, world.headers[world.consumer.id])
    try:
        many = {str(n): 0 for n in range(1, chat_api.MAX_CURSORS + 2)}
        await socket.send({"type": "hello", "cursors": many})
        frames = await socket.quiet(0.5)
        assert [f["code"] for f in frames] == ["too_many_cursors"]  # one refusal, no reads
        assert str(chat_api.MAX_CURSORS) in frames[0]["detail"]
        await socket.send({"type": "hello", "cursors": {str(cid): 0}})
        assert [f for f in await socket.quiet(0.3) if f not in frames] == []
    finally:
        await socket.ws.close()
    monkeypatch.setattr(chat_api, "FRAME_BURST", 5.0)
    monkeypatch.setattr(chat_api, "FRAME_RATE", 1.0)
    flood = await _connect(server, world.headers[world.consumer.id])
    try:
        for _ in range(12):
            await flood.send({"type": "ping"})
        frames = await flood.quiet(0.5)
        assert [f["type"] for f in frames].count("pong") in (5, 6)
        assert {f.get("code") for f in frames if f["type"] == "error"} == {"rate_limited"}
    finally:
        await flood.ws.close()


async def test_a_message_removed_by_moderation_is_replaced_on_open_sockets(
    server: str, http: httpx.AsyncClient, world: World
) -> None:
    assert world.admin is not None
    cid = (await _open(http, world))["id"]
    consumer_headers = world.headers[world.consumer.id]
    for n, body in enumerate(["hello", "buy cheap pills here"]):
        await http.post(
            f"/api/v1/conversations/{cid}/messages",
            json={"client_id": f"h{n}", "body": body},
            headers=consumer_headers,
        )
    items = (
        await http.get(f"/api/v1/conversations/{cid}/messages", headers=consumer_headers)
    ).json()["items"]
    spam = items[1]
    consumer = await _connect(server, consumer_headers)
    staff = await _connect(server, world.headers[world.a.staff.id])
    elsewhere = await _connect(server, world.headers[world.a.other_staff.id])
    try:
        await consumer.send({"type": "hello", "cursors": {str(cid): 0}})
        await staff.send({"type": "hello", "cursors": {str(cid): 2}})
        await elsewhere.send({"type": "hello", "cursors": {str(cid): 1}})  # has not seen it yet
        await consumer.until(lambda f: f["type"] == "message" and f["message"]["seq"] == 2)
        await elsewhere.until(lambda f: f["type"] == "message" and f["message"]["seq"] == 2)
        await elsewhere.quiet(0.2)
        reported = await http.post(
            "/api/v1/reports",
            json={"subject": "message", "subject_id": spam["id"], "reason": "Spam"},
            headers=world.headers[world.a.staff.id],
        )
        assert reported.status_code == 201, reported.text
        resolved = await http.post(
            f"/api/v1/admin/reports/{reported.json()['id']}/resolve",
            json={"action": "remove"},
            headers=world.headers[world.admin.id],
        )
        assert resolved.status_code == 200, resolved.text
        for socket in (consumer, staff, elsewhere):
            frame = await socket.until(lambda f: f["type"] == "message" and f.get("update"))
            assert frame["message"]["seq"] == 2
            assert frame["message"]["hidden"] is True
            assert frame["message"]["body"] == ""
        assert "pills" not in json.dumps(staff.frames)
        assert staff.messages(cid) == [2]  # the replacement only: nothing new
    finally:
        for socket in (consumer, staff, elsewhere):
            await socket.ws.close()


async def test_the_api_image_route_takes_bearer_tokens_only(
    http: httpx.AsyncClient, world: World, db: Database
) -> None:
    cid = (await _open(http, world))["id"]
    sent = await http.post(
        f"/api/v1/conversations/{cid}/images",
        files={"file": ("a.png", factories.PNG, "image/png")},
        headers=world.headers[world.consumer.id],
    )
    url = sent.json()["image_url"]
    async with db.session() as s:
        user = await s.get(User, world.consumer.id)
        assert user is not None
        cookie, _ = await accounts.issue_token(s, user=user, kind="session")
    assert (await http.get(url, headers={"Cookie": f"mm_session={cookie}"})).status_code == 401
    got = await http.get(url, headers=world.headers[world.consumer.id])
    assert got.headers["cache-control"] == "private, max-age=3600"
    page = await http.get(
        f"/chats/{cid}/images/{sent.json()['id']}", headers={"Cookie": f"mm_session={cookie}"}
    )
    assert page.status_code == 200
    assert page.headers["cache-control"] == got.headers["cache-control"]


async def test_a_resent_image_leaves_no_second_file(
    world: World, db: Database, monkeypatch: Any
) -> None:
    """The same client id raced past the first check: the second upload's file is removed."""
    from mobimart.infra.pubsub import LocalBroker
    from mobimart.social import chat

    quiet = LocalBroker()
    async with db.session() as s:
        consumer = await s.get(User, world.consumer.id)
        assert consumer is not None
        conversation = await chat.open_conversation(
            s, user=consumer, shop_id=world.a.shop_id, broker=quiet
        )
        first, created = await chat.send_image(
            s,
            user=consumer,
            conversation_id=conversation.id,
            data=factories.PNG,
            client_id="img",
            broker=quiet,
        )
        assert created
        store_dir = chat.image_store().root
        before = sorted(p for p in store_dir.rglob("*") if p.is_file())

        async def not_yet(*args: Any, **kwargs: Any) -> None:
            return None

        monkeypatch.setattr(chat, "_by_client_id", not_yet)
        again, created = await chat.send_image(
            s,
            user=consumer,
            conversation_id=conversation.id,
            data=factories.PNG,
            client_id="img",
            broker=quiet,
        )
        assert not created
        assert again.id == first.id
        assert sorted(p for p in store_dir.rglob("*") if p.is_file()) == before


def _recorder() -> tuple[list[str], list[int], Any, Any]:
    sent: list[str] = []
    closed: list[int] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def close(code: int) -> None:
        closed.append(code)

    return sent, closed, send, close


async def test_a_failed_attach_leaves_only_what_it_joined(world: World, db: Database) -> None:
    """A second socket of the same person fails to subscribe: undoing it must not make the
    first look offline."""
    from mobimart.infra.pubsub import Listener, LocalBroker

    class Flaky(LocalBroker):
        fail = False

        async def subscribe(self, channel: str, listener: Listener) -> None:
            if self.fail and channel.startswith("chat:merchant:"):
                raise OSError("connection lost")
            await super().subscribe(channel, listener)

    broker = Flaky()
    hub = live.Hub(broker, db)
    user = world.a.staff.id
    _, _, send, close = _recorder()
    first = live.Connection(
        hub, user_id=user, merchant_ids=[world.a.merchant_id], send=send, close=close
    )
    second = live.Connection(
        hub, user_id=user, merchant_ids=[world.a.merchant_id], send=send, close=close
    )
    try:
        await hub.attach(first)
        broker.fail = True
        with pytest.raises(OSError, match="connection lost"):
            await hub.attach(second)
        await hub.detach(second)
        keys = [f"user:{user}", f"merchant:{world.a.merchant_id}"]
        assert await broker.online(keys) == set(keys)
        assert hub.connected == 1
        await hub.detach(first)
        assert await broker.online(keys) == set()
    finally:
        await hub.stop()


async def test_an_idle_conversation_takes_no_memory_until_its_next_message(
    world: World, db: Database
) -> None:
    """Only conversations active since `since` are loaded at connect; another one is learned
    from its first live message, the messages after `since` read from the database."""
    from mobimart.db import utcnow
    from mobimart.infra.pubsub import LocalBroker
    from mobimart.social import chat
    from mobimart.social.models import Message

    quiet = LocalBroker()

    async def say(n: int) -> None:
        async with db.session() as s:
            consumer = await s.get(User, world.consumer.id)
            assert consumer is not None
            await chat.send(
                s,
                user=consumer,
                conversation_id=cid,
                body=f"m{n}",
                client_id=f"m{n}",
                broker=quiet,
            )

    async with db.session() as s:
        consumer = await s.get(User, world.consumer.id)
        assert consumer is not None
        cid = (
            await chat.open_conversation(s, user=consumer, shop_id=world.a.shop_id, broker=quiet)
        ).id
    for n in (1, 2, 3):
        await say(n)
    await asyncio.sleep(0.01)
    since = utcnow()
    async with db.session() as s:
        active = await chat.socket_conversations(
            s, user_id=world.a.staff.id, merchant_ids=[world.a.merchant_id], since=since
        )
    assert active == {}
    for n in (4, 5):  # written after the connect: the socket has not seen them
        await say(n)
    async with db.session() as s:
        newest = await s.scalar(
            select(Message).where(Message.conversation_id == cid, Message.seq == 5)
        )
        assert newest is not None
        frame = chat.message_frame(newest, {})

    hub = live.Hub(LocalBroker(), db)
    sent, closed, send, close = _recorder()
    connection = live.Connection(
        hub, user_id=world.a.staff.id, merchant_ids=[world.a.merchant_id], send=send, close=close
    )
    await hub.attach(connection)
    connection.follow(active, since=since)
    connection.start()
    connection.ready()
    try:
        assert connection.delivery.upto == {}
        await hub.broker.publish(chat.merchant_channel(world.a.merchant_id), frame)
        for _ in range(200):
            if len(sent) >= 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert [json.loads(t)["message"]["seq"] for t in sent] == [4, 5]
        assert connection.delivery.upto == {cid: 5}
        assert closed == []
    finally:
        await hub.detach(connection)
        await hub.stop()


async def test_after_the_broker_was_away_sockets_catch_up_from_the_database(
    world: World, db: Database
) -> None:
    """Messages published while the broker's subscriptions were lost never arrive: the hub
    reads what its sockets miss, also in a conversation idle at connect."""
    from mobimart.db import utcnow
    from mobimart.infra.pubsub import LocalBroker
    from mobimart.social import chat

    quiet = LocalBroker()  # the "lost" publishes: nobody hears them
    async with db.session() as s:
        consumer = await s.get(User, world.consumer.id)
        assert consumer is not None
        cid = (
            await chat.open_conversation(s, user=consumer, shop_id=world.a.shop_id, broker=quiet)
        ).id
        await chat.send(s, user=consumer, conversation_id=cid, body="m1", broker=quiet)
    await asyncio.sleep(0.01)
    hub = live.Hub(LocalBroker(), db)
    sent, closed, send, close = _recorder()
    connection = live.Connection(
        hub, user_id=world.a.staff.id, merchant_ids=[world.a.merchant_id], send=send, close=close
    )
    await hub.attach(connection)
    connection.follow({}, since=utcnow())  # idle at connect
    connection.start()
    connection.ready()
    try:
        lost_at = utcnow()
        async with db.session() as s:
            consumer = await s.get(User, world.consumer.id)
            assert consumer is not None
            for n in (2, 3):
                await chat.send(s, user=consumer, conversation_id=cid, body=f"m{n}", broker=quiet)
        await hub.resync(lost_at)
        await hub.resync(lost_at)  # twice: nothing twice
        for _ in range(200):
            if len(sent) >= 2:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert [json.loads(t)["message"]["seq"] for t in sent] == [2, 3]
        assert closed == []
    finally:
        await hub.detach(connection)
        await hub.stop()


async def test_stopping_the_hub_closes_its_sockets_and_a_slow_one_is_closed_once(
    world: World, db: Database, monkeypatch: Any
) -> None:
    from mobimart.infra.pubsub import LocalBroker

    monkeypatch.setattr(live, "QUEUE_LIMIT", 3)
    hub = live.Hub(LocalBroker(), db)
    _, slow_closed, send, slow_close = _recorder()
    slow = live.Connection(
        hub, user_id=world.consumer.id, merchant_ids=[], send=send, close=slow_close
    )
    await hub.attach(slow)
    slow.start()  # never ready: frames pile up
    for _ in range(10):
        slow.frame({"type": "pong"})
    await asyncio.sleep(0.05)
    assert slow_closed == [live.CLOSE_TOO_SLOW]
    await hub.detach(slow)

    _, closed, send, close = _recorder()
    connection = live.Connection(
        hub, user_id=world.a.staff.id, merchant_ids=[world.a.merchant_id], send=send, close=close
    )
    await hub.attach(connection)
    connection.start()
    connection.ready()
    await hub.stop()
    assert closed == [live.CLOSE_GOING_AWAY]
    assert hub.connected == 0
