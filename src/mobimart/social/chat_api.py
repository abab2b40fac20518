"""Chat over REST and one WebSocket (`/api/v1/chat/ws`; frames in docs and the README).

The socket sends and reads through the same service as REST; what it receives comes from the
process's hub (social.live), fed by the broker, so a message sent to any process reaches every
socket of both sides exactly once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, WebSocket
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketDisconnect, WebSocketState

from mobimart.accounts import service as accounts
from mobimart.accounts.models import AuthToken, User
from mobimart.db import utcnow
from mobimart.errors import DomainError, Unauthorized
from mobimart.infra.pubsub import Broker
from mobimart.settings import get_settings
from mobimart.signing import token_digest
from mobimart.social import chat, live
from mobimart.social.chat_schemas import (
    ConversationOut,
    ConversationPage,
    HistoryOut,
    MessageOut,
    OpenConversationIn,
    ReadIn,
    ReadOut,
    SendIn,
    TransferIn,
)
from mobimart.social.live import Connection, Hub
from mobimart.social.models import Message
from mobimart.web.deps import SESSION_COOKIE, CurrentUser, Session
from mobimart.web.schemas import MAX_ID, IdPath

router = APIRouter(tags=["chat"])
log = logging.getLogger("mobimart.chat")

# Close codes: 4401 the sign-in is missing, expired or revoked (sign in again); 4403 the
# socket may not go on as it is: another site's page, or the person's shops changed (a fresh
# connect follows what they may see now).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
# A hello names at most this many conversations (each is a catch-up read): a client shows a
# screen of threads, not the whole history; more is refused with `too_many_cursors`.
MAX_CURSORS = 100
# A socket's sign-in and shops are checked again every RECHECK_S/2 to RECHECK_S: a revoked
# sign-in or a removed staff member loses the socket within a minute. Not on every send: a
# query costs ~1 ms of CPU, a send ~9 ms, and `make bench-chat` measured +10-25 % server CPU
# and a p99 over 250 ms with it; 1,000 sockets cost ~22 checks a second instead.
RECHECK_S = 60.0
# Frames a client may send: FRAME_BURST at once, then FRAME_RATE a second (chat.js sends a few
# a minute; sends have their own limit of 30 per 10 s).
FRAME_RATE = 20.0
FRAME_BURST = 60.0
_IMAGE_RESPONSE = {
    200: {
        "description": "The image's bytes",
        "content": {t: {} for t in sorted(chat.IMAGE_TYPES)},
    }
}


def _hub(request: Request | WebSocket) -> Hub:
    hub: Hub = request.app.state.chat
    return hub


def _broker(request: Request) -> Broker:
    return _hub(request).broker


def message_out(
    message: Message, cards: dict[tuple[str, int], chat.Card], side: chat.Side
) -> MessageOut:
    return MessageOut.model_validate(chat.payload(message, cards, viewer=side))


def _own(message: Message) -> chat.Side:
    """The sender's side: how they see their own message."""
    return "shop" if message.side == "shop" else "consumer"


async def _rows_out(session: Session, rows: list[chat.Row], side: chat.Side) -> list[Any]:
    """Conversations as `side` sees them: the consumer learns nothing of the shop's staff
    (who handles it is the shop's business)."""
    cards = await chat.cards_for(session, [r.last_message for r in rows if r.last_message])
    staff = side == "shop"
    return [
        ConversationOut(
            id=r.conversation.id,
            shop_id=r.conversation.shop_id,
            shop_name=r.shop_name,
            merchant_id=r.conversation.merchant_id,
            customer_name=r.consumer_name,
            assignee_id=r.conversation.assignee_id if staff else None,
            assignee_name=r.assignee_name if staff else "",
            last_seq=r.conversation.last_seq,
            last_message_at=r.conversation.last_message_at,
            consumer_read_seq=r.conversation.consumer_read_seq,
            shop_read_seq=r.conversation.shop_read_seq,
            unread=chat.unread(r.conversation, side),
            last_message=message_out(r.last_message, cards, side) if r.last_message else None,
        )
        for r in rows
    ]


# --- REST --------------------------------------------------------------------------------------


@router.post("/conversations", status_code=201)
async def open_conversation(
    body: OpenConversationIn, request: Request, user: CurrentUser, session: Session
) -> ConversationOut:
    """Start (or return) the caller's conversation with a shop; a product or order named puts
    its card in the thread."""
    conversation = await chat.open_conversation(
        session,
        user=user,
        shop_id=body.shop_id,
        product_id=body.product_id,
        order_id=body.order_id,
        broker=_broker(request),
    )
    (row,) = await _rows_out(session, await chat.describe(session, [conversation]), "consumer")
    return row  # type: ignore[no-any-return]


@router.get("/conversations")
async def my_conversations(
    user: CurrentUser,
    session: Session,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ConversationPage:
    """The caller's conversations with shops, newest activity first, with unread counts."""
    rows, next_cursor = await chat.my_conversations(session, user=user, cursor=cursor, limit=limit)
    return ConversationPage(
        items=await _rows_out(session, rows, "consumer"), next_cursor=next_cursor
    )


@router.get("/conversations/{conversation_id}/messages")
async def history(
    conversation_id: IdPath,
    user: CurrentUser,
    session: Session,
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    before_seq: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=chat.HISTORY_MAX)] = 50,
) -> HistoryOut:
    """Messages oldest first: after `after_seq` (catching up), before `before_seq`
    (scrolling back), or the newest `limit`."""
    seen, rows = await chat.history(
        session,
        user=user,
        conversation_id=conversation_id,
        after_seq=after_seq,
        before_seq=before_seq,
        limit=limit,
    )
    cards = await chat.cards_for(session, rows)
    (conversation,) = await _rows_out(
        session, await chat.describe(session, [seen.conversation]), seen.side
    )
    return HistoryOut(
        conversation=conversation, items=[message_out(m, cards, seen.side) for m in rows]
    )


@router.post("/conversations/{conversation_id}/messages", status_code=201)
async def send(
    conversation_id: IdPath,
    body: SendIn,
    request: Request,
    response: Response,
    user: CurrentUser,
    session: Session,
) -> MessageOut:
    """Send a text message (what the socket's `send` frame does). The same `client_id` again
    returns the first message with 200."""
    message, created = await chat.send(
        session,
        user=user,
        conversation_id=conversation_id,
        body=body.body,
        client_id=body.client_id,
        broker=_broker(request),
    )
    if not created:
        response.status_code = 200
    return message_out(message, await chat.cards_for(session, [message]), _own(message))


@router.post("/conversations/{conversation_id}/images", status_code=201)
async def send_image(
    conversation_id: IdPath,
    request: Request,
    response: Response,
    user: CurrentUser,
    session: Session,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP up to 5 MB")],
    client_id: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
) -> MessageOut:
    """Send an image; it is served only to the conversation's participants."""
    limit = get_settings().upload_max_bytes
    data = await file.read(limit + 1)
    message, created = await chat.send_image(
        session,
        user=user,
        conversation_id=conversation_id,
        data=data,
        client_id=client_id,
        broker=_broker(request),
    )
    if not created:
        response.status_code = 200
    return message_out(message, {}, _own(message))


def image_response(content_type: str, data: bytes) -> Response:
    """A chat image, for the API's and the pages' route alike: private to the reader's
    browser, and kept an hour only (moderation may hide it)."""
    return Response(
        data, media_type=content_type, headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get(
    "/conversations/{conversation_id}/images/{message_id}",
    response_class=Response,
    responses=_IMAGE_RESPONSE,  # type: ignore[arg-type]
)
async def read_image(
    conversation_id: IdPath, message_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    """An image message, for the two sides of its conversation (pages use /chats/…/images/…
    with the session cookie)."""
    content_type, data = await chat.read_image(
        session, user=user, conversation_id=conversation_id, message_id=message_id
    )
    return image_response(content_type, data)


@router.post("/conversations/{conversation_id}/read")
async def mark_read(
    conversation_id: IdPath, body: ReadIn, request: Request, user: CurrentUser, session: Session
) -> ReadOut:
    """Everything up to `seq` is read by the caller's side (a read receipt for the other)."""
    seq = await chat.mark_read(
        session, user=user, conversation_id=conversation_id, seq=body.seq, broker=_broker(request)
    )
    return ReadOut(conversation_id=conversation_id, seq=seq)


@router.get("/merchants/{merchant_id}/conversations")
async def inbox(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    view: chat.View = "all",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ConversationPage:
    """The merchant's shared inbox: `unassigned`, `mine` (picked up by the caller) or `all`."""
    rows, next_cursor = await chat.inbox(
        session, user=user, merchant_id=merchant_id, view=view, cursor=cursor, limit=limit
    )
    return ConversationPage(items=await _rows_out(session, rows, "shop"), next_cursor=next_cursor)


async def _staff_row(session: Session, conversation: Any) -> ConversationOut:
    (row,) = await _rows_out(session, await chat.describe(session, [conversation]), "shop")
    return row  # type: ignore[no-any-return]


@router.post("/merchants/{merchant_id}/conversations/{conversation_id}/pick-up")
async def pick_up(
    merchant_id: IdPath,
    conversation_id: IdPath,
    request: Request,
    user: CurrentUser,
    session: Session,
) -> ConversationOut:
    """Take an unassigned conversation (409 when a colleague was quicker)."""
    conversation = await chat.pick_up(
        session,
        user=user,
        merchant_id=merchant_id,
        conversation_id=conversation_id,
        broker=_broker(request),
    )
    return await _staff_row(session, conversation)


@router.post("/merchants/{merchant_id}/conversations/{conversation_id}/transfer")
async def transfer(
    merchant_id: IdPath,
    conversation_id: IdPath,
    body: TransferIn,
    request: Request,
    user: CurrentUser,
    session: Session,
) -> ConversationOut:
    """Pass the conversation to another member (by whoever handles it, or the owner)."""
    conversation = await chat.transfer(
        session,
        user=user,
        merchant_id=merchant_id,
        conversation_id=conversation_id,
        to_user_id=body.user_id,
        broker=_broker(request),
    )
    return await _staff_row(session, conversation)


# --- the socket --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Credentials:
    token: str
    kind: str  # "api" (a bearer token) or "session" (the cookie)


def _socket_credentials(websocket: WebSocket) -> _Credentials | int:
    """The caller's credentials or, when refused, the close code. A bearer token (API
    clients) or the session cookie; with the cookie the page must be ours (cross-site
    WebSocket hijacking)."""
    scheme, token = get_authorization_scheme_param(websocket.headers.get("authorization"))
    kind = "api"
    if not (scheme.lower() == "bearer" and token):
        token = websocket.cookies.get(SESSION_COOKIE, "")
        kind = "session"
        origin = websocket.headers.get("origin", "")
        if token and urlsplit(origin).netloc != websocket.headers.get("host", ""):
            return CLOSE_FORBIDDEN
    if not token:
        return CLOSE_UNAUTHORIZED
    return _Credentials(token, kind)


async def _signed_in(session: AsyncSession, credentials: _Credentials) -> User | None:
    try:
        user, _ = await accounts.authenticate(
            session, token=credentials.token, kind=credentials.kind
        )
    except Unauthorized:
        return None
    return user


async def _still_signed_in(session: AsyncSession, credentials: _Credentials, user_id: int) -> bool:
    """`accounts.authenticate`'s rule for a socket already let in, as one narrow query (no
    user and token rows loaded: it runs for every socket every minute)."""
    found = await session.scalar(
        select(AuthToken.id)
        .join(User, User.id == AuthToken.user_id)
        .where(
            AuthToken.token_hash == token_digest(credentials.token),
            AuthToken.kind == credentials.kind,
            AuthToken.user_id == user_id,
            AuthToken.revoked_at.is_(None),
            AuthToken.expires_at > utcnow(),
            User.deleted_at.is_(None),
        )
    )
    return found is not None


def _error(code: str, detail: str, client_id: Any = None) -> dict[str, Any]:
    return {
        "type": "error",
        "code": code,
        "detail": detail,
        "client_id": client_id if isinstance(client_id, str) else None,
    }


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= MAX_ID:
        return value
    if isinstance(value, str) and value.isdigit() and int(value) <= MAX_ID:
        return int(value)
    return None


class _Socket:
    """One connected client: reads its frames and answers through its Connection."""

    def __init__(
        self, hub: Hub, user: User, credentials: _Credentials, connection: Connection
    ) -> None:
        self.hub = hub
        self.user = user
        self.credentials = credentials
        self.connection = connection
        self.first = True
        self._tokens = FRAME_BURST
        self._at = time.monotonic()

    def _allowed(self) -> bool:
        """A token bucket: FRAME_BURST frames at once, FRAME_RATE a second after that."""
        now = time.monotonic()
        self._tokens = min(FRAME_BURST, self._tokens + (now - self._at) * FRAME_RATE)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    async def still_allowed(self) -> int:
        """0 while the socket may go on as it is, else its close code: the sign-in is gone
        (4401) or the person's shops changed (4403, and the client connects again)."""
        async with self.hub.database.session() as session:
            if not await _still_signed_in(session, self.credentials, self.user.id):
                return CLOSE_UNAUTHORIZED
            merchant_ids = await chat.socket_merchants(session, user_id=self.user.id)
        if sorted(merchant_ids) != sorted(self.connection.merchant_ids):
            return CLOSE_FORBIDDEN
        return 0

    async def handle(self, frame: Any) -> None:
        if not self._allowed():
            client_id = frame.get("client_id") if isinstance(frame, dict) else None
            self.connection.frame(_error("rate_limited", "Too many frames; slow down.", client_id))
            return
        if not isinstance(frame, dict):
            self.connection.frame(_error("bad_frame", "Frames are JSON objects."))
            return
        kind = frame.get("type")
        first, self.first = self.first, False
        if kind == "hello":
            await self.hello(frame, first=first)
        elif kind == "send":
            await self.send(frame)
        elif kind == "read":
            await self.read(frame)
        elif kind == "ping":
            self.connection.frame({"type": "pong"})
        else:
            self.connection.frame(_error("bad_frame", f"Unknown frame type {kind!r}."))
        if first:
            self.connection.ready()

    async def hello(self, frame: dict[str, Any], *, first: bool) -> None:
        raw = frame.get("cursors") or {}
        if not isinstance(raw, dict):
            self.connection.frame(_error("bad_frame", "cursors maps conversation ids to seqs."))
            return
        if len(raw) > MAX_CURSORS:
            self.connection.frame(
                _error(
                    "too_many_cursors",
                    f"A hello names at most {MAX_CURSORS} conversations; nothing was applied.",
                )
            )
            return
        cursors: dict[int, int] = {}
        for key, value in raw.items():
            ident, cursor = _int(key), _int(value)
            if ident is None or cursor is None:
                self.connection.frame(_error("bad_frame", "cursors maps conversation ids to seqs."))
                continue
            if ident not in self.connection.known:
                try:
                    async with self.hub.database.session() as session:
                        seen = await chat.access(session, user=self.user, conversation_id=ident)
                except DomainError as exc:
                    self.connection.frame(_error(exc.code, exc.detail))
                    continue
                self.connection.known.add(ident)
                self.connection.sides[ident] = seen.side
            cursors[ident] = cursor
        self.connection.hello(cursors, first=first)

    async def send(self, frame: dict[str, Any]) -> None:
        client_id = frame.get("client_id")
        ident, body = _int(frame.get("conversation_id")), frame.get("body")
        if ident is None or not isinstance(client_id, str) or not isinstance(body, str):
            self.connection.frame(
                _error("bad_frame", "send needs conversation_id, client_id and body.", client_id)
            )
            return
        try:
            async with self.hub.database.session() as session:
                message, _ = await chat.send(
                    session,
                    user=self.user,
                    conversation_id=ident,
                    body=body,
                    client_id=client_id,
                    broker=self.hub.broker,
                )
        except DomainError as exc:
            self.connection.frame(_error(exc.code, exc.detail, client_id))
            return
        self.connection.frame(
            {
                "type": "ack",
                "conversation_id": ident,
                "client_id": client_id,
                "seq": message.seq,
                "id": message.id,
            }
        )

    async def read(self, frame: dict[str, Any]) -> None:
        ident, seq = _int(frame.get("conversation_id")), _int(frame.get("seq"))
        if ident is None or seq is None:
            self.connection.frame(_error("bad_frame", "read needs conversation_id and seq."))
            return
        try:
            async with self.hub.database.session() as session:
                await chat.mark_read(
                    session, user=self.user, conversation_id=ident, seq=seq, broker=self.hub.broker
                )
        except DomainError as exc:
            self.connection.frame(_error(exc.code, exc.detail))


@router.websocket("/chat/ws")
async def chat_socket(websocket: WebSocket) -> None:
    hub = _hub(websocket)
    credentials = _socket_credentials(websocket)
    user: User | None = None
    if isinstance(credentials, _Credentials):
        async with hub.database.session() as session:
            user = await _signed_in(session, credentials)
    await websocket.accept()
    if not isinstance(credentials, _Credentials) or user is None:
        await websocket.close(
            code=credentials if isinstance(credentials, int) else CLOSE_UNAUTHORIZED
        )
        return

    async def close(code: int) -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=code)

    async def send(text: str) -> None:
        # A client gone mid-frame: the receiving loop sees it too and ends the socket.
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await websocket.send_text(text)

    async with hub.database.session() as session:
        merchant_ids = await chat.socket_merchants(session, user_id=user.id)
    connection = Connection(hub, user_id=user.id, merchant_ids=merchant_ids, send=send, close=close)
    socket = _Socket(hub, user, credentials, connection)
    recheck: asyncio.Task[None] | None = None
    try:
        await hub.attach(connection)
        # Read after subscribing: a message committed from here on is both past this
        # position and on its way through the broker.
        since = utcnow() - dt.timedelta(seconds=live.RECENT_S)
        async with hub.database.session() as session:
            active = await chat.socket_conversations(
                session, user_id=user.id, merchant_ids=merchant_ids, since=since
            )
        connection.follow(
            {ident: last for ident, (last, _) in active.items()},
            since=since,
            sides={ident: side for ident, (_, side) in active.items()},
        )
        connection.start()
        recheck = asyncio.get_running_loop().create_task(_recheck(socket))
        ready = asyncio.get_running_loop().call_later(live.HELLO_WAIT_S, connection.ready)
        try:
            while True:
                received = await websocket.receive()
                if received["type"] == "websocket.disconnect":
                    raise WebSocketDisconnect(received.get("code", 1000))
                try:
                    frame = json.loads(received.get("text") or received.get("bytes") or b"")
                except ValueError:
                    connection.frame(_error("bad_frame", "Frames are JSON text."))
                    continue
                await socket.handle(frame)
        finally:
            ready.cancel()
    except WebSocketDisconnect:
        pass
    finally:
        if recheck is not None:
            recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await recheck
        await hub.detach(connection)
        if websocket.client_state == WebSocketState.CONNECTED:
            await close(1000)


async def _recheck(socket: _Socket) -> None:
    """Every RECHECK_S or so, whether the socket may still go on; closes it when not. Jittered:
    the sockets of a restart connect together and must not all check together."""
    while True:
        await asyncio.sleep(RECHECK_S * random.uniform(0.5, 1.0))
        try:
            code = await socket.still_allowed()
        except Exception:  # the database away for a moment: try again next time
            log.warning("chat socket re-check failed", exc_info=True)
            continue
        if code:
            socket.connection.close(code)
            return
