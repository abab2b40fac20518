"""Merchant feedback over HTTP on reviews, questions and chat messages written straight into
the tables: the numbers, the scoping to one merchant (and one product), the pages."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.catalog.models import Variant
from mobimart.checkout.models import Order, OrderLine
from mobimart.db import Database
from mobimart.merchants.models import Merchant
from mobimart.social.models import Answer, Conversation, Message, Question, Review
from mobimart.web.deps import SESSION_COOKIE
from tests import factories

_numbers = itertools.count(1)


@dataclass
class Shop:
    merchant: Merchant
    owner: User
    shop_id: int
    products: list[int]
    variants: list[int]


async def _shop(db: Database, owner: User, admin: User, n: int, names: list[str]) -> Shop:
    merchant = await factories.merchant(db, owner, admin=admin, n=n)
    async with db.session() as s:
        products = [
            await catalog.create_product(s, merchant=merchant, name=name, price_minor=1000)
            for name in names
        ]
        variants = [
            v.id
            for v in await s.scalars(
                select(Variant).where(Variant.product_id.in_([p.id for p in products]))
            )
        ]
        return Shop(merchant, owner, products[0].shop_id, [p.id for p in products], variants)


async def _review(
    db: Database,
    shop: Shop,
    buyer: User,
    stars: int,
    body: str,
    *,
    ago: dt.timedelta = dt.timedelta(hours=1),
    product: int = 0,
    hidden: bool = False,
) -> int:
    """A review on its own delivered order line, as the reviews service would leave it."""
    now = dt.datetime.now(dt.UTC)
    async with db.session() as s:
        order = Order(
            number=f"FB{next(_numbers):010d}",
            checkout_ref="fb",
            user_id=buyer.id,
            merchant_id=shop.merchant.id,
            shop_id=shop.shop_id,
            status="delivered",
            currency="CNY",
            subtotal_minor=1000,
            discount_minor=0,
            shipping_minor=0,
            shipping_discount_minor=0,
            total_minor=1000,
            expires_at=now,
        )
        s.add(order)
        await s.flush()
        line = OrderLine(
            order_id=order.id,
            product_id=shop.products[product],
            variant_id=shop.variants[product],
            name="x",
            sku="x",
            list_price_minor=1000,
            unit_price_minor=1000,
            quantity=1,
            discount_minor=0,
            total_minor=1000,
        )
        s.add(line)
        await s.flush()
        review = Review(
            order_line_id=line.id,
            user_id=buyer.id,
            product_id=shop.products[product],
            shop_id=shop.shop_id,
            merchant_id=shop.merchant.id,
            stars=stars,
            body=body,
            created_at=now - ago,
            hidden_at=now if hidden else None,
        )
        s.add(review)
        await s.commit()
        return review.id


async def _question(
    db: Database,
    shop: Shop,
    asker: User,
    body: str,
    ago: dt.timedelta,
    *,
    product: int = 0,
    answers: tuple[bool, ...] = (),  # True: a visible answer, False: a hidden one
    hidden: bool = False,
) -> int:
    now = dt.datetime.now(dt.UTC)
    async with db.session() as s:
        question = Question(
            product_id=shop.products[product],
            merchant_id=shop.merchant.id,
            user_id=asker.id,
            body=body,
            answer_count=sum(answers),
            created_at=now - ago,
            hidden_at=now if hidden else None,
        )
        s.add(question)
        await s.flush()
        for visible in answers:
            s.add(
                Answer(
                    question_id=question.id,
                    user_id=shop.owner.id,
                    by_shop=True,
                    body="ok",
                    hidden_at=None if visible else now,
                )
            )
        await s.commit()
        return question.id


async def _chat(
    db: Database,
    shop: Shop,
    consumer: User,
    messages: list[tuple[str, str, float]],  # (side, kind, minutes ago)
    *,
    product: int = 0,
    hidden: bool = False,  # the consumer's messages removed by moderation
) -> int:
    now = dt.datetime.now(dt.UTC)
    async with db.session() as s:
        times = [now - dt.timedelta(minutes=m) for _, _, m in messages]
        conversation = Conversation(
            user_id=consumer.id,
            shop_id=shop.shop_id,
            merchant_id=shop.merchant.id,
            last_seq=len(messages),
            last_message_at=max(times),
        )
        s.add(conversation)
        await s.flush()
        for seq, ((side, kind, _), when) in enumerate(zip(messages, times, strict=True), 1):
            s.add(
                Message(
                    conversation_id=conversation.id,
                    sender_id=consumer.id if side == "consumer" else shop.owner.id,
                    seq=seq,
                    side=side,
                    kind=kind,
                    body="" if kind == "product" else "hello",
                    ref_id=shop.products[product] if kind == "product" else None,
                    created_at=when,
                    hidden_at=now if hidden and side == "consumer" else None,
                )
            )
        await s.commit()
        return conversation.id


async def _cookie(db: Database, user: User) -> str:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return token


@dataclass
class World:
    a: Shop
    b: Shop
    staff_a: User
    buyers: list[User]
    ids: dict[str, Any]


async def _world(db: Database, make_user: Any) -> World:
    admin = await make_user(admin=True)
    a = await _shop(db, await make_user(), admin, 1, ["T-shirt", "Mug"])
    b = await _shop(db, await make_user(), admin, 2, ["Kettle"])
    staff_a = await make_user()
    await factories.add_staff(db, a.merchant, a.owner, staff_a)
    buyers = [await make_user() for _ in range(4)]
    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    ids: dict[str, Any] = {
        "size": [
            await _review(db, a, buyers[0], 2, "尺码偏小，质量一般", ago=hour),
            await _review(db, a, buyers[1], 3, "尺码偏大，尺码表不准", ago=3 * day),
            await _review(db, a, buyers[2], 1, "Size runs small, 尺码 wrong", ago=9 * day),
        ],
        "good": await _review(db, a, buyers[3], 5, "尺码正好，质量很好", ago=2 * hour),
        "hidden": await _review(db, a, buyers[0], 1, "尺码 垃圾", ago=hour, hidden=True),
        "old": await _review(db, a, buyers[1], 1, "尺码 太小", ago=100 * day),
        "mug": await _review(db, a, buyers[2], 2, "Mug leaks <script>alert(1)</script>", product=1),
        "b_low": await _review(db, b, buyers[3], 1, "水壶漏水，漏水严重", ago=hour),
        "q_old": await _question(db, a, buyers[0], "Does it shrink?", 5 * day),
        "q_answered": await _question(db, a, buyers[1], "Cotton?", 4 * day, answers=(True,)),
        "q_hidden_answer": await _question(db, a, buyers[2], "Colour?", 3 * day, answers=(False,)),
        "q_new": await _question(db, a, buyers[3], "Mug size?", hour, product=1),
        "q_hidden": await _question(db, a, buyers[3], "spam", 6 * day, hidden=True),
        "q_b": await _question(db, b, buyers[0], "Kettle volume?", 9 * day),
    }
    ids["chat_slow"] = await _chat(
        db, a, buyers[0], [("consumer", "product", 61), ("consumer", "text", 60),
                           ("consumer", "text", 58), ("shop", "text", 40), ("consumer", "text", 5),
                           ("shop", "text", 4)]
    )  # fmt: skip
    ids["chat_waiting"] = await _chat(db, a, buyers[1], [("consumer", "text", 30)])
    ids["chat_card_only"] = await _chat(db, a, buyers[2], [("consumer", "product", 90)])
    ids["chat_spam"] = await _chat(db, a, buyers[3], [("consumer", "text", 50)], hidden=True)
    ids["chat_b"] = await _chat(db, b, buyers[0], [("consumer", "text", 300)])
    return World(a, b, staff_a, buyers, ids)


async def test_shop_feedback_counts_trends_complaints_questions_and_chats(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _world(db, make_user)
    url = f"/api/v1/merchants/{w.a.merchant.id}/feedback"
    response = await client.get(url, headers=await auth_headers(w.staff_a))
    assert response.status_code == 200, response.text
    body = response.json()

    # Visible reviews of the last 12 weeks: the hidden one and the 100-day-old one are out.
    assert body["weeks"] == 12
    assert len(body["trend"]) == 12
    assert body["review_count"] == 5
    assert body["low_review_count"] == 4
    assert sum(week["count"] for week in body["trend"]) == 5
    assert re.fullmatch(r"\d{4}-W\d\d", body["trend"][-1]["week"])
    assert all(w_["average"] is None for w_ in body["trend"] if w_["count"] == 0)

    terms = {t["term"]: t for t in body["terms"]}
    size_ids = w.ids["size"]
    assert terms["尺码"]["count"] == 3  # three low reviews, however often each says it
    assert sorted(terms["尺码"]["review_ids"]) == sorted(size_ids)
    assert body["terms"][0]["term"] == "尺码"
    assert {"偏小", "质量"} <= terms.keys()
    assert "漏水" not in terms  # merchant B's complaint
    assert "正好" not in terms  # a five-star review is not a complaint

    assert body["unanswered_count"] == 3
    assert [q["id"] for q in body["unanswered"]] == [
        w.ids["q_old"],
        w.ids["q_hidden_answer"],  # its only answer was removed
        w.ids["q_new"],
    ]
    assert body["overdue_count"] == 2
    assert body["unanswered"][0]["age_seconds"] >= 5 * 86400 - 60
    assert body["unanswered"][2]["product_name"] == "Mug"

    assert body["slow_chat_threshold_seconds"] == 600
    slow = body["slow_chats"]
    assert [(c["conversation_id"], c["replied_at"] is None) for c in slow] == [
        (w.ids["chat_waiting"], True),
        (w.ids["chat_slow"], False),
    ]
    assert 30 * 60 - 5 <= slow[0]["wait_seconds"] <= 30 * 60 + 60
    assert slow[1]["wait_seconds"] == 20 * 60  # from the first unanswered text, not the card
    assert body["median_first_response_seconds"] == (20 * 60 + 60) / 2

    fixes = [(f["kind"], f["count"], f["term"]) for f in body["fixes"]]
    assert fixes[0] == ("term", 3, "尺码")
    assert ("questions", 2, "") in fixes
    assert ("chats", 2, "") in fixes
    by_kind = {f["kind"]: f for f in body["fixes"]}
    assert sorted(by_kind["questions"]["ids"]) == sorted([w.ids["q_old"], w.ids["q_hidden_answer"]])
    assert sorted(by_kind["chats"]["ids"]) == sorted([w.ids["chat_slow"], w.ids["chat_waiting"]])
    assert body["fixes"][0]["message"] == "3 low reviews mention “尺码”"
    assert body["fixes"][0]["link"].startswith(f"/console/{w.a.merchant.id}/feedback/reviews?term=")


async def test_product_feedback_keeps_to_the_product(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _world(db, make_user)
    headers = await auth_headers(w.a.owner)
    url = f"/api/v1/merchants/{w.a.merchant.id}/feedback"
    shirt = (await client.get(url, params={"product_id": w.a.products[0]}, headers=headers)).json()
    assert shirt["product_id"] == w.a.products[0]
    assert shirt["review_count"] == 4  # the mug's review is not the shirt's
    assert [q["id"] for q in shirt["unanswered"]] == [w.ids["q_old"], w.ids["q_hidden_answer"]]
    # The shirt's chats are the ones where its card was shared.
    assert [c["conversation_id"] for c in shirt["slow_chats"]] == [w.ids["chat_slow"]]

    mug = (await client.get(url, params={"product_id": w.a.products[1]}, headers=headers)).json()
    assert mug["terms"]
    assert all(t["review_ids"] == [w.ids["mug"]] for t in mug["terms"])
    assert mug["fixes"] == []  # one review is an anecdote; the new question is not overdue
    assert mug["slow_chats"] == []
    assert mug["median_first_response_seconds"] is None

    other = await client.get(url, params={"product_id": w.b.products[0]}, headers=headers)
    assert other.status_code == 404  # merchant B's product


async def test_chat_waits_read_turns_not_messages_up_to_a_cap(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forty messages in a row are one turn: four turns carry both waits; past the cap the
    oldest turns are left out, not the request's memory (finding 17)."""
    from mobimart.social import feedback

    admin = await make_user(admin=True)
    a = await _shop(db, await make_user(), admin, 1, ["T-shirt"])
    buyer = await make_user()
    many = [("consumer", "text", 100 - m / 2) for m in range(40)]  # 100 to 80.5 min ago
    cid = await _chat(db, a, buyer, [*many, ("shop", "text", 60), ("shop", "text", 59),
                                     ("consumer", "text", 30), ("shop", "text", 29)])  # fmt: skip
    url = f"/api/v1/merchants/{a.merchant.id}/feedback"
    headers = await auth_headers(a.owner)

    monkeypatch.setattr(feedback, "MAX_TURNS", 4)
    body = (await client.get(url, headers=headers)).json()
    assert [(c["conversation_id"], c["wait_seconds"]) for c in body["slow_chats"]] == [
        (cid, 40 * 60)
    ]
    assert body["median_first_response_seconds"] == (40 * 60 + 60) / 2

    monkeypatch.setattr(feedback, "MAX_TURNS", 2)  # only the newest wait is read
    body = (await client.get(url, headers=headers)).json()
    assert body["slow_chats"] == []
    assert body["median_first_response_seconds"] == 60


async def test_a_window_of_weeks(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _world(db, make_user)
    headers = await auth_headers(w.a.owner)
    url = f"/api/v1/merchants/{w.a.merchant.id}/feedback"
    one = (await client.get(url, params={"weeks": 1}, headers=headers)).json()
    assert len(one["trend"]) == 1
    assert one["review_count"] == one["trend"][0]["count"] <= 4
    year = (await client.get(url, params={"weeks": 52}, headers=headers)).json()
    assert year["review_count"] == 6  # the 100-day-old review too
    links = {f["kind"]: f["link"] for f in year["fixes"]}
    assert links["questions"] == f"/console/{w.a.merchant.id}/feedback?weeks=52#unanswered"
    assert links["term"].endswith("&weeks=52")  # the reviews behind it, in the same window
    for weeks in (0, 53):
        bad = await client.get(url, params={"weeks": weeks}, headers=headers)
        assert bad.status_code == 422


async def test_merchants_see_only_their_own_feedback(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _world(db, make_user)
    b_headers = await auth_headers(w.b.owner)
    denied = await client.get(f"/api/v1/merchants/{w.a.merchant.id}/feedback", headers=b_headers)
    assert denied.status_code == 404
    consumer = await client.get(
        f"/api/v1/merchants/{w.a.merchant.id}/feedback", headers=await auth_headers(w.buyers[0])
    )
    assert consumer.status_code == 404
    own = (
        await client.get(f"/api/v1/merchants/{w.b.merchant.id}/feedback", headers=b_headers)
    ).json()
    assert own["review_count"] == 1
    assert {t["term"] for t in own["terms"]} == {"水壶", "漏水", "严重"}
    assert [q["id"] for q in own["unanswered"]] == [w.ids["q_b"]]
    assert [c["conversation_id"] for c in own["slow_chats"]] == [w.ids["chat_b"]]
    assert w.ids["chat_b"] not in {
        f for fix in own["fixes"] if fix["kind"] != "chats" for f in fix["ids"]
    }


def _chart_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="trend-data">(.*?)</script>', html)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


async def test_feedback_pages_show_the_numbers_and_link_to_the_reviews(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    w = await _world(db, make_user)
    client.cookies.set(SESSION_COOKIE, await _cookie(db, w.staff_a))
    m = w.a.merchant.id
    home = await client.get(f"/console/{m}")
    assert f'href="/console/{m}/feedback"' in home.text

    page = await client.get(f"/console/{m}/feedback")
    assert page.status_code == 200
    html = page.text
    data = _chart_data(html)
    assert len(data["labels"]) == 12
    assert sum(data["counts"]) == 5
    assert '<table class="numbers">' in html  # the same numbers without script
    assert "/static/vendor/chart.umd.min.js" in html
    assert "/static/feedback.js" in html
    assert "style=" not in html  # the CSP allows no inline styles
    assert "3 low reviews mention “尺码”" in html
    assert f'href="/console/{m}/feedback#unanswered"' in html
    assert "Does it shrink?" in html
    assert f'href="/console/{m}/questions#q-{w.ids["q_old"]}"' in html  # where staff answer
    assert f'href="/console/{m}/inbox/{w.ids["chat_waiting"]}"' in html

    link = re.search(r'href="(/console/\d+/feedback/reviews\?term=[^"]+)"', html)
    assert link is not None
    reviews = await client.get(link.group(1).replace("&amp;", "&"))
    assert reviews.status_code == 200
    found = {int(x) for x in re.findall(r'data-review="(\d+)"', reviews.text)}
    assert found == set(w.ids["size"])
    assert "<mark>尺码</mark>" in reviews.text


async def test_review_text_is_shown_escaped(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    w = await _world(db, make_user)
    client.cookies.set(SESSION_COOKIE, await _cookie(db, w.a.owner))
    m, mug = w.a.merchant.id, w.a.products[1]
    page = await client.get(f"/console/{m}/feedback/products/{mug}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    reviews = await client.get(
        f"/console/{m}/feedback/reviews", params={"term": "script", "product_id": mug}
    )
    assert reviews.status_code == 200
    assert "<script>alert(1)" not in reviews.text
    assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;" in reviews.text
    other = await client.get(f"/console/{m}/feedback/products/{w.b.products[0]}")
    assert other.status_code == 404
