"""The in-app inbox: every domain tells a user something through `notify`."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.db import utcnow
from mobimart.notifications.models import Notification
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
