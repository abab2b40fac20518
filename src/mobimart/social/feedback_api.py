"""Merchant feedback as JSON: the same document the console page draws."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mobimart.merchants import service as merchants
from mobimart.social import feedback as service
from mobimart.social.feedback_schemas import FeedbackOut
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.schemas import MAX_ID, IdPath

router = APIRouter(tags=["feedback"])


@router.get("/merchants/{merchant_id}/feedback")
async def merchant_feedback(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    product_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    weeks: Annotated[int, Query(ge=1, le=service.MAX_WEEKS)] = service.DEFAULT_WEEKS,
) -> FeedbackOut:
    """Rating trend per ISO week, top complaint terms of low reviews, unanswered questions,
    slow chat replies and what to fix, for the shop or one of its products; staff only."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    result = await service.feedback(
        session, merchant_id=merchant_id, product_id=product_id, weeks=weeks
    )
    return FeedbackOut.of(result)
