"""The signed-in person's in-app inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from mobimart.notifications import service as notifications
from mobimart.notifications.models import Notification
from mobimart.notifications.schemas import MarkedOut, MarkReadIn, NotificationOut, UnreadCountOut
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params

router = APIRouter(tags=["notifications"])


def notification_out(note: Notification) -> NotificationOut:
    return NotificationOut(
        id=note.id,
        kind=note.kind,
        title=note.title,
        body=note.body,
        link=note.link,
        read=note.read_at is not None,
        created_at=note.created_at,
    )


@router.get("/me/notifications")
async def list_notifications(
    user: CurrentUser,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    unread: Annotated[bool, Query(description="only the unread ones")] = False,
) -> Page[NotificationOut]:
    """Newest first."""
    rows = await notifications.inbox(session, user_id=user.id, page=page, unread_only=unread)
    return make_page(rows, page, notification_out, key=lambda n: n.id)


@router.get("/me/notifications/unread-count")
async def unread_count(user: CurrentUser, session: Session) -> UnreadCountOut:
    return UnreadCountOut(unread=await notifications.unread_count(session, user_id=user.id))


@router.post("/me/notifications/read")
async def mark_read(body: MarkReadIn, user: CurrentUser, session: Session) -> MarkedOut:
    """Mark the listed notifications read, or all of them without `ids`. Ids that are not
    the caller's change nothing (and say nothing about whether they exist)."""
    marked = await notifications.mark_read(session, user_id=user.id, notification_ids=body.ids)
    await session.commit()
    return MarkedOut(
        marked=marked, unread=await notifications.unread_count(session, user_id=user.id)
    )
