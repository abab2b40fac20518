"""The chat sockets of one process: broker subscriptions shared by the sockets that need them,
and per socket and conversation a delivery position that makes delivery exactly once and in
order whatever order the broker brings messages in.

The hot path (a broker message reaching a socket) touches no database; only a gap does: a
message numbered past the next one expected means the ones between are committed already
(docs/adr/0008), so they are read and sent first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from mobimart.db import Database
from mobimart.infra.pubsub import Broker
from mobimart.social import chat

log = logging.getLogger("mobimart.chat")

# A socket whose client does not keep up is closed once this many frames wait for it; the
# client reconnects with its cursor and catches up from the database instead.
QUEUE_LIMIT = 5000
# Catch-up reads this many messages at a time.
BATCH = 200
# How long a new socket waits for a hello before delivering live (a hello names cursors,
# which must be applied before anything is sent).
HELLO_WAIT_S = 1.0
CLOSE_TOO_SLOW = 1013
CLOSE_INTERNAL_ERROR = 1011


# --- the rule ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deliver:
    """Send this message now."""


@dataclass(frozen=True)
class Skip:
    """Sent already."""


@dataclass(frozen=True)
class Fill:
    """Read `after`+1 .. `upto` from the database and send them in order."""

    after: int
    upto: int


Decision = Deliver | Skip | Fill
DELIVER, SKIP = Deliver(), Skip()


@dataclass
class Delivery:
    """Per conversation, the highest seq this socket has delivered with none missing below.
    A conversation not known at connect time is new since, so it starts at 0."""

    upto: dict[int, int] = field(default_factory=dict)

    def decide(self, conversation_id: int, seq: int) -> Decision:
        upto = self.upto.get(conversation_id, 0)
        if seq <= upto:
            return SKIP
        if seq == upto + 1:
            return DELIVER
        return Fill(upto, seq)

    def delivered(self, conversation_id: int, seq: int) -> None:
        if seq > self.upto.get(conversation_id, 0):
            self.upto[conversation_id] = seq

    def restart(self, conversation_id: int, cursor: int) -> None:
        """The client has everything up to `cursor` (its hello)."""
        self.upto[conversation_id] = max(0, cursor)

    def position(self, conversation_id: int) -> int:
        return self.upto.get(conversation_id, 0)


# --- one socket --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Live:
    conversation_id: int
    seq: int
    frame: str


@dataclass(frozen=True)
class _Frame:
    frame: str


@dataclass(frozen=True)
class _Restart:
    conversation_id: int
    cursor: int


_Item = _Live | _Frame | _Restart | None


class Connection:
    """One socket's outgoing side: a queue worked by one task, so frames leave in order."""

    def __init__(
        self,
        hub: Hub,
        *,
        user_id: int,
        merchant_ids: list[int],
        send: Callable[[str], Awaitable[None]],
        close: Callable[[int], Coroutine[Any, Any, None]],
    ) -> None:
        self.hub = hub
        self.user_id = user_id
        self.merchant_ids = merchant_ids
        self.delivery = Delivery()
        self.known: set[int] = set()
        self._send = send
        self._close = close
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._overflowed = False

    @property
    def channels(self) -> list[str]:
        return [chat.user_channel(self.user_id)] + [
            chat.merchant_channel(m) for m in self.merchant_ids
        ]

    @property
    def presence(self) -> list[str]:
        return [f"user:{self.user_id}"] + [f"merchant:{m}" for m in self.merchant_ids]

    def follow(self, conversations: dict[int, int]) -> None:
        """Conversations known at connect, delivered live after their current seq."""
        for ident, last in conversations.items():
            self.known.add(ident)
            self.delivery.restart(ident, last)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def ready(self) -> None:
        """Start delivering (after the hello, or without one)."""
        self._ready.set()

    def hello(self, cursors: dict[int, int], *, first: bool) -> None:
        if first and not self._ready.is_set():
            # Nothing has been sent yet: the cursors apply before anything queued.
            for ident, cursor in cursors.items():
                self.delivery.restart(ident, cursor)
                self._queue.put_nowait(_Restart(ident, -1))
        else:
            for ident, cursor in cursors.items():
                self._queue.put_nowait(_Restart(ident, cursor))

    def offer(self, item: _Live | _Frame) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= QUEUE_LIMIT:
            self._overflowed = True
            log.warning("chat socket too slow; closing it", extra={"user_id": self.user_id})
            asyncio.get_running_loop().create_task(self._close(CLOSE_TOO_SLOW))
            return
        self._queue.put_nowait(item)

    def frame(self, payload: dict[str, Any]) -> None:
        """A frame for this socket only (ack, error, pong)."""
        self.offer(_Frame(json.dumps(payload, ensure_ascii=False)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            await self._work()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The socket cannot go on in order (its socket or the database failed): close it,
            # and the client comes back with its cursor.
            log.exception("chat socket delivery failed", extra={"user_id": self.user_id})
            await self._close(CLOSE_INTERNAL_ERROR)

    async def _work(self) -> None:
        await self._ready.wait()
        while True:
            item = await self._queue.get()
            if isinstance(item, _Frame):
                await self._send(item.frame)
            elif isinstance(item, _Live):
                await self._live(item)
            elif isinstance(item, _Restart):
                if item.cursor >= 0:
                    self.delivery.restart(item.conversation_id, item.cursor)
                await self._fill(item.conversation_id, None)

    async def _live(self, item: _Live) -> None:
        decision = self.delivery.decide(item.conversation_id, item.seq)
        if isinstance(decision, Deliver):
            await self._send(item.frame)
            self.delivery.delivered(item.conversation_id, item.seq)
        elif isinstance(decision, Fill):
            await self._fill(item.conversation_id, decision.upto)
            if self.delivery.position(item.conversation_id) < item.seq:
                # Not in the database (cannot happen while seq is taken under the row lock);
                # send what arrived rather than stall the conversation.
                await self._send(item.frame)
                self.delivery.delivered(item.conversation_id, item.seq)

    async def _fill(self, conversation_id: int, upto: int | None) -> None:
        """Send what follows the delivered position from the database, up to `upto` (or to
        the newest message)."""
        while True:
            after = self.delivery.position(conversation_id)
            if upto is not None and after >= upto:
                return
            async with self.hub.database.session() as session:
                rows = await chat.messages_after(
                    session,
                    conversation_id=conversation_id,
                    after_seq=after,
                    upto=upto,
                    limit=BATCH,
                )
                cards = await chat.cards_for(session, rows)
            for message in rows:
                if message.seq != self.delivery.position(conversation_id) + 1:
                    return  # a hole: stop at it rather than send out of order
                await self._send(chat.message_frame(message, cards))
                self.delivery.delivered(conversation_id, message.seq)
            if len(rows) < BATCH:
                return


# --- the process's hub -------------------------------------------------------------------------


class Hub:
    def __init__(self, broker: Broker, database: Database) -> None:
        self.broker = broker
        self.database = database
        self._sockets: dict[str, set[Connection]] = defaultdict(set)

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        for connections in list(self._sockets.values()):
            for connection in list(connections):
                await connection.stop()
        self._sockets.clear()
        await self.broker.stop()

    @property
    def connected(self) -> int:
        return len({c for cs in self._sockets.values() for c in cs})

    async def attach(self, connection: Connection) -> None:
        """Subscribe the socket's channels (returns once they are active) and count it
        present."""
        for channel in connection.channels:
            self._sockets[channel].add(connection)
            # Every socket waits for its channel to be active (another socket's subscription
            # may still be on its way); the broker subscribes each channel once.
            await self.broker.subscribe(channel, self._on_message)
        for key in connection.presence:
            await self.broker.join(key)

    async def detach(self, connection: Connection) -> None:
        await connection.stop()
        for channel in connection.channels:
            connections = self._sockets.get(channel)
            if connections is None:
                continue
            connections.discard(connection)
            if not connections:
                del self._sockets[channel]
                await self.broker.unsubscribe(channel, self._on_message)
        for key in connection.presence:
            await self.broker.leave(key)

    def _on_message(self, channel: str, payload: str) -> None:
        connections = self._sockets.get(channel)
        if not connections:
            return
        data = json.loads(payload)
        item: _Live | _Frame
        if data.get("type") == "message":
            message = data["message"]
            item = _Live(int(message["conversation_id"]), int(message["seq"]), payload)
        else:
            item = _Frame(payload)
        for connection in connections:
            connection.offer(item)
