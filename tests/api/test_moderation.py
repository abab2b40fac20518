"""Moderation through the API and the admin pages: the word list (admins only, normalised, no
duplicates, in force at once in every process), per-user limits, and reports from flag to
decision, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.requests import Request

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.checkout import service as checkout
from mobimart.checkout.models import Order, OrderLine
from mobimart.db import Database
from mobimart.errors import DomainError
from mobimart.moderation import service as moderation
from mobimart.moderation.models import BlockedWord, Report
from mobimart.notifications.models import Notification
from mobimart.social import reviews
from mobimart.social.models import Answer, Conversation, Message, Question, Review
from mobimart.web.deps import SESSION_COOKIE
from mobimart.web.templating import templates
from tests import factories

CSRF = "c" * 43


@pytest.fixture
async def w(db: Database, make_user: Any, auth_headers: Any) -> dict[str, Any]:
    """Merchant A's cup; B's question on it and the shop's answer; consumer A's chat with the
    shop. Content is written as rows: what is tested here is what happens to it after."""
    users = {
        role: await make_user(admin=role == "admin", name=role)
        for role in ("admin", "ca", "cb", "cc", "owner", "staff", "other_owner")
    }
    a = await factories.merchant(db, users["owner"], admin=users["admin"], n=1)
    await factories.add_staff(db, a, users["owner"], users["staff"])
    await factories.merchant(db, users["other_owner"], admin=users["admin"], n=2)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=a, name="Cup", price_minor=1000, stock=5, publish=True
        )
        question = Question(
            product_id=product.id,
            merchant_id=a.id,
            user_id=users["cb"].id,
            body="<script>alert(1)</script> cheaper elsewhere?",
        )
        s.add(question)
        await s.flush()
        answer = Answer(question_id=question.id, user_id=users["owner"].id, by_shop=True, body="No")
        chat = Conversation(user_id=users["ca"].id, shop_id=product.shop_id, merchant_id=a.id)
        s.add_all([answer, chat])
        await s.flush()
        message = Message(
            conversation_id=chat.id, sender_id=users["ca"].id, seq=1, side="consumer", kind="text"
        )
        message.body = "Is it in stock?"
        s.add(message)
        await s.commit()
        ids = {
            "product": product.id,
            "question": question.id,
            "answer": answer.id,
            "message": message.id,
        }
    headers = {role: await auth_headers(user) for role, user in users.items()}
    return {"users": users, "headers": headers, "ids": ids, "merchant": a}


def _report(subject: str, subject_id: int, reason: str = "Spam") -> dict[str, Any]:
    return {"json": {"subject": subject, "subject_id": subject_id, "reason": reason}}


# --- the word list -----------------------------------------------------------------------------


async def test_only_admins_manage_words_which_are_normalised_and_unique(
    client: httpx.AsyncClient, w: dict[str, Any]
) -> None:
    admin, consumer = w["headers"]["admin"], w["headers"]["ca"]
    url = "/api/v1/admin/blocked-words"
    assert (await client.post(url, json={"word": "scam"}, headers=consumer)).status_code == 403
    assert (await client.get(url, headers=consumer)).status_code == 403

    added = await client.post(url, json={"word": " ＦＲＥＥ Money "}, headers=admin)
    assert added.status_code == 201, added.text
    assert added.json()["word"] == "free money"
    for same in ("free money", "FREE MONEY", "ｆｒｅｅ ｍｏｎｅｙ"):
        again = await client.post(url, json={"word": same}, headers=admin)
        assert again.status_code == 409
        assert again.json()["code"] == "word_exists"
        assert "“free money” is on the list already" in again.json()["detail"]
    for junk in ("!!!", "   ", "x" * 61):
        refused = await client.post(url, json={"word": junk}, headers=admin)
        assert refused.status_code == 422, junk
    await client.post(url, json={"word": "加微信"}, headers=admin)
    # Blocked already: separators are ignored when matching, and a longer phrase is covered.
    spaced = await client.post(url, json={"word": "加 微 信"}, headers=admin)
    assert spaced.json()["detail"] == "“加 微 信” is on the list already."
    longer = await client.post(url, json={"word": "加微信号"}, headers=admin)
    assert longer.status_code == 409
    assert longer.json()["detail"] == "“加微信号” is blocked already, by “加微信”."

    listed = await client.get(url, params={"prefix": "ＦＲ"}, headers=admin)
    assert [x["word"] for x in listed.json()["items"]] == ["free money"]
    everything = (await client.get(url, params={"limit": 1}, headers=admin)).json()
    assert [x["word"] for x in everything["items"]] == ["加微信"]  # newest first
    rest = await client.get(url, params={"cursor": everything["next_cursor"]}, headers=admin)
    assert [x["word"] for x in rest.json()["items"]] == ["free money"]

    word_id = added.json()["id"]
    gone = f"{url}/{word_id}"
    assert (await client.delete(gone, headers=consumer)).status_code == 403
    assert (await client.delete(gone, headers=admin)).status_code == 204
    assert (await client.delete(gone, headers=admin)).status_code == 404


async def test_a_new_word_is_refused_at_once(
    client: httpx.AsyncClient, db: Database, w: dict[str, Any]
) -> None:
    text = "Cheap! 加 微 信 abc123 for a better price"
    async with db.session() as s:
        await moderation.screen(s, text)  # the filter is built and cached without the word
    added = await client.post(
        "/api/v1/admin/blocked-words", json={"word": "加微信"}, headers=w["headers"]["admin"]
    )
    async with db.session() as s:
        with pytest.raises(DomainError) as refused:
            await moderation.screen(s, text)
    assert refused.value.code == "blocked_words"
    assert "“加 微 信”" in refused.value.detail  # as typed, so the writer finds it
    await client.delete(
        f"/api/v1/admin/blocked-words/{added.json()['id']}", headers=w["headers"]["admin"]
    )
    async with db.session() as s:
        await moderation.screen(s, text)


def _in_another_process(database_url: str, *, add: str, remove: int = 0) -> None:
    """What an admin's requests served by a second API process do to the list."""
    code = (
        "import asyncio, sys\n"
        "import mobimart.models\n"
        "from mobimart.db import Database\n"
        "from mobimart.moderation import service\n"
        "async def main():\n"
        "    db = Database(sys.argv[1])\n"
        "    async with db.session() as s:\n"
        "        if int(sys.argv[3]):\n"
        "            await service.remove_word(s, word_id=int(sys.argv[3]))\n"
        "            await s.commit()\n"
        "        await service.add_word(s, word=sys.argv[2], admin_id=None)\n"
        "        await s.commit()\n"
        "    await db.dispose()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, database_url, add, str(remove)],
        check=True,
        env=dict(os.environ),
    )


async def test_a_word_added_by_another_process_is_refused_here(
    db: Database, database_url: str, w: dict[str, Any]
) -> None:
    async with db.session() as s:
        before = await moderation.word_filter(s)
        assert await moderation.word_filter(s) is before  # unchanged list: no rebuild
        await moderation.screen(s, "earn free money now")
    _in_another_process(database_url, add="FREE MONEY")
    async with db.session() as s:
        with pytest.raises(DomainError):
            await moderation.screen(s, "earn free money now")
        newest = await s.scalar(select(func.max(BlockedWord.id)))
    # Removing the newest word and adding another leaves the count and, unless ids are never
    # reused, the newest id as they were: the change must still be noticed.
    _in_another_process(database_url, add="刷单", remove=newest or 0)
    async with db.session() as s:
        await moderation.screen(s, "earn free money now")
        with pytest.raises(DomainError):
            await moderation.screen(s, "不刷单")


# --- reports -----------------------------------------------------------------------------------


async def test_report_queue_groups_reporters_and_remove_hides_the_question(
    client: httpx.AsyncClient, db: Database, w: dict[str, Any]
) -> None:
    h, question = w["headers"], w["ids"]["question"]
    first = await client.post("/api/v1/reports", headers=h["ca"], **_report("question", question))
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "open"
    twice = await client.post("/api/v1/reports", headers=h["ca"], **_report("question", question))
    assert twice.status_code == 409
    assert twice.json()["code"] == "already_reported"
    assert (
        await client.post(
            "/api/v1/reports", headers=h["cc"], **_report("question", question, "Rude")
        )
    ).status_code == 201
    own = await client.post("/api/v1/reports", headers=h["cb"], **_report("question", question))
    assert own.status_code == 422
    assert (await client.get("/api/v1/admin/reports", headers=h["ca"])).status_code == 403

    queue = (await client.get("/api/v1/admin/reports", headers=h["admin"])).json()["items"]
    assert len(queue) == 1
    (case,) = queue
    assert (case["subject"], case["subject_id"], case["reports"]) == ("question", question, 2)
    assert case["reasons"] == ["Spam", "Rude"]
    assert case["content"]["preview"].startswith("<script>")  # JSON: the page escapes it
    assert case["content"]["author_id"] == w["users"]["cb"].id
    assert case["content"]["product_id"] == w["ids"]["product"]

    resolve = f"/api/v1/admin/reports/{case['report_id']}/resolve"
    assert (
        await client.post(resolve, json={"action": "remove"}, headers=h["ca"])
    ).status_code == 403
    done = await client.post(resolve, json={"action": "remove"}, headers=h["admin"])
    assert done.status_code == 200, done.text
    assert done.json() == {
        "subject": "question",
        "subject_id": question,
        "status": "removed",
        "reports": 2,
    }
    again = await client.post(resolve, json={"action": "dismiss"}, headers=h["admin"])
    assert again.status_code == 409
    async with db.session() as s:
        assert (await s.get(Question, question)).hidden_at is not None  # type: ignore[union-attr]
        statuses = set(await s.scalars(select(Report.status).where(Report.subject_id == question)))
        told = await s.execute(
            select(Notification.user_id, Notification.title).where(Notification.kind == "system")
        )
    assert statuses == {"removed"}
    removed_title = "A question you reported was removed. Thank you."
    assert sorted(told) == sorted(
        [(w["users"]["ca"].id, removed_title), (w["users"]["cc"].id, removed_title)]
    )
    assert (await client.get("/api/v1/admin/reports", headers=h["admin"])).json()["items"] == []
    removed = await client.get(
        "/api/v1/admin/reports", params={"status": "removed"}, headers=h["admin"]
    )
    assert [c["subject_id"] for c in removed.json()["items"]] == [question]
    # Hidden now: nobody can report it any more, not even someone who has not yet.
    late = await client.post("/api/v1/reports", headers=h["staff"], **_report("question", question))
    assert late.status_code == 404


async def test_dismiss_keeps_the_content_and_a_new_report_opens_a_new_case(
    client: httpx.AsyncClient, db: Database, w: dict[str, Any]
) -> None:
    h, answer = w["headers"], w["ids"]["answer"]
    made = await client.post("/api/v1/reports", headers=h["ca"], **_report("answer", answer))
    done = await client.post(
        f"/api/v1/admin/reports/{made.json()['id']}/resolve",
        json={"action": "dismiss"},
        headers=h["admin"],
    )
    assert done.json()["status"] == "dismissed"
    async with db.session() as s:
        assert (await s.get(Answer, answer)).hidden_at is None  # type: ignore[union-attr]
    assert (await client.get("/api/v1/admin/reports", headers=h["admin"])).json()["items"] == []
    # The dismissed reporter cannot insist; someone else can, and that is a fresh case.
    insist = await client.post("/api/v1/reports", headers=h["ca"], **_report("answer", answer))
    assert insist.status_code == 409
    other = await client.post("/api/v1/reports", headers=h["cb"], **_report("answer", answer))
    assert other.status_code == 201
    (case,) = (await client.get("/api/v1/admin/reports", headers=h["admin"])).json()["items"]
    assert (case["subject_id"], case["reports"], case["reasons"]) == (answer, 1, ["Spam"])


async def test_of_two_admins_deciding_at_once_one_wins(
    client: httpx.AsyncClient, db: Database, w: dict[str, Any]
) -> None:
    h = w["headers"]
    made = await client.post(
        "/api/v1/reports", headers=h["ca"], **_report("question", w["ids"]["question"])
    )
    url = f"/api/v1/admin/reports/{made.json()['id']}/resolve"
    answers = await asyncio.gather(
        client.post(url, json={"action": "remove"}, headers=h["admin"]),
        client.post(url, json={"action": "dismiss"}, headers=h["admin"]),
    )
    assert sorted(a.status_code for a in answers) == [200, 409]
    (winner,) = [a.json() for a in answers if a.status_code == 200]
    async with db.session() as s:
        question = await s.get(Question, w["ids"]["question"])
        status = await s.scalar(select(Report.status).where(Report.id == made.json()["id"]))
        told = await s.scalar(select(func.count()).select_from(Notification))
    assert status == winner["status"]
    assert (question is not None and question.hidden_at is not None) == (status == "removed")
    assert told == 1


async def test_only_the_conversations_people_can_report_a_chat_message(
    client: httpx.AsyncClient, db: Database, w: dict[str, Any]
) -> None:
    h, message = w["headers"], w["ids"]["message"]
    for outsider in ("cb", "other_owner", "admin"):
        refused = await client.post(
            "/api/v1/reports", headers=h[outsider], **_report("message", message)
        )
        assert refused.status_code == 404, outsider
    missing = await client.post("/api/v1/reports", headers=h["cb"], **_report("message", 2**31 - 1))
    assert missing.status_code == 404  # the same answer as for someone else's message
    own = await client.post("/api/v1/reports", headers=h["ca"], **_report("message", message))
    assert own.json()["code"] == "own_content"
    made = await client.post("/api/v1/reports", headers=h["staff"], **_report("message", message))
    assert made.status_code == 201, made.text
    (case,) = (await client.get("/api/v1/admin/reports", headers=h["admin"])).json()["items"]
    assert case["content"]["preview"] == "Is it in stock?"
    await client.post(
        f"/api/v1/admin/reports/{case['report_id']}/resolve",
        json={"action": "remove"},
        headers=h["admin"],
    )
    async with db.session() as s:
        assert (await s.get(Message, message)).hidden_at is not None  # type: ignore[union-attr]


async def _delivered_review(db: Database, w: dict[str, Any]) -> int:
    """Consumer B's five-star review of the cup (the order set to delivered directly)."""
    buyer = w["users"]["cb"]
    async with db.session() as s:
        buyer = await s.merge(buyer)
        variant = (await catalog.variants_of(s, product_id=w["ids"]["product"]))[0]
        address = await checkout.add_address(
            s, user=buyer, spec=checkout.AddressSpec("Li", "+8613912345678", "Shanghai", "1 Rd")
        )
        cart = await checkout.cart_of(s, user_id=buyer.id)
        await checkout.put(s, cart=cart, variant_id=variant.id, quantity=1)
        (order,) = await checkout.place(s, user=buyer, address_id=address.id)
        await s.execute(update(Order).where(Order.id == order.id).values(status="delivered"))
        await s.commit()
        line_id = await s.scalar(select(OrderLine.id).where(OrderLine.order_id == order.id))
        assert line_id is not None
        review = await reviews.create(s, user=buyer, line_id=line_id, stars=5, body="Great cup")
        return review.id


async def test_removing_a_review_takes_it_out_of_the_rating(
    client: httpx.AsyncClient, db: Database, w: dict[str, Any]
) -> None:
    review_id = await _delivered_review(db, w)
    h = w["headers"]
    made = await client.post("/api/v1/reports", headers=h["ca"], **_report("review", review_id))
    assert made.status_code == 201, made.text
    async with db.session() as s:
        before = await reviews.rating(s, subject="product", subject_id=w["ids"]["product"])
    assert sum(before.counts) == 1
    await client.post(
        f"/api/v1/admin/reports/{made.json()['id']}/resolve",
        json={"action": "remove"},
        headers=h["admin"],
    )
    async with db.session() as s:
        after = await reviews.rating(s, subject="product", subject_id=w["ids"]["product"])
        assert (await s.get(Review, review_id)).hidden_at is not None  # type: ignore[union-attr]
    assert sum(after.counts) == 0


async def test_reports_are_limited_per_person(
    client: httpx.AsyncClient, db: Database, w: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(moderation.LIMITS, "report", (2, dt.timedelta(hours=1)))
    h = w["headers"]
    subjects = [("question", w["ids"]["question"]), ("answer", w["ids"]["answer"])]
    for subject, subject_id in subjects:
        made = await client.post("/api/v1/reports", headers=h["cc"], **_report(subject, subject_id))
        assert made.status_code == 201
    async with db.session() as s:
        third = Question(
            product_id=w["ids"]["product"],
            merchant_id=w["merchant"].id,
            user_id=w["users"]["cb"].id,
            body="Another",
        )
        s.add(third)
        await s.commit()
    refused = await client.post("/api/v1/reports", headers=h["cc"], **_report("question", third.id))
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3601
    other = await client.post("/api/v1/reports", headers=h["ca"], **_report("question", third.id))
    assert other.status_code == 201  # the limit is per person


# --- pages -------------------------------------------------------------------------------------


async def _page_client(app: Any, db: Database, user: User) -> httpx.AsyncClient:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        cookies={SESSION_COOKIE: token, "mm_csrf": CSRF},
    )


async def test_admin_pages_manage_words_and_settle_reports(
    app: Any, db: Database, w: dict[str, Any]
) -> None:
    async with await _page_client(app, db, w["users"]["admin"]) as c:
        added = await c.post("/admin/words", data={"word": "刷单", "csrf_token": CSRF})
        assert added.status_code == 303
        page = await c.get(added.headers["location"])
        assert "刷单" in page.text
        assert "New text with it is refused" in page.text
        dup = await c.post("/admin/words", data={"word": "刷 单", "csrf_token": CSRF})
        assert dup.status_code == 409
        assert "on the list already" in dup.text
        assert "刷单" not in (await c.get("/admin/words", params={"prefix": "free"})).text
        forged = await c.post("/admin/words", data={"word": "x", "csrf_token": "wrong" * 9})
        assert forged.status_code == 403

    async with await _page_client(app, db, w["users"]["ca"]) as c:
        assert (await c.get("/admin/words")).status_code == 403
        back = f"/products/{w['ids']['product']}?reported=answer-1&tab=qa"
        sent = await c.post(
            "/report",
            data={
                "subject": "question",
                "subject_id": str(w["ids"]["question"]),
                "reason": "scam",
                "next": back,
                "csrf_token": CSRF,
            },
        )
        assert sent.status_code == 303
        q = w["ids"]["question"]
        assert sent.headers["location"] == (
            f"/products/{w['ids']['product']}?tab=qa&reported=question-{q}"
            f"&notice=reported#report-question-{q}"
        )
        elsewhere = await c.post(
            "/report",
            data={
                "subject": "question",
                "subject_id": str(q),
                "reason": "spam",
                "next": "https://evil.example/",
                "csrf_token": CSRF,
            },
        )
        assert elsewhere.headers["location"].startswith(f"/?reported=question-{q}")
        assert "notice=already_reported" in elsewhere.headers["location"]

    async with await _page_client(app, db, w["users"]["admin"]) as c:
        queue = await c.get("/admin/reports")
        assert "Scam or fraud" in queue.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in queue.text
        assert "<script>alert" not in queue.text
        async with db.session() as s:
            report_id = await s.scalar(select(Report.id).where(Report.subject_id == q))
        kept = await c.post(
            f"/admin/reports/{report_id}/resolve", data={"action": "dismiss", "csrf_token": CSRF}
        )
        assert kept.headers["location"] == "/admin/reports?notice=dismissed"
        again = await c.post(
            f"/admin/reports/{report_id}/resolve", data={"action": "remove", "csrf_token": CSRF}
        )
        assert again.status_code == 409
        assert "dealt with already" in again.text
    async with db.session() as s:
        assert (await s.get(Question, q)).hidden_at is None  # type: ignore[union-attr]


async def test_the_report_form_comes_back_with_every_outcome(
    app: Any, db: Database, w: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Own content, too many reports and content no longer shown come back to the page with
    the outcome, as a second report does, not an error page (finding 16)."""
    monkeypatch.setitem(moderation.LIMITS, "report", (1, dt.timedelta(hours=1)))
    product, q, a = w["ids"]["product"], w["ids"]["question"], w["ids"]["answer"]

    async def send(c: httpx.AsyncClient, subject: str, subject_id: int) -> str:
        sent = await c.post(
            "/report",
            data={
                "subject": subject,
                "subject_id": str(subject_id),
                "reason": "spam",
                "next": f"/products/{product}/questions",
                "csrf_token": CSRF,
            },
        )
        assert sent.status_code == 303, sent.text
        location = sent.headers["location"]
        assert location.startswith(f"/products/{product}/questions?reported={subject}-")
        return location

    async with await _page_client(app, db, w["users"]["cb"]) as c:  # cb asked the question
        back = await send(c, "question", q)
        assert "notice=own_content" in back
        page = await c.get(back)
        assert "You cannot report what you wrote yourself." in page.text
        # cb's own question has no Report form; the shop's answer has one.
        assert f'id="reason-question-{q}"' not in page.text
        assert f'id="reason-answer-{a}"' in page.text
        assert "notice=reported" in await send(c, "answer", a)
        async with db.session() as s:
            other = Question(
                product_id=product, merchant_id=w["merchant"].id, user_id=w["users"]["ca"].id,
                body="Another",
            )  # fmt: skip
            s.add(other)
            await s.commit()
        back = await send(c, "question", other.id)
        assert "notice=rate_limited" in back
        assert "many reports in a short time" in (await c.get(back)).text
        back = await send(c, "question", 10**9)
        assert "notice=not_found" in back
    async with await _page_client(app, db, w["users"]["owner"]) as c:  # the shop answered
        page = await c.get(f"/products/{product}/questions")
        assert f'id="reason-question-{q}"' in page.text
        assert f'id="reason-answer-{a}"' not in page.text
    async with db.session() as s:
        reported = await s.scalars(select(Report.subject_id).where(Report.subject == "question"))
        assert list(reported) == []


def _button(query: str, user: object) -> str:
    request = Request(
        {"type": "http", "method": "GET", "path": "/products/7", "query_string": query.encode(),
         "headers": []}
    )  # fmt: skip
    template = templates.env.from_string(
        '{% from "moderation/report_button.html" import report_button with context %}'
        "{{ report_button('review', 5) }}"
    )
    return template.render(request=request, csrf_token=CSRF, user=user)


def test_the_report_button_says_how_its_report_went() -> None:
    form = _button("", user=object())
    assert 'action="/report"' in form
    assert 'name="subject_id" value="5"' in form
    assert 'name="next" value="/products/7"' in form
    assert "Reported. Thank you" in _button("reported=review-5&notice=reported", user=object())
    assert "already" in _button("reported=review-5&notice=already_reported", user=object())
    # Another item's outcome leaves this one's form alone; signed out, there is no form.
    assert 'action="/report"' in _button("reported=review-6&notice=reported", user=object())
    assert 'action="/report"' not in _button("", user=None)


def test_the_report_button_offers_the_reasons_the_handler_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One list of reasons: a reason added to moderation.reasons.REASONS is offered (18d)."""
    from mobimart.moderation import pages  # noqa: F401  (it gives the templates the list)
    from mobimart.moderation.reasons import REASONS

    monkeypatch.setitem(REASONS, "fake", "Counterfeit goods")
    form = _button("", user=object())
    for code, label in REASONS.items():
        assert f'<option value="{code}">{label}</option>' in form.replace("&#39;", "'")
