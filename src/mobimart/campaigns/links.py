"""The short link in each campaign message, `/s/<token>`: public (the random 11-character
token is the credential), answers 302 to where the campaign points, and records the click
for the report and for attribution of a later order.

Every click by a person is an event (a second visit can be what led to the order); the
message's `clicked_at` keeps the first. Link-preview bots (chat apps fetch every link they
see) follow the redirect but count for nothing."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns import events
from mobimart.campaigns.models import Campaign, CampaignMessage
from mobimart.db import utcnow
from mobimart.errors import DomainError
from mobimart.web.deps import Session
from mobimart.web.visitor import new_visitor, set_visitor, visitor_of

router = APIRouter()
# Anything else in the path is simply not one of ours: the same readable 404.
Token = Annotated[str, Path(max_length=200)]
_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,16}")


class LinkNotFound(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "link_not_found",
            "This link is not one of ours, or it was mistyped. Open the shop from the home page.",
            404,
        )


async def click(
    session: AsyncSession,
    *,
    token: str,
    device: str,
    referrer: str = "",
    visitor: str | None = None,
) -> str:
    """Where the link goes; records the click unless `device` is a bot. Unknown: 404."""
    row = (
        await session.execute(
            select(
                CampaignMessage.id,
                CampaignMessage.user_id,
                CampaignMessage.campaign_id,
                Campaign.merchant_id,
                Campaign.link_url,
            )
            .join(Campaign, Campaign.id == CampaignMessage.campaign_id)
            .where(CampaignMessage.link_token == token)
        )
    ).one_or_none()
    if row is None:
        raise LinkNotFound()
    target = row.link_url or "/"
    if device == "bot":
        return target
    now = utcnow()
    # Only the first click sets it: the conditional update cannot overwrite a later one.
    await session.execute(
        update(CampaignMessage)
        .where(CampaignMessage.id == row.id, CampaignMessage.clicked_at.is_(None))
        .values(clicked_at=now)
        .execution_options(synchronize_session=False)
    )
    await events.record(
        session,
        kind=events.Kind.link_click,
        user_id=row.user_id,
        visitor=visitor,
        merchant_id=row.merchant_id,
        subject_id=row.id,
        campaign_id=row.campaign_id,
        device=device,
        referrer=referrer,
        at=now,
    )
    await session.commit()
    return target


@router.get("/s/{token}", include_in_schema=False)
async def short_link(request: Request, token: Token, session: Session) -> Response:
    if not _SHAPE.fullmatch(token):
        raise LinkNotFound()
    device = events.device_class(request.headers.get("user-agent", ""))
    visitor = visitor_of(request)
    fresh = visitor is None and device != "bot"
    if fresh:
        visitor = new_visitor()
    target = await click(
        session,
        token=token,
        device=device,
        referrer=request.headers.get("referer", ""),
        visitor=visitor,
    )
    response = RedirectResponse(target, status_code=302)
    if fresh and visitor is not None:
        set_visitor(request, response, visitor)
    return response
