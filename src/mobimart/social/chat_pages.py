"""Chat pages: the consumer's chats with shops and the merchant's shared inbox.

Each thread is rendered by the server with its history, and a plain form sends a message and
comes back (no script needed); static/chat.js then takes over the same page over the chat
WebSocket: live messages, read receipts, sending without a reload. A refused message comes
back with the reason and the typed text."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog.models import Shop
from mobimart.errors import DomainError, NotFound
from mobimart.infra.pubsub import Broker
from mobimart.merchants import service as merchants
from mobimart.merchants.models import Merchant
from mobimart.notifications import service as notifications
from mobimart.settings import get_settings
from mobimart.social import chat
from mobimart.social.chat_api import image_response
from mobimart.social.live import Hub
from mobimart.social.models import Message
from mobimart.web.deps import PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.schemas import MAX_ID, IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
FormId = Annotated[int | None, Form(ge=1, le=MAX_ID)]
# One screen of history; older messages one tap away ("Earlier messages").
PAGE = 50
VIEWS: tuple[chat.View, ...] = ("unassigned", "mine", "all")


def _broker(request: Request) -> Broker:
    hub: Hub = request.app.state.chat
    return hub.broker


def _image_url(conversation_id: int, message_id: int) -> str:
    # Served to the participants by their session cookie (the API's URL wants a bearer token).
    return f"/chats/{conversation_id}/images/{message_id}"


def _preview(message: Message | None) -> str:
    if message is None:
        return ""
    if message.hidden_at is not None:
        return _("Message removed")
    return {
        "image": _("Photo"),
        "product": _("Product"),
        "order": _("Order"),
    }.get(message.kind, message.body[:80])


def _notice(code: str) -> str:
    return {
        "picked": _("It is yours now: the customer sees your replies."),
        "transferred": _("Passed on."),
    }.get(code, "")


def order_url(side: chat.Side, merchant_id: int, order_id: int) -> str:
    """An order card opens the order where the reader can see it: the buyer's order page or
    the console's."""
    if side == "shop":
        return f"/console/{merchant_id}/orders/{order_id}"
    return f"/orders/{order_id}"


async def _messages(
    session: AsyncSession, rows: Sequence[Message], *, side: chat.Side, merchant_id: int
) -> list[dict[str, Any]]:
    cards = await chat.cards_for(session, rows)
    out = []
    for row in rows:
        item = chat.payload(row, cards, viewer=side)
        if item["image_url"]:
            item["image_url"] = _image_url(row.conversation_id, row.id)
        if item["card"] and row.kind == "order" and row.ref_id is not None:
            item["card"] = item["card"] | {"url": order_url(side, merchant_id, row.ref_id)}
        item["time"] = row.created_at.strftime("%m-%d %H:%M")
        out.append(item)
    return out


async def _thread(
    request: Request,
    session: AsyncSession,
    user: User,
    conversation_id: int,
    *,
    side: chat.Side,
    before: int | None,
    merchant_id: int | None = None,
) -> tuple[chat.Access, dict[str, Any]]:
    """The thread as one side sees it (in the console, of `merchant_id` only); opening the
    newest page reads it (the other side gets its receipt, and the inbox line about it is read
    too). Every check comes before that read."""
    seen, rows = await chat.history(
        session, user=user, conversation_id=conversation_id, before_seq=before, limit=PAGE
    )
    if seen.side != side:
        raise NotFound("Conversation")
    if merchant_id is not None and seen.conversation.merchant_id != merchant_id:
        raise NotFound("Conversation")  # another of the member's merchants: not this console's
    conversation = seen.conversation
    badge = getattr(request.state, "unread_notifications", 0)
    if before is None and chat.unread(conversation, side) > 0:
        await chat.mark_read(
            session,
            user=user,
            conversation_id=conversation.id,
            seq=conversation.last_seq,
            broker=_broker(request),
        )
        await session.refresh(conversation)
    elif before is None and badge:
        # Read already (by a colleague, on another device), yet a line about it may wait in
        # the inbox, such as a chat passed to this person.
        await notifications.read_by_key(session, user_id=user.id, key=f"chat:{conversation.id}")
        await session.commit()
    if before is None and badge:
        # The badge was counted before this page read the chat's notification.
        request.state.unread_notifications = await notifications.unread_count(
            session, user_id=user.id
        )
    other_read = (
        conversation.shop_read_seq if side == "consumer" else conversation.consumer_read_seq
    )
    return seen, {
        "conversation": conversation,
        "side": side,
        "messages": await _messages(session, rows, side=side, merchant_id=conversation.merchant_id),
        "other_read": other_read,
        "earlier": rows[0].seq if rows and rows[0].seq > 1 else None,
        "live": before is None,
        # A form sent twice (a double tap, a resend after a timeout) is one message.
        "client_id": secrets.token_urlsafe(16),
    }


# --- the consumer's chats ----------------------------------------------------------------------


@router.get("/chats")
async def chats_page(
    request: Request, session: Session, user: PageUser, cursor: Cursor = None
) -> Response:
    rows, next_cursor = await chat.my_conversations(session, user=user, cursor=cursor, limit=20)
    return render(
        request,
        "social/chat_list.html",
        {
            "user": user,
            "tab": "inbox",
            "rows": [
                {
                    "row": r,
                    "preview": _preview(r.last_message),
                    "unread": chat.unread(r.conversation, "consumer"),
                }
                for r in rows
            ],
            "next_cursor": next_cursor,
        },
    )


@router.post("/chats/start")
async def start_chat(
    request: Request,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    shop_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    product_id: FormId = None,
    order_id: FormId = None,
) -> Response:
    """From a product or an order page: the thread with the shop, that product or order put
    in it as a card."""
    verify_csrf(request, csrf_token)
    conversation = await chat.open_conversation(
        session,
        user=user,
        shop_id=shop_id,
        broker=_broker(request),
        product_id=product_id,
        order_id=order_id,
    )
    return see_other(f"/chats/{conversation.id}")


async def _consumer_thread(
    request: Request,
    session: AsyncSession,
    user: User,
    conversation_id: int,
    *,
    before: int | None = None,
    send_error: str = "",
    draft: str = "",
    status: int = 200,
) -> Response:
    seen, ctx = await _thread(
        request, session, user, conversation_id, side="consumer", before=before
    )
    shop_name = await session.scalar(select(Shop.name).where(Shop.id == seen.conversation.shop_id))
    return render(
        request,
        "social/chat_thread.html",
        {
            "user": user,
            "tab": "inbox",
            **ctx,
            "title": shop_name,
            "back": "/chats",
            "action": f"/chats/{conversation_id}",
            "send_error": send_error,
            "draft": draft,
        },
        status=status,
    )


@router.get("/chats/{conversation_id}")
async def chat_page(
    request: Request,
    conversation_id: IdPath,
    session: Session,
    user: PageUser,
    before: Annotated[int | None, Query(ge=2, le=MAX_ID)] = None,
) -> Response:
    # The shop's side reads it in the console (chat.staff_link): here it is 404 for them.
    return await _consumer_thread(request, session, user, conversation_id, before=before)


Body = Annotated[str, Form(max_length=chat.MAX_BODY * 4)]
ClientId = Annotated[str | None, Form(max_length=chat.MAX_CLIENT_ID)]
Upload = Annotated[UploadFile, File()]


async def _sending(
    session: AsyncSession,
    user: User,
    action: Callable[[], Awaitable[object]],
    *,
    done: str,
    again: Callable[[str, int], Awaitable[Response]],
) -> Response:
    """Send, then back to the thread's end; a refused message (a blocked word, too fast) comes
    back on the thread with its reason."""
    try:
        await action()
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)  # the rollback expired it
        return await again(message_of(exc), exc.status)
    return see_other(done)


@router.post("/chats/{conversation_id}")
async def send_from_page(
    request: Request,
    conversation_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    body: Body,
    client_id: ClientId = None,
) -> Response:
    verify_csrf(request, csrf_token)

    async def again(error: str, status: int) -> Response:
        return await _consumer_thread(
            request, session, user, conversation_id, send_error=error, draft=body, status=status
        )

    return await _sending(
        session,
        user,
        lambda: chat.send(
            session,
            user=user,
            conversation_id=conversation_id,
            body=body,
            broker=_broker(request),
            client_id=client_id or None,
        ),
        done=f"/chats/{conversation_id}#end",
        again=again,
    )


async def _read_upload(upload: UploadFile) -> bytes:
    return await upload.read(get_settings().upload_max_bytes + 1)


@router.post("/chats/{conversation_id}/images")
async def send_image_from_page(
    request: Request,
    conversation_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    image: Upload,
) -> Response:
    verify_csrf(request, csrf_token)
    data = await _read_upload(image)

    async def again(error: str, status: int) -> Response:
        return await _consumer_thread(
            request, session, user, conversation_id, send_error=error, status=status
        )

    return await _sending(
        session,
        user,
        lambda: chat.send_image(
            session, user=user, conversation_id=conversation_id, data=data, broker=_broker(request)
        ),
        done=f"/chats/{conversation_id}#end",
        again=again,
    )


@router.get("/chats/{conversation_id}/images/{message_id}")
async def chat_image(
    conversation_id: IdPath, message_id: IdPath, session: Session, user: PageUser
) -> Response:
    """An image message, for the two sides of its conversation only."""
    content_type, data = await chat.read_image(
        session, user=user, conversation_id=conversation_id, message_id=message_id
    )
    return image_response(content_type, data)


# --- the merchant's inbox ----------------------------------------------------------------------


@router.get("/console/{merchant_id}/inbox")
async def inbox_page(
    request: Request,
    merchant_id: IdPath,
    session: Session,
    user: PageUser,
    view: Annotated[str, Query(max_length=20)] = "all",
    cursor: Cursor = None,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    chosen: chat.View = next((v for v in VIEWS if v == view), "all")
    rows, next_cursor = await chat.inbox(
        session, user=user, merchant_id=merchant.id, view=chosen, cursor=cursor, limit=20
    )
    return render(
        request,
        "social/console_inbox.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "view": chosen,
            "views": VIEWS,
            "rows": [
                {
                    "row": r,
                    "preview": _preview(r.last_message),
                    "unread": chat.unread(r.conversation, "shop"),
                }
                for r in rows
            ],
            "next_cursor": next_cursor,
        },
    )


async def _staff_thread(
    request: Request,
    session: AsyncSession,
    user: User,
    ids: tuple[int, int],
    *,
    before: int | None = None,
    notice: str = "",
    error: str = "",
    send_error: str = "",
    draft: str = "",
    status: int = 200,
) -> Response:
    merchant_id, conversation_id = ids
    merchant, member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    seen, ctx = await _thread(
        request, session, user, conversation_id, side="shop", before=before, merchant_id=merchant.id
    )
    conversation = seen.conversation
    staff = await merchants.staff(session, merchant_id=merchant.id)
    names = {u.id: chat.person_name(u) for _m, u in staff}
    consumer = await session.get(User, conversation.user_id)
    may_transfer = conversation.assignee_id == user.id or seen.is_owner
    return render(
        request,
        "social/console_inbox_thread.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            **ctx,
            "title": chat.person_name(consumer),
            "back": f"/console/{merchant.id}/inbox",
            "action": f"/console/{merchant.id}/inbox/{conversation.id}",
            "assignee": names.get(conversation.assignee_id or 0, ""),
            "mine": conversation.assignee_id == user.id,
            "may_write": conversation.assignee_id in (None, user.id) or seen.is_owner,
            "colleagues": [
                (uid, name) for uid, name in names.items() if uid != conversation.assignee_id
            ]
            if may_transfer
            else [],
            "role": member.role,
            "notice": notice,
            "error": error,
            "send_error": send_error,
            "draft": draft,
        },
        status=status,
    )


@router.get("/console/{merchant_id}/inbox/{conversation_id}")
async def staff_chat_page(
    request: Request,
    merchant_id: IdPath,
    conversation_id: IdPath,
    session: Session,
    user: PageUser,
    before: Annotated[int | None, Query(ge=2, le=MAX_ID)] = None,
    notice: str = "",
) -> Response:
    return await _staff_thread(
        request,
        session,
        user,
        (merchant_id, conversation_id),
        before=before,
        notice=_notice(notice),
    )


@router.post("/console/{merchant_id}/inbox/{conversation_id}")
async def staff_send(
    request: Request,
    merchant_id: IdPath,
    conversation_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    body: Body,
    client_id: ClientId = None,
) -> Response:
    verify_csrf(request, csrf_token)

    async def again(error: str, status: int) -> Response:
        return await _staff_thread(
            request,
            session,
            user,
            (merchant_id, conversation_id),
            send_error=error,
            draft=body,
            status=status,
        )

    await _staff_only(session, user, merchant_id, conversation_id)
    return await _sending(
        session,
        user,
        lambda: chat.send(
            session,
            user=user,
            conversation_id=conversation_id,
            body=body,
            broker=_broker(request),
            client_id=client_id or None,
        ),
        done=f"/console/{merchant_id}/inbox/{conversation_id}#end",
        again=again,
    )


@router.post("/console/{merchant_id}/inbox/{conversation_id}/images")
async def staff_send_image(
    request: Request,
    merchant_id: IdPath,
    conversation_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    image: Upload,
) -> Response:
    verify_csrf(request, csrf_token)
    await _staff_only(session, user, merchant_id, conversation_id)
    data = await _read_upload(image)

    async def again(error: str, status: int) -> Response:
        return await _staff_thread(
            request, session, user, (merchant_id, conversation_id), send_error=error, status=status
        )

    return await _sending(
        session,
        user,
        lambda: chat.send_image(
            session, user=user, conversation_id=conversation_id, data=data, broker=_broker(request)
        ),
        done=f"/console/{merchant_id}/inbox/{conversation_id}#end",
        again=again,
    )


async def _staff_only(
    session: AsyncSession, user: User, merchant_id: int, conversation_id: int
) -> Merchant:
    """The shop side of this merchant's conversation, or 404 (the path's merchant must be the
    conversation's, and the caller on its staff)."""
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    seen = await chat.access(session, user=user, conversation_id=conversation_id)
    if seen.side != "shop" or seen.conversation.merchant_id != merchant.id:
        raise NotFound("Conversation")
    return merchant


async def _assigning(
    request: Request,
    session: AsyncSession,
    user: User,
    ids: tuple[int, int],
    action: Callable[[], Awaitable[object]],
    done: Literal["picked", "transferred"],
) -> Response:
    try:
        await action()
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)  # the rollback expired it
        return await _staff_thread(
            request, session, user, ids, error=message_of(exc), status=exc.status
        )
    merchant_id, conversation_id = ids
    return see_other(f"/console/{merchant_id}/inbox/{conversation_id}?notice={done}")


@router.post("/console/{merchant_id}/inbox/{conversation_id}/pick-up")
async def pick_up(
    request: Request,
    merchant_id: IdPath,
    conversation_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    return await _assigning(
        request,
        session,
        user,
        (merchant_id, conversation_id),
        lambda: chat.pick_up(
            session,
            user=user,
            merchant_id=merchant_id,
            conversation_id=conversation_id,
            broker=_broker(request),
        ),
        "picked",
    )


@router.post("/console/{merchant_id}/inbox/{conversation_id}/transfer")
async def transfer(
    request: Request,
    merchant_id: IdPath,
    conversation_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    to_user_id: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> Response:
    verify_csrf(request, csrf_token)
    return await _assigning(
        request,
        session,
        user,
        (merchant_id, conversation_id),
        lambda: chat.transfer(
            session,
            user=user,
            merchant_id=merchant_id,
            conversation_id=conversation_id,
            to_user_id=to_user_id,
            broker=_broker(request),
        ),
        "transferred",
    )
