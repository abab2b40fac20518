"""The inbox page, and the unread count every page's tab bar shows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from mobimart.accounts.models import AuthToken, User
from mobimart.notifications import service as notifications
from mobimart.web.deps import PageUser, Session, page_auth_optional
from mobimart.web.forms import safe_next, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]


async def unread_badge(
    request: Request,
    session: Session,
    auth: Annotated[tuple[User, AuthToken] | None, Depends(page_auth_optional)],
) -> None:
    """Counts the signed-in person's unread notifications for the tab bar, so the badge is in
    the server's HTML (no script needed). Depends on the same sign-in lookup the page uses
    (FastAPI runs it once per request), so a page costs one COUNT more. Skipped for form
    posts (they redirect) and for a script's fetch of a fragment (no tab bar there)."""
    if auth is None or request.method != "GET":
        return
    if request.headers.get("sec-fetch-dest", "document") != "document":
        return
    request.state.unread_notifications = await notifications.unread_count(
        session, user_id=auth[0].id
    )


@router.get("/me/notifications")
async def inbox_page(
    request: Request,
    session: Session,
    user: PageUser,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    notice: str = "",
) -> Response:
    params = page_params(cursor=cursor, limit=30)
    rows = await notifications.inbox(session, user_id=user.id, page=params)
    items, next_cursor = split_page(rows, params, key=lambda n: n.id)
    return render(
        request,
        "notifications/inbox.html",
        {
            "user": user,
            "tab": "inbox",
            # Titles are stored in English and shown in the reader's language; as plain text,
            # escaped like any other (a chat title may carry a shop's name).
            "items": [(n, _(n.title)) for n in items],
            "next_cursor": next_cursor,
            "notice": _("All read.") if notice == "read" else "",
        },
    )


@router.post("/me/notifications/read")
async def mark_all_read(
    request: Request, session: Session, user: PageUser, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    await notifications.mark_read(session, user_id=user.id)
    await session.commit()
    return see_other("/me/notifications?notice=read")


@router.post("/me/notifications/{notification_id}/open")
async def open_notification(
    request: Request, notification_id: IdPath, session: Session, user: PageUser, csrf_token: Csrf
) -> Response:
    """A tap on a line reads it and goes where it points."""
    verify_csrf(request, csrf_token)
    link = await notifications.open_one(session, user_id=user.id, notification_id=notification_id)
    await session.commit()
    return see_other(safe_next(link, "/me/notifications"))
