"""A script tag typed into a review, a question, an answer or a chat message is stored as typed
and shown as text on every page that shows it: the shopper's, the shop's and the admin's."""

from __future__ import annotations

import re
from typing import Any

import httpx

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.db import Database
from mobimart.web.deps import SESSION_COOKIE
from tests import factories

CSRF = "c" * 43
ATTACK = '<script>alert("x")</script><img src=x onerror=alert(1)>'
# Jinja's autoescape, as the browser would receive it.
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


async def _client(app: Any, db: Database, user: User) -> httpx.AsyncClient:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        cookies={"mm_csrf": CSRF, SESSION_COOKIE: token},
    )


def _posted(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return response.headers["location"]


def _shown_as_text(html: str, where: str) -> int:
    """How many times the attack appears escaped; fails if it appears as markup."""
    assert "<script>alert" not in html, where
    assert "onerror=alert(1)>" not in html.replace(ESCAPED, ""), where
    return html.count(ESCAPED)


async def test_script_tags_are_text_on_every_page(app: Any, db: Database, make_user: Any) -> None:
    buyer = await make_user(name="Buyer")
    owner = await make_user(name="Owner")
    admin = await make_user(admin=True)
    bystander = await make_user(name="Bystander")
    merchant = await factories.merchant(db, owner, admin=admin, n=1)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name="Teapot", price_minor=1999, stock=9, publish=True
        )
    (line_id,) = await factories.buy(
        db, buyer, [product], owner=owner, merchant_id=merchant.id, until="delivered"
    )
    m, p = merchant.id, product.id
    async with (
        await _client(app, db, buyer) as shopper,
        await _client(app, db, owner) as shop,
        await _client(app, db, admin) as moderator,
        await _client(app, db, bystander) as reader,
    ):
        form = {"csrf_token": CSRF}
        review_at = _posted(
            await shopper.post(
                f"/order-lines/{line_id}/review", data={**form, "stars": "2", "body": ATTACK}
            )
        )
        review_id = int(review_at.rsplit("-", 1)[1])
        asked_at = _posted(
            await shopper.post(f"/products/{p}/questions", data={**form, "body": ATTACK})
        )
        question_id = int(asked_at.rsplit("#q-", 1)[1])
        _posted(
            await shop.post(
                f"/console/{m}/questions/{question_id}/answers", data={**form, "body": ATTACK}
            )
        )
        _posted(
            await shop.post(
                f"/console/{m}/reviews/{review_id}/reply", data={**form, "body": ATTACK}
            )
        )
        chat_at = _posted(
            await shopper.post("/chats/start", data={**form, "shop_id": product.shop_id})
        )
        conversation_id = int(re.fullmatch(r"/chats/(\d+)", chat_at)[1])  # type: ignore[index]
        _posted(await shopper.post(chat_at, data={**form, "body": ATTACK}))
        _posted(
            await shop.post(f"/console/{m}/inbox/{conversation_id}", data={**form, "body": ATTACK})
        )
        _posted(
            await reader.post(
                "/report",
                data={**form, "subject": "review", "subject_id": review_id, "reason": "spam"},
            )
        )

        # The API gives back exactly what was typed: escaping is the page's job, not storage's.
        reviews = (await shopper.get(f"/api/v1/products/{p}/reviews")).json()
        assert reviews["items"][0]["body"] == ATTACK

        # Each page, who looks at it, and the least number of escaped copies it must show.
        pages: list[tuple[httpx.AsyncClient, str, int]] = [
            (shopper, f"/products/{p}", 4),  # the review, its reply, the question, its answer
            (shopper, f"/products/{p}/reviews", 2),
            (shopper, f"/products/{p}/questions", 2),
            (shopper, f"/order-lines/{line_id}/review", 1),
            (shopper, "/chats", 1),
            (shopper, chat_at, 2),
            (shopper, "/me/notifications", 1),
            (shop, f"/console/{m}/reviews", 2),
            (shop, f"/console/{m}/questions?answered=1", 2),
            (shop, f"/console/{m}/inbox?view=all", 1),
            (shop, f"/console/{m}/inbox/{conversation_id}", 2),
            (moderator, "/admin/reports", 1),
        ]
        for client, path, at_least in pages:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert _shown_as_text(response.text, path) >= at_least, path
        # The reviews behind a complaint term mark the term inside the escaped text.
        behind = await shop.get(f"/console/{m}/feedback/reviews?term=script")
        _shown_as_text(behind.text, "feedback")
        assert "&lt;<mark>script</mark>&gt;alert(&#34;x&#34;)" in behind.text
