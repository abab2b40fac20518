"""Questions on a product page, answered by the shop's staff or by people who bought it; the
asker hears of every answer in their inbox."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog.models import Product
from mobimart.catalog.view import visible
from mobimart.checkout.models import Order, OrderLine
from mobimart.db import utcnow
from mobimart.errors import DomainError, NotFound
from mobimart.merchants.models import Merchant, MerchantMember
from mobimart.moderation import service as moderation
from mobimart.notifications import service as notifications
from mobimart.social.models import Answer, Question
from mobimart.text import clean
from mobimart.web.i18n import stored as _
from mobimart.web.pagination import PageParams

MAX_QUESTION = 500
MAX_ANSWER = 1000
# A buyer who has paid knows the product's story (what it looks like arrives later, but the
# size chart or the delivery time is answerable from the order alone).
BOUGHT = ("paid", "shipped", "delivered", "completed")
NOT_ALLOWED = "Only the shop and people who bought this product can answer its questions."


async def visible_product(session: AsyncSession, *, product_id: int) -> Product:
    product = await session.scalar(
        select(Product)
        .join(Merchant, Merchant.id == Product.merchant_id)
        .where(Product.id == product_id, *visible())
    )
    if product is None:
        raise NotFound("Product")
    return product


def _text(body: str, max_len: int) -> str:
    text = clean(body, max_len)
    if not text:
        raise DomainError("empty_text", "Write something first.", 422)
    return text


async def ask(session: AsyncSession, *, user: User, product_id: int, body: str) -> Question:
    product = await visible_product(session, product_id=product_id)
    text = _text(body, MAX_QUESTION)
    await moderation.screen(session, text)
    await moderation.limit(session, user_id=user.id, action="question")
    question = Question(
        product_id=product.id, merchant_id=product.merchant_id, user_id=user.id, body=text
    )
    session.add(question)
    await session.commit()
    return question


async def visible_question(session: AsyncSession, *, question_id: int) -> Question:
    question = await session.get(Question, question_id)
    if question is None or question.hidden_at is not None:
        raise NotFound("Question")
    return question


async def is_staff(session: AsyncSession, *, merchant_id: int, user_id: int) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    MerchantMember.merchant_id == merchant_id, MerchantMember.user_id == user_id
                )
            )
        )
    )


async def has_bought(session: AsyncSession, *, user_id: int, product_id: int) -> bool:
    return bool(
        await session.scalar(
            select(
                exists()
                .where(OrderLine.order_id == Order.id)
                .where(
                    Order.user_id == user_id,
                    Order.status.in_(BOUGHT),
                    OrderLine.product_id == product_id,
                )
            )
        )
    )


async def may_answer(
    session: AsyncSession, *, user: User | None, product_id: int, merchant_id: int
) -> bool | None:
    """Who may answer a product's questions: True for its shop's staff, False for a buyer of
    it, None for anyone else (and nobody signed in)."""
    if user is None:
        return None
    if await is_staff(session, merchant_id=merchant_id, user_id=user.id):
        return True
    if await has_bought(session, user_id=user.id, product_id=product_id):
        return False
    return None


async def answer(session: AsyncSession, *, user: User, question_id: int, body: str) -> Answer:
    question = await visible_question(session, question_id=question_id)
    by_shop = await may_answer(
        session, user=user, product_id=question.product_id, merchant_id=question.merchant_id
    )
    if by_shop is None:
        raise DomainError("not_allowed_to_answer", NOT_ALLOWED, 403)
    text = _text(body, MAX_ANSWER)
    await moderation.screen(session, text)
    await moderation.limit(session, user_id=user.id, action="answer")
    row = Answer(question_id=question.id, user_id=user.id, by_shop=by_shop, body=text)
    session.add(row)
    await session.execute(
        update(Question)
        .where(Question.id == question.id)
        .values(answer_count=Question.answer_count + 1)
        .execution_options(synchronize_session=False)
    )
    if question.user_id != user.id:
        await notifications.notify(
            session,
            user_id=question.user_id,
            kind="answer",
            title=_("The shop answered your question")
            if by_shop
            else _("A buyer answered your question"),
            body=text[:300],
            link=f"/products/{question.product_id}/questions#q-{question.id}",
            # One line per question in the inbox, however many answers arrive.
            key=f"question:{question.id}",
        )
    await session.commit()
    return row


# --- moderation --------------------------------------------------------------------------------


async def hide_question(session: AsyncSession, *, question_id: int) -> bool:
    """Take a question (and so its answers) out of view, in the caller's transaction."""
    result = await session.execute(
        update(Question)
        .where(Question.id == question_id, Question.hidden_at.is_(None))
        .values(hidden_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def restore_question(session: AsyncSession, *, question_id: int) -> bool:
    result = await session.execute(
        update(Question)
        .where(Question.id == question_id, Question.hidden_at.is_not(None))
        .values(hidden_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _answer_visibility(session: AsyncSession, *, answer_id: int, hide: bool) -> bool:
    condition = Answer.hidden_at.is_(None) if hide else Answer.hidden_at.is_not(None)
    question_id = await session.scalar(
        update(Answer)
        .where(Answer.id == answer_id, condition)
        .values(hidden_at=utcnow() if hide else None)
        .returning(Answer.question_id)
        .execution_options(synchronize_session=False)
    )
    if question_id is None:
        return False
    await session.execute(
        update(Question)
        .where(Question.id == question_id)
        .values(answer_count=Question.answer_count + (-1 if hide else 1))
        .execution_options(synchronize_session=False)
    )
    return True


async def hide_answer(session: AsyncSession, *, answer_id: int) -> bool:
    """Take an answer out of view and out of its question's count, once, in the caller's
    transaction."""
    return await _answer_visibility(session, answer_id=answer_id, hide=True)


async def restore_answer(session: AsyncSession, *, answer_id: int) -> bool:
    return await _answer_visibility(session, answer_id=answer_id, hide=False)


# --- reading -----------------------------------------------------------------------------------


async def _questions(
    session: AsyncSession, where: list[ColumnElement[bool]], page: PageParams
) -> list[tuple[Question, User]]:
    where.append(Question.hidden_at.is_(None))
    if page.before_id is not None:
        where.append(Question.id < page.before_id)
    rows = await session.execute(
        select(Question, User)
        .join(User, User.id == Question.user_id)
        .where(and_(*where))
        .order_by(Question.id.desc())
        .limit(page.fetch)
    )
    return [(q, u) for q, u in rows]


async def of_product(
    session: AsyncSession, *, product_id: int, page: PageParams
) -> list[tuple[Question, User]]:
    """Visible questions of a product, newest first (the caller checked the product is)."""
    return await _questions(session, [Question.product_id == product_id], page)


async def of_merchant(
    session: AsyncSession, *, merchant_id: int, page: PageParams, unanswered: bool | None = None
) -> list[tuple[Question, User]]:
    """The shop's questions, newest first: only unanswered ones (True), only answered (False)
    or all (None)."""
    where: list[ColumnElement[bool]] = [Question.merchant_id == merchant_id]
    if unanswered is not None:
        where.append(Question.answer_count == 0 if unanswered else Question.answer_count > 0)
    return await _questions(session, where, page)


async def answers_of(
    session: AsyncSession, *, question_id: int, page: PageParams
) -> list[tuple[Answer, User]]:
    await visible_question(session, question_id=question_id)
    query = (
        select(Answer, User)
        .join(User, User.id == Answer.user_id)
        .where(Answer.question_id == question_id, Answer.hidden_at.is_(None))
    )
    if page.before_id is not None:
        query = query.where(Answer.id < page.before_id)
    rows = await session.execute(query.order_by(Answer.id.desc()).limit(page.fetch))
    return [(a, u) for a, u in rows]


async def answers_for(
    session: AsyncSession, question_ids: Sequence[int], *, per_question: int = 3
) -> dict[int, list[tuple[Answer, User]]]:
    """The first few visible answers of several questions (the shop's first), for a page."""
    found: dict[int, list[tuple[Answer, User]]] = defaultdict(list)
    if not question_ids:
        return found
    # Numbered within each question so a popular question does not load all its answers.
    rank = (
        func.row_number()
        .over(partition_by=Answer.question_id, order_by=(Answer.by_shop.desc(), Answer.id))
        .label("rank")
    )
    ranked = (
        select(Answer.id, rank)
        .where(Answer.question_id.in_(question_ids), Answer.hidden_at.is_(None))
        .subquery()
    )
    rows = await session.execute(
        select(Answer, User)
        .join(ranked, ranked.c.id == Answer.id)
        .join(User, User.id == Answer.user_id)
        .where(ranked.c.rank <= per_question)
        .order_by(Answer.question_id, ranked.c.rank)
    )
    for a, u in rows:
        found[a.question_id].append((a, u))
    return found
