"""Real-time chat across two API processes joined by Redis: `--clients` WebSocket clients in
`--clients`/2 conversations, the consumer of each conversation connected to one process and
the shop's staff member to the other, so every message crosses processes through Redis.

PostgreSQL (a scratch database) holds `--clients`/2 shops, each with one staff member, as many
consumers and one conversation each. Every client sends `--rate` messages a second (random
phase, jittered) for `--seconds`; each message carries a unique client id and its send time.
`--reconnect-every` N: one client in N drops its socket once mid-run and comes back with its
hello cursor (and resends what was not acked, with the same client ids).

Counted: sent = messages the server acked; delivered = distinct messages the other side of the
conversation received; lost = acked but never received by the other side within `--grace`
seconds of the end of sending; duplicated = received by the other side more than once; and on
every socket, message numbers must arrive strictly one after another (out_of_order). Latency
is from the sender's send to the counterpart's receipt.

    python -m bench.chat [--clients 1000] [--seconds 20] [--rate 0.1] [--grace 10]
                         [--reconnect-every 50] [--pg URL] [--redis URL]

Then, in this process on the same database, the cost of the per-message rate limit (a row in
`rate_counters` per sender, one upsert) against a whole send.

Summary (the last line):
  chat clients=… processes=2 sent=… delivered=… lost=… duplicated=… p50_ms=… p99_ms=…
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import websockets
from sqlalchemy import insert

from bench.common import (
    migrated,
    percentile,
    production_env,
    redis_reachable,
    say,
    scratch_dir,
    scratch_postgres,
    serve,
)

T = TypeVar("T")
CONNECT_AT_ONCE = 50  # sockets opened in parallel while connecting everyone


@dataclass(frozen=True)
class Pair:
    conversation_id: int
    consumer_token: str
    staff_token: str


async def _seed(env: dict[str, str], pairs: int) -> list[Pair]:
    """Shops, staff, consumers, conversations and API tokens, inserted in bulk (the services
    would take minutes for this many; the rows are the ones they write)."""
    database = await migrated(env)
    from mobimart.accounts import service as accounts
    from mobimart.accounts.models import AuthToken, User
    from mobimart.catalog.models import Shop
    from mobimart.infra.pii import get_vault
    from mobimart.merchants.models import Merchant, MerchantMember
    from mobimart.signing import token_digest
    from mobimart.social.models import Conversation

    vault = get_vault()
    now = dt.datetime.now(dt.UTC)
    try:
        async with database.session() as s:

            async def users(prefix: str, name: str) -> list[int]:
                rows = [
                    {
                        "phone": (phone := f"+86{prefix}{n:08d}"),
                        "phone_hash": accounts.phone_hash(phone),
                        "display_name": f"{name} {n}",
                    }
                    for n in range(pairs)
                ]
                return list(await s.scalars(insert(User).returning(User.id), rows))

            staff = await users("135", "Staff")
            consumers = await users("136", "Consumer")
            merchants = list(
                await s.scalars(
                    insert(Merchant).returning(Merchant.id),
                    [
                        {
                            "name": f"Bench shop {n}",
                            "status": "approved",
                            "licence_number": f"91310000MA1B{n:05d}X"[:18],
                            "legal_rep_name": "李雷",
                            "legal_rep_id_number": "110105198001010011",
                            "legal_rep_id_hash": vault.lookup_hash(f"id:bench{n}"),
                            "contact_phone": f"+86137{n:08d}",
                            "contact_phone_hash": vault.lookup_hash(f"+86137{n:08d}"),
                            "created_by": staff[n],
                        }
                        for n in range(pairs)
                    ],
                )
            )
            await s.execute(
                insert(MerchantMember),
                [
                    {"merchant_id": m, "user_id": u, "role": "staff"}
                    for m, u in zip(merchants, staff, strict=True)
                ],
            )
            shops = list(
                await s.scalars(
                    insert(Shop).returning(Shop.id),
                    [{"merchant_id": m, "name": f"Bench shop {m}"} for m in merchants],
                )
            )
            conversations = list(
                await s.scalars(
                    insert(Conversation).returning(Conversation.id),
                    [
                        {
                            "user_id": consumers[n],
                            "shop_id": shops[n],
                            "merchant_id": merchants[n],
                            "last_message_at": now,
                        }
                        for n in range(pairs)
                    ],
                )
            )
            tokens = {u: "mm_" + secrets.token_urlsafe(32) for u in staff + consumers}
            await s.execute(
                insert(AuthToken),
                [
                    {
                        "user_id": u,
                        "token_hash": token_digest(t),
                        "kind": "api",
                        "label": "bench",
                        "expires_at": now + dt.timedelta(days=1),
                    }
                    for u, t in tokens.items()
                ],
            )
            await s.commit()
    finally:
        await database.dispose()
    return [Pair(conversations[n], tokens[consumers[n]], tokens[staff[n]]) for n in range(pairs)]


# --- the clients -------------------------------------------------------------------------------


@dataclass
class Tally:
    sent_at: dict[str, float] = field(default_factory=dict)  # client id -> send time
    acked: set[str] = field(default_factory=set)
    refused: dict[str, int] = field(default_factory=dict)  # error code -> count
    delivered: dict[str, int] = field(default_factory=dict)  # client id -> times received
    latencies: list[float] = field(default_factory=list)
    catch_up_ms: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=list)  # latencies since the last progress line
    out_of_order: int = 0
    reconnects: int = 0
    caught_up: int = 0  # messages received in a catch-up after a reconnect


class Client:
    """One socket's person: sends on a schedule, counts what arrives from the other side."""

    def __init__(self, name: str, url: str, token: str, side: str, pair: Pair, tally: Tally):
        self.name = name
        self.url = url
        self.token = token
        self.side = side
        self.conversation_id = pair.conversation_id
        self.tally = tally
        self.ws: Any = None
        self.upto = 0  # the highest seq received, every one below it received too
        self.pending: dict[str, str] = {}  # client id -> frame, sent and not acked yet
        self.counter = 0
        self.reader: asyncio.Task[None] | None = None
        self.away: tuple[float, float] | None = None  # when the dropped socket was gone
        self.connected_at = 0.0
        self.partner: Client | None = None  # the other side of the conversation

    async def connect(self) -> None:
        self.ws = await websockets.connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            max_queue=None,
            ping_interval=None,
        )
        await self.ws.send(
            json.dumps({"type": "hello", "cursors": {str(self.conversation_id): self.upto}})
        )
        self.connected_at = time.time()
        self.reader = asyncio.create_task(self._read(self.ws))
        for frame in list(self.pending.values()):  # what the last socket left unacked
            await self.ws.send(frame)

    async def send_one(self) -> None:
        self.counter += 1
        client_id = f"{self.name}-{self.counter}"
        sent = time.time()
        frame = json.dumps(
            {
                "type": "send",
                "conversation_id": self.conversation_id,
                "client_id": client_id,
                "body": f"{client_id} {sent:.6f}",
            }
        )
        self.tally.sent_at[client_id] = sent
        self.pending[client_id] = frame
        await self.ws.send(frame)

    async def reconnect(self, away_s: float) -> None:
        """Drop the socket, stay away a moment (the other side writes on), come back."""
        self.tally.reconnects += 1
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.ws.close()
        gone = time.time()
        await asyncio.sleep(away_s / 2)
        if self.partner is not None:  # something to catch up on, whatever the rate
            await self.partner.send_one()
        await asyncio.sleep(away_s / 2)
        self.away = (gone, time.time())
        for attempt in range(5):  # as an app would: try again a moment later
            try:
                await self.connect()
                return
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                say(f"  {self.name}: reconnect failed ({exc}); trying again")
                await asyncio.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"{self.name} could not reconnect")

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.ws.close()

    async def _read(self, ws: Any) -> None:
        tally = self.tally
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "ack":
                    tally.acked.add(frame["client_id"])
                    self.pending.pop(frame["client_id"], None)
                elif kind == "error":
                    code = frame["code"]
                    tally.refused[code] = tally.refused.get(code, 0) + 1
                    self.pending.pop(frame.get("client_id") or "", None)
                elif kind == "message":
                    self._message(frame["message"])

    def _message(self, message: dict[str, Any]) -> None:
        now = time.time()
        tally = self.tally
        if message["seq"] != self.upto + 1:
            tally.out_of_order += 1
        self.upto = max(self.upto, message["seq"])
        if self.away is not None:
            created = dt.datetime.fromisoformat(message["created_at"]).timestamp()
            if self.away[0] <= created <= self.away[1]:
                tally.caught_up += 1
        if message["side"] == self.side:
            return  # our own message, echoed to our other devices
        client_id = message["client_id"]
        seen = tally.delivered.get(client_id, 0)
        tally.delivered[client_id] = seen + 1
        if not seen:
            sent = float(message["body"].split()[1])
            if sent >= self.connected_at:
                tally.latencies.append((now - sent) * 1000)
                tally.window.append((now - sent) * 1000)
            else:  # sent while this client was away: a catch-up, not a live delivery
                tally.catch_up_ms.append((now - sent) * 1000)


async def _run_clients(args: argparse.Namespace, pairs: list[Pair], urls: list[str]) -> Tally:
    tally = Tally()
    clients: list[Client] = []
    for n, pair in enumerate(pairs):
        # The consumer on one process, the shop on the other: every message crosses.
        consumer_url, staff_url = (urls[0], urls[1]) if n % 2 == 0 else (urls[1], urls[0])
        consumer = Client(f"c{n}", consumer_url, pair.consumer_token, "consumer", pair, tally)
        staff = Client(f"s{n}", staff_url, pair.staff_token, "shop", pair, tally)
        consumer.partner, staff.partner = staff, consumer
        clients += [consumer, staff]
    started = time.monotonic()
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def connect(client: Client) -> None:
        async with gate:
            await client.connect()

    await asyncio.gather(*(connect(c) for c in clients))
    say(f"  {len(clients)} sockets connected in {time.monotonic() - started:.1f} s")
    await asyncio.sleep(1.0)  # every socket's hello applied and its channels subscribed
    # The clients are not what is measured: keep the collector from rescanning the thousand
    # sockets' objects in the middle of the run (a full collection stalls every client).
    gc.collect()
    gc.freeze()

    stop_at = time.monotonic() + args.seconds
    reconnecting = set(range(0, len(clients), args.reconnect_every)) if args.reconnect_every else ()

    async def talk(index: int, client: Client) -> None:
        interval = 1.0 / args.rate
        next_at = time.monotonic() + random.uniform(0, interval)
        reconnect_at = (
            time.monotonic() + args.seconds * random.uniform(0.3, 0.7)
            if index in reconnecting
            else None
        )
        while True:
            if reconnect_at is not None and reconnect_at <= next_at:
                await asyncio.sleep(max(0.0, reconnect_at - time.monotonic()))
                reconnect_at = None
                await client.reconnect(args.away)
                continue
            if next_at >= stop_at:
                return
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await client.send_one()
            next_at += interval * random.uniform(0.5, 1.5)

    async def progress() -> None:
        while True:
            await asyncio.sleep(5)
            say(
                f"  {time.monotonic() - started:5.0f} s: sent {len(tally.sent_at)}, "
                f"acked {len(tally.acked)}, delivered {len(tally.delivered)}, "
                f"refused {sum(tally.refused.values())}, reconnects {tally.reconnects}; "
                f"latest p50 {percentile(tally.window, 0.5):.0f} ms, "
                f"p99 {percentile(tally.window, 0.99):.0f} ms"
            )
            tally.window.clear()

    reporter = asyncio.create_task(progress())
    say(f"  sending for {args.seconds} s at {args.rate}/s per client")
    await asyncio.gather(*(talk(i, c) for i, c in enumerate(clients)))
    deadline = time.monotonic() + args.grace
    while time.monotonic() < deadline:
        if any(c.pending for c in clients):
            await asyncio.sleep(0.2)
            continue
        if tally.acked <= tally.delivered.keys():
            break
        await asyncio.sleep(0.2)
    reporter.cancel()
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return tally


# --- the per-message rate limit ----------------------------------------------------------------


async def _limit_cost(env: dict[str, str], samples: int) -> tuple[float, float]:
    """Mean ms of a whole text send and of its rate-limit step alone, on the same database
    (in this process, no sockets): how much of a send the per-message limit costs."""
    from sqlalchemy import select

    from mobimart.accounts.models import User
    from mobimart.db import Database
    from mobimart.infra.pubsub import LocalBroker
    from mobimart.moderation import service as moderation
    from mobimart.social import chat
    from mobimart.social.models import Conversation

    database = Database(env["MOBIMART_DATABASE_URL"])
    broker = LocalBroker()
    try:
        async with database.session() as s:
            rows = (
                await s.execute(
                    select(Conversation.id, Conversation.merchant_id, User).join(
                        User, User.id == Conversation.user_id
                    )
                )
            ).all()
        for _, merchant_id, _ in rows:  # the shops are connected, as in the run
            await broker.join(f"merchant:{merchant_id}")
        send_s = limit_s = 0.0
        for n in range(samples):
            conversation_id, _, user = rows[n % len(rows)]
            async with database.session() as s:
                began = time.perf_counter()
                await chat.send(
                    s,
                    user=user,
                    conversation_id=conversation_id,
                    body=f"cost {n}",
                    client_id=f"cost-{n}",
                    broker=broker,
                )
                send_s += time.perf_counter() - began
            async with database.session() as s:
                began = time.perf_counter()
                await moderation.limit(s, user_id=10_000_000 + n % 20, action="message")
                await s.commit()
                limit_s += time.perf_counter() - began
        return send_s / samples * 1000, limit_s / samples * 1000
    finally:
        await database.dispose()


def _cpu_seconds(urls: list[str]) -> float:
    """CPU time used so far by the server processes serving `urls` (Linux /proc)."""
    ports = {u.rsplit(":", 1)[1].split("/")[0] for u in urls}
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            if b"uvicorn" not in b" ".join(args):
                continue
            port = args[args.index(b"--port") + 1].decode()
            if port not in ports:
                continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return total


def _event_loop_run(coroutine: Coroutine[Any, Any, T]) -> T:
    """uvloop where it is installed (with uvicorn[standard]), as the servers run: the clients
    share the machine's two cores with them, so their cost counts."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


@contextlib.contextmanager
def _two_processes(env: dict[str, str]) -> Iterator[list[str]]:
    with (
        serve("mobimart.app:create_app", env, factory=True, startup_s=120) as first,
        serve("mobimart.app:create_app", env, factory=True, startup_s=120) as second,
    ):
        yield [first, second]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=0.1, help="messages per second per client")
    parser.add_argument("--grace", type=float, default=10)
    parser.add_argument("--reconnect-every", type=int, default=50)
    parser.add_argument("--away", type=float, default=2.0, help="seconds a dropped client waits")
    parser.add_argument("--limit-samples", type=int, default=300)
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    if args.clients < 2 or args.clients % 2:
        raise SystemExit("--clients is an even number: two per conversation")
    if not redis_reachable(args.redis):
        raise SystemExit(f"Redis is not reachable at {args.redis}")
    pairs_n = args.clients // 2

    with scratch_postgres(args.pg) as url:
        env = production_env(url, scratch_dir())
        env["MOBIMART_REDIS_URL"] = args.redis
        env["MOBIMART_REDIS_PREFIX"] = f"bench-{os.urandom(4).hex()}:"
        began = time.monotonic()
        pairs = asyncio.run(_seed(env, pairs_n))
        say(
            f"seeded {pairs_n} shops with one staff member, {pairs_n} consumers and "
            f"{pairs_n} conversations in {time.monotonic() - began:.1f} s (PostgreSQL)"
        )
        say(
            f"two API processes (uvicorn, production settings, SQLAlchemy's default pool of "
            f"5 + 10 connections each), Redis pub/sub at {args.redis}"
        )
        with _two_processes(env) as urls:
            ws_urls = [u.replace("http://", "ws://") + "/api/v1/chat/ws" for u in urls]
            say(f"connecting {args.clients} clients, half to each process")
            cpu_before, wall_before = _cpu_seconds(urls), time.monotonic()
            tally = _event_loop_run(_run_clients(args, pairs, ws_urls))
            cpu, wall = _cpu_seconds(urls) - cpu_before, time.monotonic() - wall_before
            say(
                f"  the two servers used {cpu:.1f} s of CPU in {wall:.1f} s "
                f"({cpu / wall / 2:.0%} of a core each, connecting included); load average "
                f"{os.getloadavg()[0]:.1f}"
            )
        send_ms, limit_ms = asyncio.run(_limit_cost(env, args.limit_samples))

    sent = len(tally.acked)
    delivered_ids = set(tally.delivered)
    lost = len(tally.acked - delivered_ids)
    duplicated = sum(n - 1 for n in tally.delivered.values() if n > 1)
    unacked = len(tally.sent_at.keys() - tally.acked)
    say(
        f"  {len(tally.sent_at)} messages sent, {sent} acked, {unacked} not acked, refused "
        f"{tally.refused or 'none'}; {tally.reconnects} reconnects caught up "
        f"{tally.caught_up} messages; out of order on a socket: {tally.out_of_order}"
    )
    if tally.catch_up_ms:
        say(
            f"  {len(tally.catch_up_ms)} messages reached a client that was away when they "
            f"were sent (caught up on its return, up to {max(tally.catch_up_ms):.0f} ms after "
            "sending; not in the latencies below)"
        )
    say(
        f"  rate limit: {limit_ms:.1f} ms of a {send_ms:.1f} ms send "
        f"({limit_ms / send_ms:.0%}), measured in one process on the same database"
    )
    print(
        f"chat clients={args.clients} processes=2 sent={sent} delivered={len(delivered_ids)} "
        f"lost={lost} duplicated={duplicated} p50_ms={percentile(tally.latencies, 0.5):.0f} "
        f"p99_ms={percentile(tally.latencies, 0.99):.0f}",
        flush=True,
    )
    if lost or duplicated or tally.out_of_order or unacked:
        sys.exit(1)


if __name__ == "__main__":
    main()
