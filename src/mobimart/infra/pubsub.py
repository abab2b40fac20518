"""Publish/subscribe between API processes, and who is connected: in-process for one process,
Redis when `MOBIMART_REDIS_URL` is set.

A listener is a plain function called with (channel, payload) in the event loop; it must not
block (the chat hub only queues the payload for its sockets). Subscribing returns once the
subscription is active, so whatever is published after that reaches the listener.

Presence is a count per key ("user:7", "merchant:3") of this process's connected sockets; with
Redis each process also names itself in a hash per key while it holds such a socket, and keeps
a heartbeat key of its own alive, so a crashed process stops counting within PRESENCE_TTL_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger("mobimart.pubsub")

Listener = Callable[[str, str], None]

# A process proves it is alive every PRESENCE_REFRESH_S; others trust it for PRESENCE_TTL_S,
# so one missed beat (a busy loop, a Redis hiccup) does not make everyone look offline, and a
# crashed process's sockets stop counting within PRESENCE_TTL_S. Presence hashes left behind
# by crashed processes expire after STALE_PRESENCE_S without a join.
PRESENCE_REFRESH_S = 10.0
PRESENCE_TTL_S = 30.0
STALE_PRESENCE_S = 7 * 24 * 3600


class Broker(ABC):
    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._present: dict[str, int] = defaultdict(int)

    # --- pub/sub ---

    async def start(self) -> None:  # noqa: B027 (the in-process broker has nothing to start)
        """Open connections; idempotent."""

    async def stop(self) -> None:  # noqa: B027
        """Close connections; listeners are dropped."""

    @abstractmethod
    async def publish(self, channel: str, payload: str) -> None: ...

    async def publish_many(self, channels: list[str], payload: str) -> None:
        for channel in channels:
            await self.publish(channel, payload)

    async def subscribe(self, channel: str, listener: Listener) -> None:
        self._listeners[channel].add(listener)

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        listeners = self._listeners.get(channel)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[channel]

    def _deliver(self, channel: str, payload: str) -> None:
        for listener in list(self._listeners.get(channel, ())):
            try:
                listener(channel, payload)
            except Exception:  # one broken listener must not starve the others
                log.exception("pub/sub listener failed", extra={"channel": channel})

    # --- presence ---

    async def join(self, key: str) -> None:
        self._present[key] += 1

    async def leave(self, key: str) -> None:
        self._present[key] -= 1
        if self._present[key] <= 0:
            del self._present[key]

    async def online(self, keys: list[str]) -> set[str]:
        """Which of `keys` have a connected socket in any process."""
        return {k for k in keys if self._present.get(k, 0) > 0}


class LocalBroker(Broker):
    """One process: publishing calls the listeners (soon, not inside the publisher's call)."""

    async def publish(self, channel: str, payload: str) -> None:
        if channel in self._listeners:
            asyncio.get_running_loop().call_soon(self._deliver, channel, payload)


class RedisBroker(Broker):
    """Redis pub/sub over one subscription connection per process, channels subscribed while a
    local listener needs them."""

    def __init__(self, url: str, *, prefix: str = "mobimart:") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self._process = secrets.token_hex(6)
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Futures of SUBSCRIBE commands sent, per channel, answered in order by Redis.
        self._confirming: dict[str, deque[asyncio.Future[None]]] = defaultdict(deque)
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._commands = asyncio.Lock()  # SUBSCRIBE and UNSUBSCRIBE leave in decision order
        self._control = f"{prefix}process:{self._process}"
        self._client: Redis | None = None

    def _redis(self) -> Redis:
        """Publishing and presence share a pool that waits for a free connection when busy
        (a burst of sends must queue, not fail with "too many connections")."""
        if self._client is None:
            pool = BlockingConnectionPool.from_url(self.url, max_connections=50, timeout=20)
            self._client = Redis(connection_pool=pool)
        return self._client

    async def start(self) -> None:
        async with self._lock:
            if self._pubsub is not None:
                return
            pubsub = self._redis().pubsub()
            # Always subscribed to one channel of its own, so the reader has something to
            # read before the first socket arrives (an unsubscribed PubSub cannot be read).
            await pubsub.subscribe(self._control)
            self._pubsub = pubsub
            self._stopping.clear()
            await self._heartbeat()
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._read(pubsub)),
                loop.create_task(self._refresh_presence()),
            ]

    async def stop(self) -> None:
        self._stopping.set()
        if self._tasks:
            self._tasks[0].cancel()  # the reader, waiting on its socket; the other ends itself
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await task
        self._tasks = []
        if self._pubsub is not None:
            with contextlib.suppress(RedisError):
                pipe = self._redis().pipeline(transaction=False)
                for key in self._present:
                    pipe.hdel(self._presence_key(key), self._process)
                pipe.delete(self._alive_key(self._process))
                await pipe.execute()
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        for waiting in self._confirming.values():
            for future in waiting:
                future.cancel()
        self._confirming.clear()
        self._listeners.clear()
        self._present.clear()

    async def publish(self, channel: str, payload: str) -> None:
        await self._redis().publish(self.prefix + channel, payload)

    async def publish_many(self, channels: list[str], payload: str) -> None:
        pipe = self._redis().pipeline(transaction=False)
        for channel in channels:
            pipe.publish(self.prefix + channel, payload)
        await pipe.execute()

    async def subscribe(self, channel: str, listener: Listener) -> None:
        await self.start()
        async with self._commands:
            first = channel not in self._listeners
            await super().subscribe(channel, listener)
            if first:
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._confirming[channel].append(future)
                assert self._pubsub is not None
                await self._pubsub.subscribe(self.prefix + channel)
            else:
                waiting = self._confirming.get(channel)
                if not waiting:
                    return  # active already
                future = waiting[-1]  # someone else's SUBSCRIBE on its way is ours too
        await asyncio.shield(future)

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        await super().unsubscribe(channel, listener)
        # Under the lock, and only if nobody subscribed again meanwhile: an UNSUBSCRIBE sent
        # after someone's SUBSCRIBE would leave them deaf.
        async with self._commands:
            if channel not in self._listeners and self._pubsub is not None:
                with contextlib.suppress(RedisError):
                    await self._pubsub.unsubscribe(self.prefix + channel)

    async def _read(self, pubsub: PubSub) -> None:
        skip = len(self.prefix)
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                # redis-py reconnects and subscribes again on the next read; what was
                # published in between is filled in by the chat hub when the next message of
                # the same conversation arrives, or by the client's cursor on reconnect.
                log.warning("pub/sub connection lost: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            kind = message["type"]
            channel = _text(message["channel"])[skip:]
            if kind == "message":
                self._deliver(channel, _text(message["data"]))
            elif kind == "subscribe":
                waiting = self._confirming.get(channel)
                if waiting:
                    future = waiting.popleft()
                    if not future.done():
                        future.set_result(None)
                    if not waiting:
                        del self._confirming[channel]

    # --- presence ---

    def _presence_key(self, key: str) -> str:
        return f"{self.prefix}presence:{key}"

    def _alive_key(self, process: str) -> str:
        return f"{self.prefix}alive:{process}"

    async def join(self, key: str) -> None:
        await self.start()  # the heartbeat is what makes this process's entries count
        await super().join(key)
        if self._present[key] == 1:
            pipe = self._redis().pipeline(transaction=False)
            pipe.hset(self._presence_key(key), self._process, "1")
            pipe.expire(self._presence_key(key), STALE_PRESENCE_S)
            await pipe.execute()

    async def leave(self, key: str) -> None:
        await super().leave(key)
        if key not in self._present:
            with contextlib.suppress(RedisError):
                await self._redis().hdel(self._presence_key(key), self._process)

    async def _heartbeat(self) -> None:
        await self._redis().set(self._alive_key(self._process), "1", ex=int(PRESENCE_TTL_S))

    async def _refresh_presence(self) -> None:
        """One key per process, however many sockets it holds: a refresh is one command.
        Ends when `stop` sets the event, never cancelled inside a command (redis-py may not
        give its connection back then)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), PRESENCE_REFRESH_S)
                return
            try:
                await self._heartbeat()
            except RedisError as exc:
                log.warning("presence heartbeat failed: %s", exc)

    async def online(self, keys: list[str]) -> set[str]:
        local = await super().online(keys)
        rest = [k for k in keys if k not in local]
        if not rest:
            return local
        found = await self._redis().eval(
            _ONLINE_SCRIPT,
            len(rest),
            *[self._presence_key(k) for k in rest],
            self._alive_key(""),
        )
        return local | {rest[int(i) - 1] for i in found}


# Which presence hashes name a process that is still alive (its heartbeat key exists): one
# round trip for the sender's check, whatever the number of processes.
_ONLINE_SCRIPT = """
local found = {}
for i, key in ipairs(KEYS) do
  for _, process in ipairs(redis.call('HKEYS', key)) do
    if redis.call('EXISTS', ARGV[1] .. process) == 1 then
      found[#found + 1] = i
      break
    end
  end
end
return found
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def make_broker(redis_url: str | None, *, prefix: str = "mobimart:") -> Broker:
    return RedisBroker(redis_url, prefix=prefix) if redis_url else LocalBroker()
