"""The in-app inbox: every domain tells a user something through `notify`."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.checkout.models import Order
from mobimart.db import utcnow
from mobimart.errors import NotFound
from mobimart.notifications.models import Notification
from mobimart.web.i18n import stored as _
from mobimart.web.pagination import PageParams

KINDS = frozenset({"order", "answer", "chat", "review", "system"})


async def notify(
    session: AsyncSession,
    *,
    user_id: int,
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    key: str | None = None,
) -> Notification:
    """Add a line to the user's inbox in the caller's transaction. With a `key`, the line
    replaces an earlier one with the same key, so it rises to the top, unread, once."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if key is not None:
        await session.execute(
            delete(Notification).where(Notification.user_id == user_id, Notification.key == key)
        )
    note = Notification(
        user_id=user_id,
        kind=kind,
        key=key,
        title=title[:120],
        body=body[:300],
        link=link[:200],
    )
    session.add(note)
    await session.flush()
    return note


async def inbox(
    session: AsyncSession, *, user_id: int, page: PageParams, unread_only: bool = False
) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user_id)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if page.before_id is not None:
        query = query.where(Notification.id < page.before_id)
    rows = await session.scalars(query.order_by(Notification.id.desc()).limit(page.fetch))
    return list(rows)


async def unread_count(session: AsyncSession, *, user_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    )
    return int(count or 0)


async def mark_read(
    session: AsyncSession, *, user_id: int, notification_ids: list[int] | None = None
) -> int:
    """Mark the given notifications (or all) read; someone else's ids are silently no-ops,
    so the answer never tells whether another user's notification exists."""
    query = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if notification_ids is not None:
        query = query.where(Notification.id.in_(notification_ids))
    result = await session.execute(query.values(read_at=utcnow()))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def read_by_key(session: AsyncSession, *, user_id: int, key: str) -> None:
    """Opening the thing a keyed notification points to (a chat) reads the notification."""
    await session.execute(
        update(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.key == key,
            Notification.read_at.is_(None),
        )
        .values(read_at=utcnow())
    )


async def open_one(session: AsyncSession, *, user_id: int, notification_id: int) -> str:
    """Read one of the person's notifications and give the page it points to; someone else's
    is not found, like one that does not exist."""
    link = await session.scalar(
        select(Notification.link).where(
            Notification.id == notification_id, Notification.user_id == user_id
        )
    )
    if link is None:
        raise NotFound("Notification")
    await mark_read(session, user_id=user_id, notification_ids=[notification_id])
    return link


ORDER_TITLES = {
    "paid": _("Order paid: the shop is preparing it"),
    "shipped": _("Your order is on its way"),
    "delivered": _("Your order has been delivered"),
    "cancelled": _("Your order was cancelled"),
    "refunded": _("Money back for your order"),
}


async def order_update(session: AsyncSession, *, order: Order, event: str) -> None:
    """The buyer's line for one order: each update replaces the last, so it rises to the top."""
    await notify(
        session,
        user_id=order.user_id,
        kind="order",
        title=ORDER_TITLES[event],
        body=order.number,
        link=f"/orders/{order.id}",
        key=f"order:{order.id}",
    )
