"""Feedback in the merchant console: the shop's page, a product's page, and the low reviews
behind one complaint term. The rating chart is drawn by static/feedback.js from a JSON data
block; without script the same numbers are a table."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.merchants import service as merchants
from mobimart.social import feedback as service
from mobimart.web.deps import PageUser, Session
from mobimart.web.i18n import gettext_ as _
from mobimart.web.schemas import MAX_ID, IdPath
from mobimart.web.templating import render

router = APIRouter()
Weeks = Annotated[int, Query(ge=1, le=service.MAX_WEEKS)]
WINDOWS = (4, 12, 26, 52)


def duration(seconds: float) -> str:
    """A wait as people say it: the largest whole unit."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return _("under a minute")
    if minutes < 60:
        return _("%(n)d min") % {"n": minutes}
    if minutes < 48 * 60:
        return _("%(n)d h") % {"n": minutes // 60}
    return _("%(n)d days") % {"n": minutes // (24 * 60)}


def _chart(fb: service.Feedback) -> dict[str, Any]:
    return {
        "labels": [p.label for p in fb.trend],
        "counts": [p.count for p in fb.trend],
        "averages": [p.average for p in fb.trend],
        "countLabel": _("Reviews"),
        "averageLabel": _("Average stars"),
    }


async def _page(
    request: Request,
    session: AsyncSession,
    user: User,
    *,
    merchant_id: int,
    product_id: int | None,
    weeks: int,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    fb = await service.feedback(
        session, merchant_id=merchant.id, product_id=product_id, weeks=weeks
    )
    return render(
        request,
        "social/feedback.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "fb": fb,
            "chart": _chart(fb),
            "windows": WINDOWS,
            "default_weeks": service.DEFAULT_WEEKS,
            "page_path": service.page_path(merchant.id, product_id),
            "term_link": lambda term: service.reviews_path(merchant.id, term, product_id, fb.weeks),
            "duration": duration,
        },
    )


@router.get("/console/{merchant_id}/feedback")
async def shop_feedback(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    weeks: Weeks = service.DEFAULT_WEEKS,
) -> Response:
    return await _page(
        request, session, user, merchant_id=merchant_id, product_id=None, weeks=weeks
    )


@router.get("/console/{merchant_id}/feedback/products/{product_id}")
async def product_feedback(
    request: Request,
    merchant_id: IdPath,
    product_id: IdPath,
    user: PageUser,
    session: Session,
    weeks: Weeks = service.DEFAULT_WEEKS,
) -> Response:
    return await _page(
        request, session, user, merchant_id=merchant_id, product_id=product_id, weeks=weeks
    )


def highlight(text: str, term: str) -> list[tuple[str, bool]]:
    """The text cut around each occurrence of the term (any case), for <mark> in a template
    that escapes every piece."""
    if not term:
        return [(text, False)]
    pieces = re.split(f"({re.escape(term)})", text, flags=re.IGNORECASE)
    return [(piece, index % 2 == 1) for index, piece in enumerate(pieces) if piece]


@router.get("/console/{merchant_id}/feedback/reviews")
async def term_reviews(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    term: Annotated[str, Query(min_length=1, max_length=50)],
    product_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    weeks: Weeks = service.DEFAULT_WEEKS,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    reviews = await service.reviews_with_term(
        session, merchant_id=merchant.id, term=term, product_id=product_id, weeks=weeks
    )
    return render(
        request,
        "social/feedback_reviews.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "term": term,
            "weeks": weeks,
            "reviews": reviews,
            "back": service.page_path(merchant.id, product_id)
            + (f"?weeks={weeks}" if weeks != service.DEFAULT_WEEKS else ""),
            "highlight": highlight,
        },
    )
