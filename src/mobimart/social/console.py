"""Reviews and questions in the merchant console: reply to reviews, answer questions (those
still waiting first). Reviewers appear by masked display name, as everywhere else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog.models import Product
from mobimart.errors import DomainError, NotFound
from mobimart.merchants import service as merchants
from mobimart.social import questions, reviews
from mobimart.social.pages import question_rows, review_rows
from mobimart.web.deps import PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
Body = Annotated[str, Form(max_length=2000)]


async def _product_names(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(select(Product.id, Product.name).where(Product.id.in_(set(ids))))
    return {i: n for i, n in rows}


def _status(exc: DomainError) -> int:
    """A refused form's status: the refusal's own (blocked words 422, too often 429, changed
    meanwhile 409); anything else comes back as 422."""
    return exc.status if exc.status in (409, 422, 429) else 422


def _notice(code: str) -> str:
    return {
        "replied": _("Reply published. The reviewer has been told."),
        "answered": _("Answer published. The asker has been told."),
    }.get(code, "")


async def _reviews_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    *,
    unreplied: bool = False,
    cursor: str | None = None,
    typed: dict[str, Any] | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    params = page_params(cursor=cursor, limit=20)
    rows = await reviews.of_merchant(
        session, merchant_id=merchant.id, page=params, unreplied=unreplied
    )
    shown, next_cursor = split_page(rows, params, key=lambda row: row[0].id)
    base = f"/console/{merchant.id}/reviews"
    return render(
        request,
        "social/console_reviews.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "reviews": await review_rows(session, shown, None),
            "products": await _product_names(session, [r.product_id for r, _u in shown]),
            "unreplied": unreplied,
            "base": base,
            "pager_base": f"{base}?unreplied=1" if unreplied else base,
            "next_cursor": next_cursor,
            "typed": typed or {},
            "notice": notice,
            "error": error,
        },
        status=status,
    )


@router.get("/console/{merchant_id}/reviews")
async def reviews_page(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    unreplied: Annotated[str, Query(max_length=1)] = "",
    cursor: Cursor = None,
    notice: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return await _reviews_page(
        request,
        session,
        user,
        merchant_id,
        unreplied=unreplied == "1",
        cursor=cursor,
        notice=_notice(notice),
    )


@router.post("/console/{merchant_id}/reviews/{review_id}/reply")
async def reply(
    request: Request,
    merchant_id: IdPath,
    review_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    body: Body = "",
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    try:
        await reviews.reply(
            session, user=user, merchant_id=merchant_id, review_id=review_id, body=body
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        await session.rollback()
        await session.refresh(user)
        return await _reviews_page(
            request,
            session,
            user,
            merchant_id,
            typed={"review_id": review_id, "body": body},
            error=message_of(exc),
            status=_status(exc),
        )
    return see_other(f"/console/{merchant_id}/reviews?notice=replied#review-{review_id}")


async def _questions_page(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    *,
    answered: bool = False,
    cursor: str | None = None,
    typed: dict[str, Any] | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    params = page_params(cursor=cursor, limit=20)
    rows = await questions.of_merchant(
        session, merchant_id=merchant.id, page=params, unanswered=not answered
    )
    shown, next_cursor = split_page(rows, params, key=lambda row: row[0].id)
    base = f"/console/{merchant.id}/questions"
    return render(
        request,
        "social/console_questions.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "questions": await question_rows(session, shown, user),
            "products": await _product_names(session, [q.product_id for q, _u in shown]),
            "answered": answered,
            "base": base,
            "pager_base": f"{base}?answered=1" if answered else base,
            "next_cursor": next_cursor,
            "typed": typed or {},
            "notice": notice,
            "error": error,
        },
        status=status,
    )


@router.get("/console/{merchant_id}/questions")
async def questions_page(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    answered: Annotated[str, Query(max_length=1)] = "",
    cursor: Cursor = None,
    notice: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Questions still waiting for an answer first (the default tab), answered ones a tap away."""
    return await _questions_page(
        request,
        session,
        user,
        merchant_id,
        answered=answered == "1",
        cursor=cursor,
        notice=_notice(notice),
    )


@router.post("/console/{merchant_id}/questions/{question_id}/answers")
async def answer(
    request: Request,
    merchant_id: IdPath,
    question_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    body: Body = "",
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    question = await questions.visible_question(session, question_id=question_id)
    if question.merchant_id != merchant_id:
        raise NotFound("Question")
    try:
        await questions.answer(session, user=user, question_id=question_id, body=body)
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _questions_page(
            request,
            session,
            user,
            merchant_id,
            typed={"answer_to": question_id, "answer": body},
            error=message_of(exc),
            status=_status(exc),
        )
    return see_other(f"/console/{merchant_id}/questions?notice=answered#q-{question_id}")
