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
import datetime as dt
import logging
import secrets
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = logging.getLogger("mobimart.pubsub")

Listener = Callable[[str, str], None]
Resync = Callable[[dt.datetime], Coroutine[Any, Any, None]]

# A process proves it is alive every PRESENCE_REFRESH_S; others trust it for PRESENCE_TTL_S,
# so one missed beat (a busy loop, a Redis hiccup) does not make everyone look offline, and a
# crashed process's sockets stop counting within PRESENCE_TTL_S. Presence hashes left behind
# by crashed processes expire after STALE_PRESENCE_S without a join.
PRESENCE_REFRESH_S = 10.0
PRESENCE_TTL_S = 30.0
STALE_PRESENCE_S = 7 * 24 * 3600
# A SUBSCRIBE is confirmed within milliseconds; one not confirmed in this long has failed (its
# connection dropped): the socket waiting for it is refused and reconnects.
SUBSCRIBE_TIMEOUT_S = 10.0


class Broker(ABC):
    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self._present: dict[str, int] = defaultdict(int)
        self._resync: list[Resync] = []

    def on_reconnect(self, hook: Resync) -> None:
        """Call `hook(lost_at)` after the subscriptions were lost and are back: whatever was
        published from `lost_at` on may not have arrived (the in-process broker never loses)."""
        self._resync.append(hook)

    # --- pub/sub ---

    async def start(self) -> None:  # noqa: B027 (the in-process broker has nothing to start)
        """Open connections; idempotent."""

    async def stop(self) -> None:  # noqa: B027
        """Close connections; listeners are dropped."""

    @abstractmethod
    async def publish(self, channel: str, payload: str) -> None: ...

    async def publish_many(self, channels: list[str], payload: str) -> None:
        await self.publish_each([(channel, payload) for channel in channels])

    async def publish_each(self, items: list[tuple[str, str]]) -> None:
        """(channel, payload) pairs, in order."""
        for channel, payload in items:
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
        self._hooks: set[asyncio.Task[None]] = set()  # reconnect hooks running (kept: not GC'd)
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
        for hook in list(self._hooks):
            hook.cancel()
        for waiting in self._confirming.values():
            for future in waiting:
                future.cancel()
        self._confirming.clear()
        self._listeners.clear()
        self._present.clear()

    async def publish(self, channel: str, payload: str) -> None:
        await self._redis().publish(self.prefix + channel, payload)

    async def publish_each(self, items: list[tuple[str, str]]) -> None:
        pipe = self._redis().pipeline(transaction=False)  # one round trip
        for channel, payload in items:
            pipe.publish(self.prefix + channel, payload)
        await pipe.execute()

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Returns once the channel is active; raises (with the listener removed again) when
        the SUBSCRIBE fails or is not confirmed within SUBSCRIBE_TIMEOUT_S, so the next
        subscriber sends its own instead of waiting on this one for good."""
        await self.start()
        async with self._commands:
            first = channel not in self._listeners
            await super().subscribe(channel, listener)
            if first:
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._confirming[channel].append(future)
                try:
                    assert self._pubsub is not None
                    await self._pubsub.subscribe(self.prefix + channel)
                except BaseException as exc:
                    self._unconfirmed(channel, future, exc)
                    await super().unsubscribe(channel, listener)
                    raise
            else:
                waiting = self._confirming.get(channel)
                if not waiting:
                    return  # active already
                future = waiting[-1]  # someone else's SUBSCRIBE on its way is ours too
        try:
            await asyncio.wait_for(asyncio.shield(future), SUBSCRIBE_TIMEOUT_S)
        except Exception as exc:  # not a cancelled waiter: the SUBSCRIBE itself went wrong
            self._unconfirmed(channel, future, exc)
            # Unsubscribed (locally, and at Redis once nobody else listens): a later subscriber
            # starts again with a SUBSCRIBE of its own.
            with contextlib.suppress(RedisError, OSError):
                await self.unsubscribe(channel, listener)
            raise

    def _unconfirmed(self, channel: str, future: asyncio.Future[None], exc: BaseException) -> None:
        """A SUBSCRIBE that failed or timed out: nobody waits for its confirmation any more
        (everyone sharing it is told), so a confirmation arriving late is simply ignored."""
        waiting = self._confirming.get(channel)
        if waiting is not None:
            with contextlib.suppress(ValueError):
                waiting.remove(future)
            if not waiting:
                del self._confirming[channel]
        if not future.done():
            failure = exc if isinstance(exc, Exception) else RedisError("SUBSCRIBE cancelled")
            future.set_exception(failure)
            future.exception()  # retrieved: nobody else may be waiting for it

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
        lost_at: dt.datetime | None = None
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                # redis-py reconnects and subscribes again on the next read; what was
                # published in between is read from the database by the reconnect hooks
                # (the chat hub catches its sockets up).
                log.warning("pub/sub connection lost: %s", exc)
                lost_at = lost_at or dt.datetime.now(dt.UTC)
                await asyncio.sleep(0.5)
                continue
            if lost_at is not None:  # read again: connected and subscribed again
                self._reconnected(lost_at)
                lost_at = None
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

    def _reconnected(self, lost_at: dt.datetime) -> None:
        for hook in self._resync:
            task = asyncio.get_running_loop().create_task(hook(lost_at))
            self._hooks.add(task)
            task.add_done_callback(self._hook_done)

    def _hook_done(self, task: asyncio.Task[None]) -> None:
        self._hooks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("pub/sub reconnect hook failed", exc_info=task.exception())

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
            try:
                await pipe.execute()
            except BaseException:
                await super().leave(key)  # not joined: the caller must not leave it
                raise

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
