"""Product views as marketing events, for "viewed product X in the last N days" segments:
recorded by the product page and `GET /api/v1/products/{id}` for a signed-in person or a
browser with the visitor cookie, at most once per person (or visitor) and product an hour, so
a reload or a swipe back is not another event.

An anonymous request without a visitor cookie records nothing and costs no query: the
product page and API serve it from the in-memory catalogue, and that stays their hot path."""

from __future__ import annotations

import datetime as dt
import logging

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.campaigns import events
from mobimart.db import Database
from mobimart.errors import Unauthorized
from mobimart.infra import throttle
from mobimart.web.visitor import visitor_of

log = logging.getLogger(__name__)

VIEW_EVERY = dt.timedelta(hours=1)


async def record_view(
    session: AsyncSession,
    *,
    product_id: int,
    merchant_id: int,
    user_id: int | None = None,
    visitor: str | None = None,
    device: str = "",
) -> bool:
    """Record a view (the caller commits), unless this person or visitor viewed the product
    within the hour; True if recorded. A visitor's views wait for `events.claim_visitor`."""
    if user_id is None and visitor is None:
        return False
    who = f"u{user_id}" if user_id is not None else f"v{visitor}"
    refused = await throttle.take(
        session, key=f"view:{who}:{product_id}", limit=1, window=VIEW_EVERY
    )
    if refused is not None:
        return False
    await events.record(
        session,
        kind=events.Kind.product_view,
        user_id=user_id,
        visitor=None if user_id is not None else visitor,
        merchant_id=merchant_id,
        subject_id=product_id,
        device=device,
    )
    return True


async def _record_committed(
    request: Request,
    session: AsyncSession,
    *,
    product_id: int,
    merchant_id: int,
    user_id: int | None,
    visitor: str | None,
) -> None:
    """Record and commit; a view that cannot be recorded (a busy database) must not cost the
    shopper the product, so it is logged and dropped."""
    try:
        await record_view(
            session,
            product_id=product_id,
            merchant_id=merchant_id,
            user_id=user_id,
            visitor=visitor,
            device=events.device_class(request.headers.get("user-agent", "")),
        )
        await session.commit()
    except SQLAlchemyError:
        await session.rollback()
        log.warning("product view not recorded", exc_info=True)


async def from_page(
    request: Request,
    session: AsyncSession,
    *,
    product_id: int,
    merchant_id: int,
    user: User | None,
) -> None:
    """The product page's view: the signed-in person, else the visitor cookie, else none."""
    visitor = None if user is not None else visitor_of(request)
    if user is None and visitor is None:
        return
    await _record_committed(
        request,
        session,
        product_id=product_id,
        merchant_id=merchant_id,
        user_id=user.id if user is not None else None,
        visitor=visitor,
    )


async def from_api(request: Request, *, product_id: int, merchant_id: int) -> None:
    """The API's view: the bearer token's person, else the visitor cookie, else none. The
    product API opens no database session for anonymous requests; this opens one only when
    there is someone to record. A bad token is no error here: the product is public."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    visitor = visitor_of(request)
    if not token and visitor is None:
        return
    database: Database = request.app.state.db
    async with database.session() as session:
        user_id = None
        if token:
            try:
                user, _auth = await accounts.authenticate(session, token=token, kind="api")
                user_id = user.id
            except Unauthorized:
                pass
        if user_id is None and visitor is None:
            return
        await _record_committed(
            request,
            session,
            product_id=product_id,
            merchant_id=merchant_id,
            user_id=user_id,
            visitor=None if user_id is not None else visitor,
        )
