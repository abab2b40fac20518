"""Product questions and answers through the API: anyone signed in asks, the shop's staff and
buyers of the product answer (others get a 403 that says why), the asker is told once per
question, counts follow hiding and restoring, and the shop sees what is waiting."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.db import Database
from mobimart.moderation import service as moderation
from mobimart.notifications.models import Notification
from mobimart.social import questions
from mobimart.social.models import Question
from mobimart.web.deps import SESSION_COOKIE
from tests import factories
from tests.api.test_reviews import shop
from tests.factories import buy


async def _answer_count(db: Database, question_id: int) -> int:
    async with db.session() as s:
        question = await s.get(Question, question_id)
        assert question is not None
        return question.answer_count


async def test_buyers_and_the_shop_answer_and_the_asker_is_told(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await shop(db, make_user)
    other = await shop(db, make_user, n=2)
    asker, buyer, stranger, staff = [await make_user(name=n) for n in ("Ann", "Bo", "Cy", "Di")]
    await factories.add_staff(db, w.merchant, w.owner, staff)
    # Paid is enough to answer (the buyer has the order's details, if not yet the parcel).
    await buy(db, buyer, w.products[:1], owner=w.owner, merchant_id=w.merchant.id, until="paid")
    mug = w.products[0].id
    url = f"/api/v1/products/{mug}/questions"

    assert (await client.post(url, json={"body": "Dishwasher safe?"})).status_code == 401
    asked = await client.post(
        url, json={"body": "Dishwasher safe?"}, headers=await auth_headers(asker)
    )
    assert asked.status_code == 201, asked.text
    question = asked.json()
    assert (question["author"], question["answer_count"]) == ("A***n", 0)
    answers = f"/api/v1/questions/{question['id']}/answers"

    for outsider in (stranger, other.owner):
        refused = await client.post(
            answers, json={"body": "Probably."}, headers=await auth_headers(outsider)
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed_to_answer")
        assert "people who bought this product" in refused.json()["detail"]

    by_buyer = await client.post(
        answers, json={"body": "Mine survived a year."}, headers=await auth_headers(buyer)
    )
    assert by_buyer.status_code == 201, by_buyer.text
    assert by_buyer.json()["by_shop"] is False
    by_shop = await client.post(
        answers, json={"body": "Yes, up to 70 °C."}, headers=await auth_headers(staff)
    )
    assert by_shop.json()["by_shop"] is True
    assert await _answer_count(db, question["id"]) == 2
    listed = (await client.get(answers)).json()["items"]
    assert [a["body"] for a in listed] == ["Yes, up to 70 °C.", "Mine survived a year."]

    async with db.session() as s:
        notes = list(
            await s.scalars(
                select(Notification).where(
                    Notification.user_id == asker.id, Notification.kind == "answer"
                )
            )
        )
    # Two answers, one line in the inbox: the newest, pointing at the question.
    assert len(notes) == 1
    assert notes[0].title == "The shop answered your question"
    assert notes[0].link == f"/products/{mug}/questions#q-{question['id']}"
    assert notes[0].read_at is None

    # The asker may answer their own question once they bought it; no note to themselves.
    await buy(db, asker, w.products[:1], owner=w.owner, merchant_id=w.merchant.id, until="paid")
    own = await client.post(
        answers, json={"body": "Thanks all."}, headers=await auth_headers(asker)
    )
    assert own.status_code == 201
    async with db.session() as s:
        count = len(
            list(await s.scalars(select(Notification).where(Notification.kind == "answer")))
        )
    assert count == 1


async def test_hiding_and_the_shops_waiting_list(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await shop(db, make_user)
    asker = await make_user()
    owner = await auth_headers(w.owner)
    ids = []
    for text in ("Colour?", "Size?", "<script>alert(1)</script> lid?"):
        made = await client.post(
            f"/api/v1/products/{w.products[0].id}/questions",
            json={"body": text},
            headers=await auth_headers(asker),
        )
        ids.append(made.json()["id"])
    answered = await client.post(
        f"/api/v1/questions/{ids[0]}/answers", json={"body": "Blue."}, headers=owner
    )
    answer_id = answered.json()["id"]
    base = f"/api/v1/merchants/{w.merchant.id}/questions"
    waiting = (await client.get(f"{base}?unanswered=true", headers=owner)).json()["items"]
    assert [q["id"] for q in waiting] == [ids[2], ids[1]]
    done = (await client.get(f"{base}?unanswered=false", headers=owner)).json()["items"]
    assert [q["id"] for q in done] == [ids[0]]
    assert (await client.get(base, headers=await auth_headers(asker))).status_code == 404

    async with db.session() as s:
        assert await questions.hide_answer(s, answer_id=answer_id) is True
        assert await questions.hide_answer(s, answer_id=answer_id) is False
        await s.commit()
    assert await _answer_count(db, ids[0]) == 0
    assert (await client.get(f"/api/v1/questions/{ids[0]}/answers")).json()["items"] == []
    async with db.session() as s:
        assert await questions.restore_answer(s, answer_id=answer_id) is True
        assert await questions.restore_answer(s, answer_id=answer_id) is False
        assert await questions.hide_question(s, question_id=ids[1]) is True
        await s.commit()
    assert await _answer_count(db, ids[0]) == 1
    public = (await client.get(f"/api/v1/products/{w.products[0].id}/questions")).json()
    assert [q["id"] for q in public["items"]] == [ids[2], ids[0]]
    assert (await client.get(f"/api/v1/questions/{ids[1]}/answers")).status_code == 404

    page = await client.get(f"/products/{w.products[0].id}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; lid?" in page.text
    assert "<script>alert(1)" not in page.text
    assert "Blue." in page.text


async def test_blocked_words_are_refused_in_questions_and_answers(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await shop(db, make_user)
    admin, asker = await make_user(admin=True), await make_user()
    async with db.session() as s:
        await moderation.add_word(s, word="骗子", admin_id=admin.id)
        await s.commit()
    url = f"/api/v1/products/{w.products[0].id}/questions"
    refused = await client.post(
        url, json={"body": "是 骗 子 吗"}, headers=await auth_headers(asker)
    )
    assert (refused.status_code, refused.json()["code"]) == (422, "blocked_words")
    made = await client.post(url, json={"body": "包邮吗"}, headers=await auth_headers(asker))
    answers = f"/api/v1/questions/{made.json()['id']}/answers"
    refused = await client.post(
        answers, json={"body": "不是骗子"}, headers=await auth_headers(w.owner)
    )
    assert refused.status_code == 422
    assert await _answer_count(db, made.json()["id"]) == 0
    empty = await client.post(url, json={"body": "   "}, headers=await auth_headers(asker))
    assert (empty.status_code, empty.json()["code"]) == (422, "empty_text")


async def test_who_may_answer_is_one_rule(db: Database, make_user: Any) -> None:
    """Staff True, buyer False, anyone else and nobody signed in None, for the pages and for
    answering alike (finding 18c)."""
    w = await shop(db, make_user)
    buyer, stranger = await make_user(), await make_user()
    await buy(db, buyer, w.products[:1], owner=w.owner, merchant_id=w.merchant.id, until="paid")
    where = {"product_id": w.products[0].id, "merchant_id": w.merchant.id}
    async with db.session() as s:
        assert await questions.may_answer(s, user=w.owner, **where) is True
        assert await questions.may_answer(s, user=buyer, **where) is False
        assert await questions.may_answer(s, user=stranger, **where) is None
        assert await questions.may_answer(s, user=None, **where) is None


async def test_the_console_says_too_often_with_its_status(
    app: Any,
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A console answer refused for going too fast comes back as a 429, not a 422 (16)."""
    monkeypatch.setitem(moderation.LIMITS, "answer", (1, dt.timedelta(hours=1)))
    w = await shop(db, make_user)
    asker = await make_user()
    ids = []
    for text in ("Colour?", "Size?"):
        made = await client.post(
            f"/api/v1/products/{w.products[0].id}/questions",
            json={"body": text},
            headers=await auth_headers(asker),
        )
        ids.append(made.json()["id"])
    async with db.session() as s:
        token, _ = await accounts.issue_token(s, user=await s.merge(w.owner), kind="session")
    cookies = {SESSION_COOKIE: token, "mm_csrf": "x" * 43}
    console = f"/console/{w.merchant.id}/questions"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", cookies=cookies) as c:
        first = await c.post(
            f"{console}/{ids[0]}/answers", data={"csrf_token": "x" * 43, "body": "Blue."}
        )
        assert first.status_code == 303
        second = await c.post(
            f"{console}/{ids[1]}/answers", data={"csrf_token": "x" * 43, "body": "Large."}
        )
        assert second.status_code == 429
        assert "too often" in second.text
        assert "Large.</textarea>" in second.text
