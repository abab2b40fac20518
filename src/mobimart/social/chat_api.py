"""Chat over REST and one WebSocket (`/api/v1/chat/ws`; frames in docs and the README).

The socket sends and reads through the same service as REST; what it receives comes from the
process's hub (social.live), fed by the broker, so a message sent to any process reaches every
socket of both sides exactly once and in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile, WebSocket
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.websockets import WebSocketDisconnect, WebSocketState

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.db import Database
from mobimart.errors import DomainError, Unauthorized
from mobimart.infra.pubsub import Broker
from mobimart.settings import get_settings
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
from mobimart.web.deps import SESSION_COOKIE, CurrentUser, Session, _bearer
from mobimart.web.schemas import MAX_ID, IdPath

router = APIRouter(tags=["chat"])

CLOSE_UNAUTHORIZED = 4401
MAX_CURSORS = 1000  # conversations named in one hello
CLOSE_FORBIDDEN = 4403
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


def message_out(message: Message, cards: dict[tuple[str, int], chat.Card]) -> MessageOut:
    return MessageOut.model_validate(chat.payload(message, cards))


async def _rows_out(session: Session, rows: list[chat.Row], side: chat.Side) -> list[Any]:
    cards = await chat.cards_for(session, [r.last_message for r in rows if r.last_message])
    return [
        ConversationOut(
            id=r.conversation.id,
            shop_id=r.conversation.shop_id,
            shop_name=r.shop_name,
            merchant_id=r.conversation.merchant_id,
            customer_name=r.consumer_name,
            assignee_id=r.conversation.assignee_id,
            assignee_name=r.assignee_name,
            last_seq=r.conversation.last_seq,
            last_message_at=r.conversation.last_message_at,
            consumer_read_seq=r.conversation.consumer_read_seq,
            shop_read_seq=r.conversation.shop_read_seq,
            unread=chat.unread(r.conversation, side),
            last_message=message_out(r.last_message, cards) if r.last_message else None,
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
    return HistoryOut(conversation=conversation, items=[message_out(m, cards) for m in rows])


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
    return message_out(message, await chat.cards_for(session, [message]))


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
    return message_out(message, {})


async def _page_or_api_user(
    request: Request,
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """A bearer token, or the browser's session cookie: chat pages show images with <img>."""
    if credentials is not None:
        user, _ = await accounts.authenticate(session, token=credentials.credentials, kind="api")
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user, _ = await accounts.authenticate(session, token=cookie, kind="session")
        return user
    raise Unauthorized("Send a bearer token: Authorization: Bearer <token>.")


@router.get(
    "/conversations/{conversation_id}/images/{message_id}",
    response_class=Response,
    responses=_IMAGE_RESPONSE,  # type: ignore[arg-type]
)
async def read_image(
    conversation_id: IdPath,
    message_id: IdPath,
    user: Annotated[User, Depends(_page_or_api_user)],
    session: Session,
) -> Response:
    content_type, data = await chat.read_image(
        session, user=user, conversation_id=conversation_id, message_id=message_id
    )
    return Response(
        data,
        media_type=content_type,
        headers={"Cache-Control": "private, max-age=86400"},
    )


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


async def _socket_user(websocket: WebSocket, database: Database) -> tuple[User | None, int]:
    """The caller and, when refused, the close code. A bearer token (API clients) or the
    session cookie; with the cookie the page must be ours (cross-site WebSocket hijacking)."""
    scheme, token = get_authorization_scheme_param(websocket.headers.get("authorization"))
    kind = "api"
    if not (scheme.lower() == "bearer" and token):
        token = websocket.cookies.get(SESSION_COOKIE, "")
        kind = "session"
        origin = websocket.headers.get("origin", "")
        if token and urlsplit(origin).netloc != websocket.headers.get("host", ""):
            return None, CLOSE_FORBIDDEN
    if not token:
        return None, CLOSE_UNAUTHORIZED
    async with database.session() as session:
        try:
            user, _ = await accounts.authenticate(session, token=token, kind=kind)
        except Unauthorized:
            return None, CLOSE_UNAUTHORIZED
    return user, 0


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

    def __init__(self, websocket: WebSocket, hub: Hub, user: User, connection: Connection):
        self.websocket = websocket
        self.hub = hub
        self.user = user
        self.connection = connection
        self.first = True

    async def handle(self, frame: Any) -> None:
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
        if not isinstance(raw, dict) or len(raw) > MAX_CURSORS:
            self.connection.frame(_error("bad_frame", "cursors maps conversation ids to seqs."))
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
                        await chat.access(session, user=self.user, conversation_id=ident)
                except DomainError as exc:
                    self.connection.frame(_error(exc.code, exc.detail))
                    continue
                self.connection.known.add(ident)
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
    user, refusal = await _socket_user(websocket, hub.database)
    await websocket.accept()
    if user is None:
        await websocket.close(code=refusal)
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
    socket = _Socket(websocket, hub, user, connection)
    try:
        await hub.attach(connection)
        # Read after subscribing: a message committed from here on is both past this
        # position and on its way through the broker.
        async with hub.database.session() as session:
            connection.follow(
                await chat.socket_conversations(session, user_id=user.id, merchant_ids=merchant_ids)
            )
        connection.start()
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
        await hub.detach(connection)
        if websocket.client_state == WebSocketState.CONNECTED:
            await close(1000)
