"""Chat between a consumer and a shop: conversations, messages numbered per conversation,
read positions, the merchant's shared inbox (pick up, transfer) and offline notifications.

Every message takes its number from `UPDATE conversations SET last_seq = last_seq + 1 ...
RETURNING last_seq` in the transaction that inserts it (docs/adr/0008): the row lock makes
the numbers gapless and committed in order. After the commit the message goes to the broker
on `chat:user:<consumer_id>` and `chat:merchant:<merchant_id>`; the per-process hub
(social.live) delivers it to sockets exactly once and in order.

Nobody outside a conversation learns that it exists: every lookup is 404 for them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.domain import MemberRole, mask_phone
from mobimart.accounts.models import User
from mobimart.catalog.domain import ProductStatus
from mobimart.catalog.models import Media, Product, Shop
from mobimart.checkout.models import Order
from mobimart.db import after_commit, unique_or, utcnow
from mobimart.errors import Conflict, DomainError, Forbidden, NotFound
from mobimart.infra.pubsub import Broker
from mobimart.infra.storage import PrivateStore, sniff_content_type
from mobimart.merchants import service as merchants
from mobimart.merchants.models import MerchantMember
from mobimart.moderation import service as moderation
from mobimart.notifications import service as notifications
from mobimart.settings import get_settings
from mobimart.social.models import Conversation, Message
from mobimart.text import clean, money
from mobimart.web.i18n import stored as _

log = logging.getLogger("mobimart.chat")

Side = Literal["consumer", "shop"]
View = Literal["unassigned", "mine", "all"]

MAX_BODY = 2000
MAX_CLIENT_ID = 40
HISTORY_MAX = 200
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# Titles are stored in English and translated where the inbox shows them.
NEW_MESSAGE_TITLE = _("New chat message")
TRANSFERRED_TITLE = _("A chat was passed to you")


def user_channel(user_id: int) -> str:
    return f"chat:user:{user_id}"


def merchant_channel(merchant_id: int) -> str:
    return f"chat:merchant:{merchant_id}"


def image_store() -> PrivateStore:
    return PrivateStore(get_settings().uploads_dir / "chat")


def consumer_link(conversation_id: int) -> str:
    return f"/chats/{conversation_id}"


def staff_link(merchant_id: int, conversation_id: int) -> str:
    return f"/console/{merchant_id}/inbox/{conversation_id}"


# --- who may see a conversation ----------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    conversation: Conversation
    side: Side
    role: str | None  # the member's role on the shop side

    @property
    def is_owner(self) -> bool:
        return self.role == MemberRole.owner


async def access(session: AsyncSession, *, user: User, conversation_id: int) -> Access:
    """The conversation as its consumer or a member of its merchant sees it; 404 for anyone
    else (existence is private). A member who is also the consumer acts as the consumer."""
    seen, _ = await _access(session, user=user, conversation_id=conversation_id, client_id=None)
    return seen


async def _access(
    session: AsyncSession, *, user: User, conversation_id: int, client_id: str | None
) -> tuple[Access, Message | None]:
    """`access`, and the caller's earlier message with `client_id` if any (one query: this is
    every send's first step)."""
    query = (
        select(Conversation, MerchantMember.role)
        .outerjoin(
            MerchantMember,
            and_(
                MerchantMember.merchant_id == Conversation.merchant_id,
                MerchantMember.user_id == user.id,
            ),
        )
        .where(Conversation.id == conversation_id)
    )
    if client_id is not None:
        query = query.add_columns(Message).outerjoin(
            Message,
            and_(
                Message.conversation_id == Conversation.id,
                Message.sender_id == user.id,
                Message.client_id == client_id,
            ),
        )
    row: Any = (await session.execute(query)).first()
    if row is None:
        raise NotFound("Conversation")
    conversation, role = row[0], row[1]
    earlier: Message | None = row[2] if client_id is not None else None
    if conversation.user_id == user.id:
        return Access(conversation, "consumer", None), earlier
    if role is None:
        raise NotFound("Conversation")
    return Access(conversation, "shop", role), earlier


async def _staff_conversation(
    session: AsyncSession, *, user: User, merchant_id: int, conversation_id: int
) -> tuple[Conversation, str]:
    _, member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    conversation = await session.scalar(
        select(Conversation).where(
            Conversation.id == conversation_id, Conversation.merchant_id == merchant_id
        )
    )
    if conversation is None:
        raise NotFound("Conversation")
    return conversation, member.role


# --- names -------------------------------------------------------------------------------------


def person_name(user: User | None) -> str:
    """How the other side sees someone: the chosen name, else the masked number."""
    if user is None:
        return ""
    if user.display_name:
        return user.display_name
    return mask_phone(user.phone) if user.phone else f"#{user.id}"


async def _names(session: AsyncSession, user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    users = await session.scalars(select(User).where(User.id.in_(ids)))
    return {u.id: person_name(u) for u in users}


# --- message payloads --------------------------------------------------------------------------

Card = dict[str, str | None]


async def _product_cards(session: AsyncSession, ids: set[int]) -> dict[int, Card]:
    if not ids:
        return {}
    products = list(await session.scalars(select(Product).where(Product.id.in_(ids))))
    media = await session.execute(
        select(Media.product_id, Media.storage_key)
        .where(Media.product_id.in_(ids), Media.kind == "image")
        .order_by(Media.position, Media.id)
    )
    first: dict[int, str] = {}
    for product_id, key in media:
        if product_id is not None:
            first.setdefault(product_id, f"/media/{key}")
    return {
        p.id: {
            "title": p.name,
            "subtitle": money(p.price_minor, p.currency),
            "url": f"/products/{p.id}",
            "image_url": first.get(p.id),
        }
        for p in products
    }


async def _order_cards(session: AsyncSession, ids: set[int]) -> dict[int, Card]:
    if not ids:
        return {}
    orders = await session.scalars(select(Order).where(Order.id.in_(ids)))
    return {
        o.id: {
            "title": o.number,
            "subtitle": f"{money(o.total_minor, o.currency)} · {o.status}",
            "url": f"/orders/{o.id}",
            "image_url": None,
        }
        for o in orders
    }


async def cards_for(
    session: AsyncSession, messages: Sequence[Message]
) -> dict[tuple[str, int], Card]:
    """The product and order cards the messages show, loaded in two queries."""
    products = {m.ref_id for m in messages if m.kind == "product" and m.ref_id is not None}
    orders = {m.ref_id for m in messages if m.kind == "order" and m.ref_id is not None}
    cards: dict[tuple[str, int], Card] = {}
    for ref, card in (await _product_cards(session, products)).items():
        cards["product", ref] = card
    for ref, card in (await _order_cards(session, orders)).items():
        cards["order", ref] = card
    return cards


def payload(
    message: Message, cards: dict[tuple[str, int], Card], *, viewer: Side = "shop"
) -> dict[str, Any]:
    """A message as sockets and the REST API show it to `viewer`'s side. Hidden messages keep
    their place in the numbering but show nothing; the consumer never learns which member of
    the shop wrote (no staff ids)."""
    hidden = message.hidden_at is not None
    card = None
    if not hidden and message.ref_id is not None and message.kind in ("product", "order"):
        card = cards.get((message.kind, message.ref_id))
    image_url = None
    if message.kind == "image" and not hidden:
        image_url = f"/api/v1/conversations/{message.conversation_id}/images/{message.id}"
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "side": message.side,
        "sender_id": None if viewer == "consumer" and message.side == "shop" else message.sender_id,
        "kind": message.kind,
        "body": "" if hidden else message.body,
        "ref_id": message.ref_id,
        "card": card,
        "image_url": image_url,
        "client_id": message.client_id,
        "created_at": message.created_at.isoformat(),
        "hidden": hidden,
    }


def message_frame(
    message: Message,
    cards: dict[tuple[str, int], Card],
    *,
    viewer: Side = "shop",
    update: bool = False,
) -> str:
    """The socket frame of a message; `update` marks a message sent before and changed since
    (hidden by moderation), which sockets that have it get again to replace it."""
    frame: dict[str, Any] = {"type": "message", "message": payload(message, cards, viewer=viewer)}
    if update:
        frame["update"] = True
    return json.dumps(frame, ensure_ascii=False)


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    last = conversation.last_message_at
    return {
        "id": conversation.id,
        "merchant_id": conversation.merchant_id,
        "shop_id": conversation.shop_id,
        "user_id": conversation.user_id,
        "assignee_id": conversation.assignee_id,
        "last_seq": conversation.last_seq,
        "last_message_at": last.isoformat() if last else None,
    }


def _publish_conversation(
    session: AsyncSession, broker: Broker, conversation: Conversation, **extra: Any
) -> None:
    frame = json.dumps(
        {"type": "conversation", "conversation": conversation_payload(conversation) | extra}
    )

    async def publish() -> None:
        await broker.publish(merchant_channel(conversation.merchant_id), frame)

    after_commit(session, publish)


def _publish(
    session: AsyncSession,
    broker: Broker,
    conversation: Conversation,
    frame: str,
    consumer_frame: str | None = None,
) -> None:
    """After commit, `frame` to both sides' channels, or `consumer_frame` to the consumer's
    when that side is shown less (a message: no staff ids)."""
    channels = [user_channel(conversation.user_id), merchant_channel(conversation.merchant_id)]
    items = [(channels[0], consumer_frame or frame), (channels[1], frame)]

    async def publish() -> None:
        try:
            await broker.publish_each(items)
        except Exception:
            # Stored all the same: sockets get it with the conversation's next message (a
            # gap) or from their cursor when they reconnect.
            log.exception("chat message not published", extra={"channels": channels})

    after_commit(session, publish)


# --- opening a conversation --------------------------------------------------------------------


async def open_conversation(
    session: AsyncSession,
    *,
    user: User,
    shop_id: int,
    broker: Broker,
    product_id: int | None = None,
    order_id: int | None = None,
) -> Conversation:
    """The consumer's conversation with the shop, made on first use; a product or an order
    named puts its card in the thread (not again if it is the newest message already)."""
    if product_id is not None and order_id is not None:
        raise DomainError("one_card", "Name a product or an order, not both.", 422)
    shop = await session.get(Shop, shop_id)
    if shop is None:
        raise NotFound("Shop")
    member = await session.scalar(
        select(MerchantMember.id).where(
            MerchantMember.merchant_id == shop.merchant_id, MerchantMember.user_id == user.id
        )
    )
    if member is not None:
        raise DomainError("own_shop", "You work for this shop: answer its chats in the inbox.", 422)
    card: tuple[str, int] | None = None
    if product_id is not None:
        found = await session.scalar(
            select(Product.id).where(
                Product.id == product_id,
                Product.shop_id == shop.id,
                Product.status == ProductStatus.published,
            )
        )
        if found is None:
            raise NotFound("Product")
        card = ("product", product_id)
    if order_id is not None:
        found = await session.scalar(
            select(Order.id).where(
                Order.id == order_id, Order.user_id == user.id, Order.shop_id == shop.id
            )
        )
        if found is None:
            raise NotFound("Order")
        card = ("order", order_id)

    existing = select(Conversation).where(
        Conversation.user_id == user.id, Conversation.shop_id == shop.id
    )
    conversation = await session.scalar(existing)
    if conversation is None:
        try:
            async with unique_or(session, LookupError()):
                now = utcnow()
                conversation = Conversation(
                    user_id=user.id,
                    shop_id=shop.id,
                    merchant_id=shop.merchant_id,
                    last_message_at=now,  # lists sort by it; never null
                    created_at=now,
                )
                session.add(conversation)
            _publish_conversation(session, broker, conversation, new=True)
        except LookupError:  # opened by a parallel request a moment ago
            conversation = await session.scalar(existing)
    assert conversation is not None
    if card is not None:
        newest = await session.scalar(
            select(Message).where(
                Message.conversation_id == conversation.id,
                Message.seq == conversation.last_seq,
            )
        )
        if newest is None or (newest.kind, newest.ref_id) != card:
            await moderation.limit(session, user_id=user.id, action="message")
            await _append(
                session,
                access=Access(conversation, "consumer", None),
                user=user,
                broker=broker,
                kind=card[0],
                ref_id=card[1],
            )
            await session.refresh(conversation)
    await session.commit()
    return conversation


# --- sending -----------------------------------------------------------------------------------


async def _by_client_id(
    session: AsyncSession, *, conversation_id: int, sender_id: int, client_id: str
) -> Message | None:
    return await session.scalar(
        select(Message).where(
            Message.conversation_id == conversation_id,
            Message.sender_id == sender_id,
            Message.client_id == client_id,
        )
    )


async def _claim_for_shop(
    session: AsyncSession, *, access: Access, user: User, broker: Broker
) -> None:
    """A shop-side message takes an unassigned conversation for its sender; one picked up by
    someone else is theirs (the owner may still write in it). The loaded row is not changed
    in memory: a flush of it at commit could undo a transfer committed meanwhile."""
    conversation = access.conversation
    holder = conversation.assignee_id
    if holder is None:
        taken = await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id, Conversation.assignee_id.is_(None))
            .values(assignee_id=user.id)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            _publish_conversation(session, broker, conversation, assignee_id=user.id)
            return
        holder = await session.scalar(
            select(Conversation.assignee_id).where(Conversation.id == conversation.id)
        )
    if holder not in (None, user.id) and not access.is_owner:
        names = await _names(session, [holder])
        raise Conflict("picked_up", f"Picked up by {names.get(holder or 0, 'a colleague')}.")


async def _offline_recipients(
    session: AsyncSession, *, access: Access, broker: Broker
) -> list[int]:
    """Who on the other side gets an inbox notification: nobody of theirs is connected."""
    conversation = access.conversation
    if access.side == "shop":
        online = await broker.online([f"user:{conversation.user_id}"])
        return [] if online else [conversation.user_id]
    if conversation.assignee_id is not None:
        online = await broker.online([f"user:{conversation.assignee_id}"])
        return [] if online else [conversation.assignee_id]
    if await broker.online([f"merchant:{conversation.merchant_id}"]):
        return []
    members = await session.scalars(
        select(MerchantMember.user_id).where(MerchantMember.merchant_id == conversation.merchant_id)
    )
    return list(members)


async def _append(
    session: AsyncSession,
    *,
    access: Access,
    user: User,
    broker: Broker,
    kind: str,
    body: str = "",
    ref_id: int | None = None,
    storage_key: str | None = None,
    client_id: str | None = None,
) -> Message:
    conversation = access.conversation
    recipients = await _offline_recipients(session, access=access, broker=broker)
    read_column = "consumer_read_seq" if access.side == "consumer" else "shop_read_seq"
    # The row lock taken here orders this conversation's sends: seq order is commit order.
    # Writing is reading: the sender's side has read everything up to its own message.
    seq = (
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(
                {
                    Conversation.last_seq: Conversation.last_seq + 1,
                    Conversation.last_message_at: utcnow(),
                    getattr(Conversation, read_column): Conversation.last_seq + 1,
                }
            )
            .returning(Conversation.last_seq)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    message = Message(
        conversation_id=conversation.id,
        sender_id=user.id,
        seq=seq,
        side=access.side,
        kind=kind,
        body=body,
        ref_id=ref_id,
        storage_key=storage_key,
        client_id=client_id,
        created_at=utcnow(),
    )
    session.add(message)
    await session.flush()
    if recipients:
        await _notify(session, access=access, message=message, user_ids=recipients)
    _publish_message(session, broker, conversation, message, await cards_for(session, [message]))
    return message


def _publish_message(
    session: AsyncSession,
    broker: Broker,
    conversation: Conversation,
    message: Message,
    cards: dict[tuple[str, int], Card],
    *,
    update: bool = False,
) -> None:
    _publish(
        session,
        broker,
        conversation,
        message_frame(message, cards, update=update),
        message_frame(message, cards, viewer="consumer", update=update),
    )


def _preview(message: Message) -> str:
    if message.kind == "image":
        return "[image]"
    if message.kind in ("product", "order"):
        return f"[{message.kind}]"
    return message.body[:120]


async def _notify(
    session: AsyncSession, *, access: Access, message: Message, user_ids: list[int]
) -> None:
    conversation = access.conversation
    if access.side == "shop":
        shop_name = await session.scalar(select(Shop.name).where(Shop.id == conversation.shop_id))
        body = f"{shop_name}: {_preview(message)}"
        link = consumer_link(conversation.id)
    else:
        body = _preview(message)
        link = staff_link(conversation.merchant_id, conversation.id)
    for user_id in user_ids:
        await notifications.notify(
            session,
            user_id=user_id,
            kind="chat",
            title=NEW_MESSAGE_TITLE,
            body=body,
            link=link,
            key=f"chat:{conversation.id}",
        )


def _valid_client_id(client_id: str | None) -> str | None:
    if client_id is None:
        return None
    if not 1 <= len(client_id) <= MAX_CLIENT_ID or not client_id.isprintable():
        raise DomainError("invalid_client_id", "A client id has 1 to 40 printable characters.", 422)
    return client_id


async def send(
    session: AsyncSession,
    *,
    user: User,
    conversation_id: int,
    body: str,
    broker: Broker,
    client_id: str | None = None,
) -> tuple[Message, bool]:
    """Add a text message; (message, True) when new, (the earlier one, False) when the same
    client id was sent already (a resend after a lost ack is the same message)."""
    client_id = _valid_client_id(client_id)
    text = clean(body, MAX_BODY + 1)
    if not text:
        raise DomainError("empty_message", "Write something first.", 422)
    if len(text) > MAX_BODY:
        raise DomainError("message_too_long", f"A message has at most {MAX_BODY} characters.", 422)
    return await _send(
        session,
        user=user,
        conversation_id=conversation_id,
        broker=broker,
        client_id=client_id,
        kind="text",
        body=text,
    )


async def _send(
    session: AsyncSession,
    *,
    user: User,
    conversation_id: int,
    broker: Broker,
    client_id: str | None,
    kind: str,
    body: str = "",
    storage_key: str | None = None,
) -> tuple[Message, bool]:
    seen, earlier = await _access(
        session, user=user, conversation_id=conversation_id, client_id=client_id
    )
    if earlier is not None:
        return earlier, False
    if body:
        await moderation.screen(session, body)
    await moderation.limit(session, user_id=user.id, action="message")
    if seen.side == "shop":
        await _claim_for_shop(session, access=seen, user=user, broker=broker)
    message = await _append(
        session,
        access=seen,
        user=user,
        broker=broker,
        kind=kind,
        body=body,
        storage_key=storage_key,
        client_id=client_id,
    )
    try:
        await session.commit()
    except IntegrityError:
        # The same client id sent twice at once: the first commit won; this is that message.
        await session.rollback()
        if client_id is not None:
            earlier = await _by_client_id(
                session, conversation_id=conversation_id, sender_id=user.id, client_id=client_id
            )
            if earlier is not None:
                return earlier, False
        raise
    return message, True


async def send_image(
    session: AsyncSession,
    *,
    user: User,
    conversation_id: int,
    data: bytes,
    broker: Broker,
    client_id: str | None = None,
) -> tuple[Message, bool]:
    """An image message; the file is stored privately and served to the participants only."""
    client_id = _valid_client_id(client_id)
    seen = await access(session, user=user, conversation_id=conversation_id)
    if client_id is not None:
        earlier = await _by_client_id(
            session, conversation_id=seen.conversation.id, sender_id=user.id, client_id=client_id
        )
        if earlier is not None:
            return earlier, False
    store = image_store()
    stored = store.save(data, allowed=IMAGE_TYPES, max_bytes=get_settings().upload_max_bytes)
    try:
        message, created = await _send(
            session,
            user=user,
            conversation_id=conversation_id,
            broker=broker,
            client_id=client_id,
            kind="image",
            storage_key=stored.key,
        )
    except BaseException:
        store.delete(stored.key)
        raise
    if not created:  # a resend that raced the first: that message keeps its own file
        store.delete(stored.key)
    return message, created


async def read_image(
    session: AsyncSession, *, user: User, conversation_id: int, message_id: int
) -> tuple[str, bytes]:
    await access(session, user=user, conversation_id=conversation_id)
    key = await session.scalar(
        select(Message.storage_key).where(
            Message.id == message_id,
            Message.conversation_id == conversation_id,
            Message.kind == "image",
            Message.hidden_at.is_(None),
        )
    )
    if key is None:
        raise NotFound("Image")
    data = image_store().read(key)
    return sniff_content_type(data) or "application/octet-stream", data


# --- reading -----------------------------------------------------------------------------------


async def messages_after(
    session: AsyncSession, *, conversation_id: int, after_seq: int, upto: int | None, limit: int
) -> list[Message]:
    """Messages after `after_seq` (up to `upto`), oldest first: the gap fill and catch-up of
    the socket hub, which has checked access already."""
    query = select(Message).where(
        Message.conversation_id == conversation_id, Message.seq > after_seq
    )
    if upto is not None:
        query = query.where(Message.seq <= upto)
    return list(await session.scalars(query.order_by(Message.seq).limit(limit)))


async def history(
    session: AsyncSession,
    *,
    user: User,
    conversation_id: int,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> tuple[Access, list[Message]]:
    """Oldest first: after a seq (catching up), before one (scrolling back), or the newest."""
    seen = await access(session, user=user, conversation_id=conversation_id)
    limit = max(1, min(limit, HISTORY_MAX))
    if after_seq is not None:
        rows = await messages_after(
            session,
            conversation_id=conversation_id,
            after_seq=after_seq,
            upto=before_seq - 1 if before_seq is not None else None,
            limit=limit,
        )
        return seen, rows
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before_seq is not None:
        query = query.where(Message.seq < before_seq)
    newest = list(await session.scalars(query.order_by(Message.seq.desc()).limit(limit)))
    return seen, newest[::-1]


async def mark_read(
    session: AsyncSession, *, user: User, conversation_id: int, seq: int, broker: Broker
) -> int:
    """Move the caller's side's read position forward to `seq` (never back, never past the
    last message); the other side sees it as a read receipt. Returns the position."""
    seen = await access(session, user=user, conversation_id=conversation_id)
    column = (
        Conversation.consumer_read_seq if seen.side == "consumer" else Conversation.shop_read_seq
    )
    moved = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, column < seq)
        .values({column: case((Conversation.last_seq < seq, Conversation.last_seq), else_=seq)})
        .returning(column)
        .execution_options(synchronize_session=False)
    )
    position = moved.scalar_one_or_none()
    if position is not None:
        frame = json.dumps(
            {
                "type": "read",
                "conversation_id": conversation_id,
                "side": seen.side,
                "seq": position,
            }
        )
        _publish(session, broker, seen.conversation, frame)
    await notifications.read_by_key(session, user_id=user.id, key=f"chat:{conversation_id}")
    await session.commit()
    if position is None:
        position = await session.scalar(select(column).where(Conversation.id == conversation_id))
    return int(position or 0)


def unread(conversation: Conversation, side: Side) -> int:
    read = conversation.consumer_read_seq if side == "consumer" else conversation.shop_read_seq
    return max(0, conversation.last_seq - read)


# --- lists -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    conversation: Conversation
    last_message: Message | None
    shop_name: str
    consumer_name: str
    assignee_name: str


def encode_cursor(conversation: Conversation) -> str:
    at = conversation.last_message_at or conversation.created_at
    raw = json.dumps({"at": at.isoformat(), "id": conversation.id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = dt.datetime.fromisoformat(data["at"])
        ident = data["id"]
        if isinstance(ident, int) and not isinstance(ident, bool) and at.tzinfo is not None:
            return at, ident
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        pass
    raise DomainError("invalid_cursor", "The cursor is not one this API gave out.", 422)


async def describe(session: AsyncSession, page: Sequence[Conversation]) -> list[Row]:
    """Conversations with their newest message and the names shown beside them."""
    if not page:
        return []
    pairs = [(c.id, c.last_seq) for c in page if c.last_seq]
    last: dict[int, Message] = {}
    if pairs:
        messages = await session.scalars(
            select(Message).where(
                or_(*(and_(Message.conversation_id == i, Message.seq == s) for i, s in pairs))
            )
        )
        last = {m.conversation_id: m for m in messages}
    shop_ids = {c.shop_id for c in page}
    found = await session.execute(select(Shop.id, Shop.name).where(Shop.id.in_(shop_ids)))
    shops: dict[int, str] = {ident: name for ident, name in found}
    names = await _names(session, [c.user_id for c in page] + [c.assignee_id for c in page])
    return [
        Row(
            conversation=c,
            last_message=last.get(c.id),
            shop_name=shops.get(c.shop_id, ""),
            consumer_name=names.get(c.user_id, ""),
            assignee_name=names.get(c.assignee_id or 0, ""),
        )
        for c in page
    ]


async def _rows(
    session: AsyncSession, conditions: list[Any], *, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """Newest activity first, `limit` a page, with the cursor of the next page."""
    query = select(Conversation).where(*conditions)
    if cursor:
        at, ident = decode_cursor(cursor)
        query = query.where(
            or_(
                Conversation.last_message_at < at,
                and_(Conversation.last_message_at == at, Conversation.id < ident),
            )
        )
    found = list(
        await session.scalars(
            query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(
                limit + 1
            )
        )
    )
    page, more = found[:limit], len(found) > limit
    rows = await describe(session, page)
    return rows, encode_cursor(page[-1]) if more else None


async def my_conversations(
    session: AsyncSession, *, user: User, cursor: str | None = None, limit: int = 20
) -> tuple[list[Row], str | None]:
    """The caller's conversations as a consumer."""
    return await _rows(session, [Conversation.user_id == user.id], cursor=cursor, limit=limit)


async def inbox(
    session: AsyncSession,
    *,
    user: User,
    merchant_id: int,
    view: View = "all",
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[Row], str | None]:
    """The merchant's shared inbox for one of its members."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    conditions: list[Any] = [Conversation.merchant_id == merchant_id]
    if view == "unassigned":
        conditions.append(Conversation.assignee_id.is_(None))
    elif view == "mine":
        conditions.append(Conversation.assignee_id == user.id)
    return await _rows(session, conditions, cursor=cursor, limit=limit)


# --- the merchant's inbox ----------------------------------------------------------------------


async def pick_up(
    session: AsyncSession, *, user: User, merchant_id: int, conversation_id: int, broker: Broker
) -> Conversation:
    """Take an unassigned conversation; 409 when someone else was quicker."""
    conversation, _ = await _staff_conversation(
        session, user=user, merchant_id=merchant_id, conversation_id=conversation_id
    )
    taken = await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.assignee_id.is_(None))
        .values(assignee_id=user.id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(conversation)
    if taken.rowcount == 1:  # type: ignore[attr-defined]
        _publish_conversation(session, broker, conversation)
    elif conversation.assignee_id != user.id:
        holder = conversation.assignee_id or 0
        names = await _names(session, [holder])
        await session.rollback()
        raise Conflict("picked_up", f"Already picked up by {names.get(holder, 'a colleague')}.")
    await session.commit()
    return conversation


async def transfer(
    session: AsyncSession,
    *,
    user: User,
    merchant_id: int,
    conversation_id: int,
    to_user_id: int,
    broker: Broker,
) -> Conversation:
    """Pass a conversation to another member of the merchant: by whoever handles it, or by
    the owner at any time. The new handler is told unless they are connected."""
    conversation, role = await _staff_conversation(
        session, user=user, merchant_id=merchant_id, conversation_id=conversation_id
    )
    target = await session.scalar(
        select(MerchantMember.user_id).where(
            MerchantMember.merchant_id == merchant_id, MerchantMember.user_id == to_user_id
        )
    )
    if target is None:
        raise DomainError("not_a_member", "Pass it to a member of this merchant's staff.", 422)
    query = update(Conversation).where(Conversation.id == conversation_id)
    if role != MemberRole.owner:
        query = query.where(Conversation.assignee_id == user.id)
    moved = await session.execute(
        query.values(assignee_id=to_user_id).execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Forbidden("Only the person handling this conversation or the owner can pass it on.")
    await session.refresh(conversation)
    _publish_conversation(session, broker, conversation)
    if to_user_id != user.id and not await broker.online([f"user:{to_user_id}"]):
        await notifications.notify(
            session,
            user_id=to_user_id,
            kind="chat",
            title=TRANSFERRED_TITLE,
            body=person_name(user),
            link=staff_link(merchant_id, conversation_id),
            key=f"chat:{conversation_id}",
        )
    await session.commit()
    return conversation


# --- moderation --------------------------------------------------------------------------------


async def hide_message(
    session: AsyncSession, *, message_id: int, broker: Broker | None = None, hidden: bool = True
) -> Message:
    """Hide (or show again) a message for moderation; it keeps its number, shows nothing. The
    caller commits (the moderation queue records its decision in the same transaction); after
    the commit, open sockets that have the message get it again, changed (`update`), so the
    thread on screen replaces it."""
    message = await session.get(Message, message_id)
    if message is None:
        raise NotFound("Message")
    if (message.hidden_at is not None) == hidden:
        return message  # hidden already (kept its time), or shown already
    message.hidden_at = utcnow() if hidden else None
    await session.flush()
    conversation = await session.get(Conversation, message.conversation_id)
    if broker is not None and conversation is not None:
        cards = await cards_for(session, [message])
        _publish_message(session, broker, conversation, message, cards, update=True)
    return message


# --- sockets -----------------------------------------------------------------------------------


async def socket_merchants(session: AsyncSession, *, user_id: int) -> list[int]:
    """The merchants whose conversations a socket of `user_id` follows."""
    rows = await session.scalars(
        select(MerchantMember.merchant_id).where(MerchantMember.user_id == user_id)
    )
    return list(rows)


async def socket_conversations(
    session: AsyncSession, *, user_id: int, merchant_ids: list[int], since: dt.datetime
) -> dict[int, tuple[int, Side]]:
    """The conversations a socket follows that were active since `since`, with their newest
    seq and the socket's side in them: delivered live from there on (read after subscribing,
    so nothing falls in between). Older ones take no memory until their next message
    (`position_before`)."""
    condition = Conversation.user_id == user_id
    if merchant_ids:
        condition = or_(condition, Conversation.merchant_id.in_(merchant_ids))
    rows = await session.execute(
        select(Conversation.id, Conversation.last_seq, Conversation.user_id).where(
            condition, Conversation.last_message_at >= since
        )
    )
    return {
        ident: (last, "consumer" if consumer == user_id else "shop")
        for ident, last, consumer in rows
    }


async def position_before(
    session: AsyncSession, *, conversation_id: int, since: dt.datetime
) -> int:
    """The newest seq of a conversation idle since `since` (so not followed at connect): its
    messages written after `since` are the ones a socket connected then has not seen."""
    last = await session.scalar(
        select(func.max(Message.seq)).where(
            Message.conversation_id == conversation_id, Message.created_at < since
        )
    )
    return int(last or 0)


async def viewer_side(session: AsyncSession, *, conversation_id: int, user_id: int) -> Side:
    """Which side a socket's user is on, for the frames read from the database."""
    consumer = await session.scalar(
        select(Conversation.user_id).where(Conversation.id == conversation_id)
    )
    return "consumer" if consumer == user_id else "shop"
