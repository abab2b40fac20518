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
import datetime as dt
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
# A socket follows, from its connect, the conversations active in the RECENT_S before it; any
# other conversation takes no memory until its next message, when its position at connect is
# read from the database (a merchant with years of chats holds only today's per socket).
RECENT_S = 3600.0
CLOSE_GOING_AWAY = 1001
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
class _Update:
    """A message delivered before and changed since (hidden by moderation)."""

    conversation_id: int
    seq: int
    frame: str


@dataclass(frozen=True)
class _Restart:
    conversation_id: int
    cursor: int


_Item = _Live | _Update | _Frame | _Restart | None


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
        # Conversations idle at connect are learned from their first message after `since`.
        self.since: dt.datetime | None = None
        self.sides: dict[int, chat.Side] = {}
        # Presence keys joined by Hub.attach: detach leaves these and no others.
        self.joined: list[str] = []
        self._send = send
        self._close = close
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._overflowed = False

    @property
    def channels(self) -> list[str]:
        return [chat.user_channel(self.user_id)] + [
            chat.merchant_channel(m) for m in self.merchant_ids
        ]

    @property
    def presence(self) -> list[str]:
        return [f"user:{self.user_id}"] + [f"merchant:{m}" for m in self.merchant_ids]

    def follow(
        self,
        conversations: dict[int, int],
        *,
        since: dt.datetime | None = None,
        sides: dict[int, chat.Side] | None = None,
    ) -> None:
        """Conversations active at connect, delivered live after their current seq (and the
        socket's side in each, so a catch-up needs no query for it); with `since`, any other
        is learned when its next message comes (none is new then)."""
        self.since = since
        self.sides.update(sides or {})
        for ident, last in conversations.items():
            self.known.add(ident)
            self.delivery.restart(ident, last)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def ready(self) -> None:
        """Start delivering (after the hello, or without one)."""
        self._ready.set()

    def hello(self, cursors: dict[int, int], *, first: bool) -> None:
        """Each cursor is a catch-up read, queued like any frame (so it counts towards
        QUEUE_LIMIT)."""
        if first and not self._ready.is_set():
            # Nothing has been sent yet: the cursors apply before anything queued.
            for ident, cursor in cursors.items():
                self.delivery.restart(ident, cursor)
                self.offer(_Restart(ident, -1))
        else:
            for ident, cursor in cursors.items():
                self.offer(_Restart(ident, cursor))

    def offer(self, item: _Live | _Update | _Frame | _Restart) -> None:
        if self._overflowed:
            return
        if self._queue.qsize() >= QUEUE_LIMIT:
            self._overflowed = True
            log.warning("chat socket too slow; closing it", extra={"user_id": self.user_id})
            self.close(CLOSE_TOO_SLOW)
            return
        self._queue.put_nowait(item)

    def close(self, code: int) -> None:
        """Close the socket (once; the task is kept until it is done)."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(code))

    def frame(self, payload: dict[str, Any]) -> None:
        """A frame for this socket only (ack, error, pong)."""
        self.offer(_Frame(json.dumps(payload, ensure_ascii=False)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def shut(self, code: int) -> None:
        """Stop delivering and close the socket with `code` (the server is going away)."""
        await self.stop()
        self.close(code)
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing

    async def _run(self) -> None:
        try:
            await self._work()
        except asyncio.CancelledError:
            raise
        except Exception:
            # The socket cannot go on in order (its socket or the database failed): close it,
            # and the client comes back with its cursor.
            log.exception("chat socket delivery failed", extra={"user_id": self.user_id})
            self.close(CLOSE_INTERNAL_ERROR)

    async def _work(self) -> None:
        await self._ready.wait()
        while True:
            item = await self._queue.get()
            if isinstance(item, _Frame):
                await self._send(item.frame)
            elif isinstance(item, _Live):
                await self._live(item)
            elif isinstance(item, _Update):
                # Only to a socket that has the message: anyone else reads it as it is now.
                if item.conversation_id in self.delivery.upto and item.seq <= (
                    self.delivery.position(item.conversation_id)
                ):
                    await self._send(item.frame)
            elif isinstance(item, _Restart):
                if item.cursor >= 0:
                    self.delivery.restart(item.conversation_id, item.cursor)
                elif item.conversation_id not in self.delivery.upto and self.since is not None:
                    await self._learn(item.conversation_id)
                await self._fill(item.conversation_id, None)

    async def _live(self, item: _Live) -> None:
        if item.conversation_id not in self.delivery.upto and self.since is not None:
            await self._learn(item.conversation_id)
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

    async def _learn(self, conversation_id: int) -> None:
        """A conversation idle at connect, now live: where it stood at connect."""
        assert self.since is not None
        async with self.hub.database.session() as session:
            position = await chat.position_before(
                session, conversation_id=conversation_id, since=self.since
            )
        self.known.add(conversation_id)
        self.delivery.restart(conversation_id, position)

    async def _fill(self, conversation_id: int, upto: int | None) -> None:
        """Send what follows the delivered position from the database, up to `upto` (or to
        the newest message)."""
        while True:
            after = self.delivery.position(conversation_id)
            if upto is not None and after >= upto:
                return
            async with self.hub.database.session() as session:
                side = self.sides.get(conversation_id)
                if side is None:
                    side = await chat.viewer_side(
                        session, conversation_id=conversation_id, user_id=self.user_id
                    )
                    self.sides[conversation_id] = side
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
                await self._send(chat.message_frame(message, cards, viewer=side))
                self.delivery.delivered(conversation_id, message.seq)
            if len(rows) < BATCH:
                return


# --- the process's hub -------------------------------------------------------------------------


# After the broker lost its subscriptions, conversations written to from this long before the
# loss are read again (a message takes its time at its send, and is published at its commit).
RESYNC_MARGIN_S = 60.0


class Hub:
    def __init__(self, broker: Broker, database: Database) -> None:
        self.broker = broker
        self.database = database
        self._sockets: dict[str, set[Connection]] = defaultdict(set)
        self._stopped = False
        broker.on_reconnect(self.resync)

    async def resync(self, lost_at: dt.datetime) -> None:
        """The broker was away since `lost_at`: what it may have dropped is read from the
        database for every socket (a conversation idle since gets nothing; others send
        what follows each socket's position, so nothing twice)."""
        since = lost_at - dt.timedelta(seconds=RESYNC_MARGIN_S)
        for connection in {c for cs in self._sockets.values() for c in cs}:
            async with self.database.session() as session:
                active = await chat.socket_conversations(
                    session,
                    user_id=connection.user_id,
                    merchant_ids=connection.merchant_ids,
                    since=since,
                )
            for ident in active:
                connection.offer(_Restart(ident, -1))

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        """Close every socket (1001: clients reconnect, to another process or after the
        restart), then the broker."""
        self._stopped = True  # sockets ending from here on leave the broker's state to stop()
        connections = {c for cs in self._sockets.values() for c in cs}
        for connection in connections:
            await connection.shut(CLOSE_GOING_AWAY)
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
            connection.joined.append(key)

    async def detach(self, connection: Connection) -> None:
        """Undo `attach`, also a failed one: leaves only the presence keys it joined (leaving
        others would make another socket of the same person look offline)."""
        await connection.stop()
        if self._stopped:
            return  # the broker drops its subscriptions and this process's presence itself
        for channel in connection.channels:
            connections = self._sockets.get(channel)
            if connections is None or connection not in connections:
                continue
            connections.discard(connection)
            if not connections:
                del self._sockets[channel]
                await self.broker.unsubscribe(channel, self._on_message)
        joined, connection.joined = connection.joined, []
        for key in joined:
            await self.broker.leave(key)

    def _on_message(self, channel: str, payload: str) -> None:
        connections = self._sockets.get(channel)
        if not connections:
            return
        data = json.loads(payload)
        item: _Live | _Update | _Frame
        if data.get("type") == "message":
            message = data["message"]
            ident, seq = int(message["conversation_id"]), int(message["seq"])
            changed = bool(data.get("update"))
            item = _Update(ident, seq, payload) if changed else _Live(ident, seq, payload)
        else:
            item = _Frame(payload)
        for connection in connections:
            connection.offer(item)
