"""Chat across two API processes joined by Redis: a consumer connected to one and the shop's
owner to the other talk at the same time, and each side gets every message once, in order;
a consumer reconnecting to the *other* process with its cursor gets exactly what it missed;
a consumer with no socket anywhere gets an in-app notification."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from mobimart.demo.load import CONSUMER_PHONE, DEMO_PASSWORD, MERCHANTS
from tests.conftest import absent
from tests.e2e.conftest import free_port, start_server, wait_http

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two processes on one database and one Redis (channels of their own in it)."""
    if not _redis_up():
        absent(f"Redis not reachable at {REDIS_URL}")
    var: Path = tmp_path_factory.mktemp("chat-var")
    env = {"MOBIMART_REDIS_URL": REDIS_URL, "MOBIMART_REDIS_PREFIX": f"e2e-{uuid.uuid4().hex}:"}
    first, server = start_server(var, **env)
    port = free_port()
    second = subprocess.Popen(
        [sys.executable, "-m", "mobimart", "serve", "--port", str(port)],
        env=server.env,
        stdout=(var / "second.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", 60, second)
        yield server.url, url
    finally:
        for proc in (first, second):
            proc.terminate()
            proc.wait(10)


def _token(url: str, phone: str) -> dict[str, str]:
    response = httpx.post(
        url + "/api/v1/auth/password-token", json={"phone": phone, "password": DEMO_PASSWORD}
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


class Client:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seqs: list[int] = []
        self.bodies: dict[int, str] = {}

    @classmethod
    async def connect(cls, url: str, headers: dict[str, str], cursor: tuple[int, int]) -> Client:
        ws = await websockets.connect(
            url.replace("http", "ws") + "/api/v1/chat/ws", additional_headers=headers
        )
        await ws.send(json.dumps({"type": "hello", "cursors": {str(cursor[0]): cursor[1]}}))
        return cls(ws)

    async def read_until(self, seq: int, seconds: float = 10) -> None:
        async with asyncio.timeout(seconds):
            while not self.seqs or self.seqs[-1] < seq:
                frame = json.loads(await self.ws.recv())
                if frame["type"] == "message":
                    self.seqs.append(frame["message"]["seq"])
                    self.bodies[frame["message"]["seq"]] = frame["message"]["body"]

    async def drain(self, seconds: float = 0.5) -> None:
        """Whatever else arrives (there should be nothing)."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    frame = json.loads(await self.ws.recv())
                    if frame["type"] == "message":
                        self.seqs.append(frame["message"]["seq"])
        except TimeoutError:
            pass


async def _talk(a: str, b: str) -> None:
    consumer = _token(a, CONSUMER_PHONE)
    owner = _token(b, MERCHANTS[0][0])
    async with httpx.AsyncClient(timeout=20) as http:
        merchant_id = (await http.get(b + "/api/v1/merchants", headers=owner)).json()[0]["id"]
        products = await http.get(f"{b}/api/v1/merchants/{merchant_id}/products", headers=owner)
        product = products.json()["items"][0]
        opened = await http.post(
            a + "/api/v1/conversations",
            json={"shop_id": product["shop_id"], "product_id": product["id"]},
            headers=consumer,
        )
        assert opened.status_code == 201, opened.text
        cid, start = opened.json()["id"], opened.json()["last_seq"]

        on_a = await Client.connect(a, consumer, (cid, start))
        on_b = await Client.connect(b, owner, (cid, start))

        async def burst(client: Client, who: str) -> None:
            for n in range(15):
                await client.ws.send(
                    json.dumps(
                        {
                            "type": "send",
                            "conversation_id": cid,
                            "client_id": f"{who}-{n}",
                            "body": f"{who} {n}",
                        }
                    )
                )

        # Both sides at once: their sends interleave in one numbering, through two processes.
        await asyncio.gather(burst(on_a, "consumer"), burst(on_b, "owner"))
        last = start + 30
        await asyncio.gather(on_a.read_until(last), on_b.read_until(last))
        await on_a.drain()
        await on_b.drain()
        assert on_a.seqs == list(range(start + 1, last + 1))
        assert on_b.seqs == on_a.seqs
        assert on_a.bodies == on_b.bodies
        mine = [on_a.bodies[s] for s in on_a.seqs if on_a.bodies[s].startswith("consumer")]
        assert mine == [f"consumer {n}" for n in range(15)]  # each side's own order is kept

        # The consumer drops off; the owner writes on; the consumer comes back to the other
        # process with its cursor while the owner is still writing.
        await on_a.ws.close()
        await asyncio.sleep(0.3)  # its presence is gone once the socket is
        for n in range(5):
            sent = await http.post(
                f"{b}/api/v1/conversations/{cid}/messages",
                json={"client_id": f"away-{n}", "body": f"while away {n}"},
                headers=owner,
            )
            assert sent.status_code == 201
        notes = await http.get(a + "/api/v1/me/notifications", headers=consumer)
        chat_notes = [n for n in notes.json()["items"] if n["kind"] == "chat"]
        assert len(chat_notes) == 1  # one line per conversation, kept current
        assert chat_notes[0]["link"] == f"/chats/{cid}"
        assert chat_notes[0]["body"].endswith("while away 4")

        back = await Client.connect(b, consumer, (cid, on_a.seqs[-1]))
        for n in range(5):
            await on_b.ws.send(
                json.dumps(
                    {
                        "type": "send",
                        "conversation_id": cid,
                        "client_id": f"late-{n}",
                        "body": f"late {n}",
                    }
                )
            )
        await back.read_until(last + 10)
        await back.drain()
        assert back.seqs == list(range(last + 1, last + 11))
        await back.ws.close()
        await on_b.ws.close()


def test_two_processes_deliver_once_in_order_and_catch_up(two: tuple[str, str]) -> None:
    asyncio.run(_talk(*two))
