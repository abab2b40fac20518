"""Feedback for a merchant, for the whole shop or one product: how ratings move week by week,
what low reviews complain about, questions nobody has answered and chats where consumers
waited, made into a short list of what to fix. Read-only; reads the review, Q&A and chat
tables directly and scopes every query to the merchant."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog import service as catalog
from mobimart.catalog.models import Product, Shop
from mobimart.db import utcnow
from mobimart.social import feedback_domain as fd
from mobimart.social.models import Answer, Conversation, Message, Question, Review
from mobimart.web.i18n import ngettext_ as ngettext

DEFAULT_WEEKS = 12
MAX_WEEKS = 52
# Shoppers on a phone give up on a chat within minutes; ten is a generous first answer.
CHAT_THRESHOLD = dt.timedelta(minutes=10)
# A question left two days has usually lost its buyer; the list shows all, the fix the old.
QUESTION_DUE = dt.timedelta(days=2)
SHOWN = 20  # rows per list on the page and in the API: the worst first
# Unanswered questions read at most: a backlog that size says what it has to say.
MAX_QUESTIONS = 1000
# Chat turns read at most (a turn: a message where the speaker changes; two make a wait).
# 20,000 turns are 10,000 waits: past that, the oldest waits change no number on the page
# much, and one request must not read a busy shop's year of chats.
MAX_TURNS = 20_000
# Messages a consumer waits on an answer to; a product or order card is context, not a question.
_ASKING_KINDS = ("text", "image")


@dataclass(frozen=True)
class OpenQuestion:
    id: int
    product_id: int
    product_name: str
    body: str
    created_at: dt.datetime
    age: dt.timedelta


@dataclass(frozen=True)
class SlowChat:
    conversation_id: int
    since: dt.datetime
    until: dt.datetime | None  # None: still waiting
    seconds: float


@dataclass(frozen=True)
class FixItem:
    kind: str
    count: int
    ids: tuple[int, ...]
    term: str
    message: str
    link: str


@dataclass(frozen=True)
class Feedback:
    merchant_id: int
    product: Product | None
    weeks: int
    since: dt.datetime
    trend: list[fd.WeekPoint]
    review_count: int
    low_review_count: int
    terms: list[fd.TermCount]
    questions: list[OpenQuestion]  # the oldest SHOWN
    unanswered_count: int
    overdue_count: int
    slow_chats: list[SlowChat]  # the longest SHOWN waits
    slow_count: int  # waits over the threshold
    answered_waits: int
    median_first_response_seconds: float | None
    threshold: dt.timedelta
    fixes: list[FixItem]


def page_path(merchant_id: int, product_id: int | None) -> str:
    base = f"/console/{merchant_id}/feedback"
    return f"{base}/products/{product_id}" if product_id else base


def reviews_path(merchant_id: int, term: str, product_id: int | None, weeks: int) -> str:
    query: dict[str, str | int] = {"term": term}
    if product_id:
        query["product_id"] = product_id
    if weeks != DEFAULT_WEEKS:
        query["weeks"] = weeks
    return f"/console/{merchant_id}/feedback/reviews?{urlencode(query)}"


def _visible_reviews(
    merchant_id: int, product_id: int | None, since: dt.datetime
) -> Select[int, int, str, dt.datetime]:
    # Through the shop's index: a merchant has one shop, reviews are indexed by it.
    shop = select(Shop.id).where(Shop.merchant_id == merchant_id).scalar_subquery()
    stmt = select(Review.id, Review.stars, Review.body, Review.created_at).where(
        Review.shop_id == shop,
        Review.merchant_id == merchant_id,
        Review.hidden_at.is_(None),
        Review.created_at >= since,
    )
    if product_id is not None:
        stmt = stmt.where(Review.product_id == product_id)
    return stmt.order_by(Review.id.desc())


async def _product(
    session: AsyncSession, merchant_id: int, product_id: int | None
) -> Product | None:
    if product_id is None:
        return None
    return await catalog.merchant_product(session, merchant_id=merchant_id, product_id=product_id)


async def _open_questions(
    session: AsyncSession, merchant_id: int, product_id: int | None, now: dt.datetime
) -> list[OpenQuestion]:
    answered = (
        select(Answer.id)
        .where(Answer.question_id == Question.id, Answer.hidden_at.is_(None))
        .exists()
    )
    stmt = (
        select(Question.id, Question.product_id, Product.name, Question.body, Question.created_at)
        .join(Product, Product.id == Question.product_id)
        .where(Question.merchant_id == merchant_id, Question.hidden_at.is_(None), ~answered)
        .order_by(Question.created_at, Question.id)
        .limit(MAX_QUESTIONS)
    )
    if product_id is not None:
        stmt = stmt.where(Question.product_id == product_id)
    return [
        OpenQuestion(qid, pid, name, body, at, now - at)
        for qid, pid, name, body, at in await session.execute(stmt)
    ]


async def _waits(
    session: AsyncSession,
    merchant_id: int,
    product_id: int | None,
    since: dt.datetime,
    now: dt.datetime,
) -> dict[int, list[fd.Wait]]:
    """The waits of the merchant's conversations in the window. Only a message where the
    speaker changes (a turn) can start or end a wait, so the database keeps just those: the
    rows read grow with the turns, not with every message; and at most MAX_TURNS of them."""
    # A message moderation removed asked nothing the shop should have answered; a product or
    # order card is context, not a question.
    counted = (Message.side == "shop") | (
        Message.kind.in_(_ASKING_KINDS) & Message.hidden_at.is_(None)
    )
    messages = (
        select(
            Message.id,
            Message.conversation_id,
            Message.seq,
            Message.side,
            Message.created_at,
            func.lag(Message.side)
            .over(partition_by=Message.conversation_id, order_by=Message.seq)
            .label("before"),
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.merchant_id == merchant_id,
            Conversation.last_message_at >= since,
            Message.created_at >= since,
            counted,
        )
    )
    if product_id is not None:
        # A product's chats: the conversations where its card was shared.
        about = select(Message.conversation_id).where(
            Message.kind == "product", Message.ref_id == product_id
        )
        messages = messages.where(Message.conversation_id.in_(about))
    m = messages.subquery()
    turns = (
        select(m.c.conversation_id, m.c.seq, m.c.side, m.c.created_at)
        .where(or_(m.c.before.is_(None), m.c.before != m.c.side))
        .order_by(m.c.id.desc())  # past the cap, the oldest turns are left out
        .limit(MAX_TURNS)
    )
    threads: dict[int, list[tuple[int, str, dt.datetime]]] = {}
    for conversation_id, seq, side, at in await session.execute(turns):
        threads.setdefault(conversation_id, []).append((seq, side, at))
    return {
        cid: fd.waits([(side, at) for _, side, at in sorted(rows)], now=now)
        for cid, rows in threads.items()
    }


def _fix_items(
    fixes: list[fd.Fix],
    *,
    merchant_id: int,
    product_id: int | None,
    weeks: int,
    threshold: dt.timedelta,
) -> list[FixItem]:
    page = page_path(merchant_id, product_id)
    if weeks != DEFAULT_WEEKS:
        page += f"?weeks={weeks}"
    items = []
    for fix in fixes:
        n = fix.count
        if fix.kind == "term":
            message = ngettext(
                "%(count)d low review mentions “%(term)s”",
                "%(count)d low reviews mention “%(term)s”",
                n,
            ) % {"count": n, "term": fix.term}
            link = reviews_path(merchant_id, fix.term, product_id, weeks)
        elif fix.kind == "questions":
            message = ngettext(
                "%(count)d question unanswered for over %(days)d days",
                "%(count)d questions unanswered for over %(days)d days",
                n,
            ) % {"count": n, "days": QUESTION_DUE.days}
            link = f"{page}#unanswered"
        else:
            message = ngettext(
                "%(count)d chat waited over %(minutes)d min for a reply",
                "%(count)d chats waited over %(minutes)d min for a reply",
                n,
            ) % {"count": n, "minutes": threshold // dt.timedelta(minutes=1)}
            link = f"{page}#slow-chats"
        items.append(FixItem(fix.kind, n, fix.ids, fix.term, message, link))
    return items


async def feedback(
    session: AsyncSession,
    *,
    merchant_id: int,
    product_id: int | None = None,
    weeks: int = DEFAULT_WEEKS,
    chat_threshold: dt.timedelta = CHAT_THRESHOLD,
    now: dt.datetime | None = None,
) -> Feedback:
    """The merchant's feedback over the last `weeks` ISO weeks (the current one included).
    The caller has checked the merchant membership; a product of another merchant is a 404."""
    now = now or utcnow()
    weeks = max(1, min(weeks, MAX_WEEKS))
    product = await _product(session, merchant_id, product_id)
    since = fd.window_start(now, weeks)

    reviews = (await session.execute(_visible_reviews(merchant_id, product_id, since))).all()
    trend = fd.rating_trend(((at, stars) for _, stars, _, at in reviews), now=now, weeks=weeks)
    low = [(rid, body) for rid, stars, body, _ in reviews if stars <= fd.LOW_STARS]
    # Off the event loop: jieba's first use loads its dictionary (about a second), and
    # segmenting thousands of reviews is CPU work other requests should not wait behind.
    terms = await asyncio.to_thread(fd.complaint_terms, low, limit=SHOWN)

    questions = await _open_questions(session, merchant_id, product_id, now)
    overdue = [q.id for q in questions if q.age > QUESTION_DUE]

    waits = await _waits(session, merchant_id, product_id, since, now)
    slow = sorted(
        (
            SlowChat(cid, w.since, w.until, w.seconds)
            for cid, ws in waits.items()
            for w in ws
            if w.seconds > chat_threshold.total_seconds()
        ),
        key=lambda s: (-s.seconds, s.conversation_id),
    )
    answered = [w.seconds for ws in waits.values() for w in ws if w.answered]
    slow_conversations = list(dict.fromkeys(s.conversation_id for s in slow))

    fixes = fd.what_to_fix(terms=terms, overdue_questions=overdue, slow_chats=slow_conversations)
    return Feedback(
        merchant_id=merchant_id,
        product=product,
        weeks=weeks,
        since=since,
        trend=trend,
        review_count=len(reviews),
        low_review_count=len(low),
        terms=terms,
        questions=questions[:SHOWN],
        unanswered_count=len(questions),
        overdue_count=len(overdue),
        slow_chats=slow[:SHOWN],
        slow_count=len(slow),
        answered_waits=len(answered),
        median_first_response_seconds=fd.median_seconds(answered),
        threshold=chat_threshold,
        fixes=_fix_items(
            fixes,
            merchant_id=merchant_id,
            product_id=product_id,
            weeks=weeks,
            threshold=chat_threshold,
        ),
    )


@dataclass(frozen=True)
class TermReview:
    id: int
    product_id: int
    product_name: str
    stars: int
    body: str
    created_at: dt.datetime


async def reviews_with_term(
    session: AsyncSession,
    *,
    merchant_id: int,
    term: str,
    product_id: int | None = None,
    weeks: int = DEFAULT_WEEKS,
    now: dt.datetime | None = None,
) -> list[TermReview]:
    """The low reviews behind one complaint term, newest first: the same reviews, window and
    tokenising as the count on the feedback page, so the numbers agree."""
    now = now or utcnow()
    weeks = max(1, min(weeks, MAX_WEEKS))
    await _product(session, merchant_id, product_id)
    wanted = term.strip().lower()
    stmt = (
        _visible_reviews(merchant_id, product_id, fd.window_start(now, weeks))
        .where(Review.stars <= fd.LOW_STARS)
        .add_columns(Review.product_id, Product.name)
        .join(Product, Product.id == Review.product_id)
    )
    rows = (await session.execute(stmt)).all()

    def matching() -> list[TermReview]:
        return [
            TermReview(rid, pid, name, stars, body, at)
            for rid, stars, body, at, pid, name in rows
            if wanted in fd.terms(body)
        ]

    return await asyncio.to_thread(matching)
