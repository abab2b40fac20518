"""The short link in a campaign message, /s/<token>: 302 to the campaign's link, one event
per click, `clicked_at` set by the first only, bots not counted, unknown tokens a 404 page."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mobimart.campaigns.models import CampaignMessage, MarketingEvent
from mobimart.db import Database
from mobimart.web.visitor import VISITOR_COOKIE
from tests import factories

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
BOT = "TelegramBot (like TwitterBot)"


@pytest.fixture
async def link(db: Database, make_user: Any) -> dict[str, int]:
    owner, admin, person = await make_user(), await make_user(admin=True), await make_user()
    merchant = await factories.merchant(db, owner, admin=admin)
    campaign_id = await factories.sms_campaign(db, merchant.id, link_url="/shops/7?src=sms")
    message_id = await factories.campaign_message(
        db, campaign_id, person.id, status="delivered", link_token="Tok_en-1234", parts=1
    )
    return {
        "merchant": merchant.id,
        "campaign": campaign_id,
        "message": message_id,
        "user": person.id,
    }


async def _state(db: Database, message_id: int) -> tuple[Any, list[MarketingEvent]]:
    async with db.session() as s:
        message = await s.get(CampaignMessage, message_id)
        assert message is not None
        events = list(
            await s.scalars(
                select(MarketingEvent)
                .where(MarketingEvent.kind == "link_click")
                .order_by(MarketingEvent.id)
            )
        )
        return message.clicked_at, events


async def test_click_redirects_records_an_event_and_the_first_click(
    client: httpx.AsyncClient, db: Database, link: dict[str, int]
) -> None:
    first = await client.get("/s/Tok_en-1234", headers={"User-Agent": PHONE, "Referer": "sms"})
    assert first.status_code == 302
    assert first.headers["location"] == "/shops/7?src=sms"
    assert VISITOR_COOKIE in first.cookies
    clicked_at, events = await _state(db, link["message"])
    assert clicked_at is not None
    assert len(events) == 1
    event = events[0]
    assert (event.user_id, event.campaign_id, event.subject_id, event.merchant_id) == (
        link["user"],
        link["campaign"],
        link["message"],
        link["merchant"],
    )
    assert event.device == "phone"
    assert event.visitor == first.cookies[VISITOR_COOKIE]
    assert event.at == clicked_at

    again = await client.get("/s/Tok_en-1234", headers={"User-Agent": PHONE})
    assert again.status_code == 302
    still, events = await _state(db, link["message"])
    assert still == clicked_at  # the first click's moment stays
    assert len(events) == 2


async def test_bots_follow_but_are_not_counted(
    client: httpx.AsyncClient, db: Database, link: dict[str, int]
) -> None:
    response = await client.get("/s/Tok_en-1234", headers={"User-Agent": BOT})
    assert response.status_code == 302
    assert response.headers["location"] == "/shops/7?src=sms"
    assert VISITOR_COOKIE not in response.cookies
    clicked_at, events = await _state(db, link["message"])
    assert clicked_at is None
    assert events == []


@pytest.mark.parametrize("token", ["Tok_en-1235", "nope", "a.b", "x" * 40])
async def test_unknown_token_is_a_readable_404_page(
    client: httpx.AsyncClient, db: Database, link: dict[str, int], token: str
) -> None:
    response = await client.get(f"/s/{token}", headers={"User-Agent": PHONE})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "This link is not one of ours" in response.text
    _clicked, events = await _state(db, link["message"])
    assert events == []


async def test_a_campaign_without_a_link_sends_clicks_home(
    client: httpx.AsyncClient, db: Database, link: dict[str, int], make_user: Any
) -> None:
    other = await factories.sms_campaign(db, link["merchant"], link_url=None)
    person = await make_user()
    await factories.campaign_message(db, other, person.id, link_token="NoLink00001")
    response = await client.get("/s/NoLink00001", headers={"User-Agent": PHONE})
    assert response.status_code == 302
    assert response.headers["location"] == "/"
