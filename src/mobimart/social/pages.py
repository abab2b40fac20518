"""Reviews and questions on the shopper's pages: the product page's section, all reviews of a
product, writing or editing a review from an order, and asking and answering questions. Plain
forms (no script needed); a refused form comes back with the reason and what was typed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.domain import public_name
from mobimart.accounts.models import User
from mobimart.errors import DomainError
from mobimart.settings import get_settings
from mobimart.social import questions, reviews
from mobimart.social.domain import STARS, Rating
from mobimart.social.models import Question, Review
from mobimart.social.reviews import Filters
from mobimart.web.deps import OptionalPageUser, PageUser, Session
from mobimart.web.forms import message_of, safe_next, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import PageParams, page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
LATEST = 3  # reviews and questions on the product page; the rest one tap away
# Review photos may be cached this long (seconds): a removed review's photos leave browsers
# and proxies within 10 minutes, and paging through a product's reviews does not refetch them.
PHOTO_CACHE = 600


def bars(rating: Rating) -> list[dict[str, Any]]:
    """The distribution, five stars first, as the <meter> bars draw it (no script, no inline
    style: the page's CSP allows neither)."""
    return [
        {"stars": s, "count": rating.counts[s - 1], "share": rating.share(s)}
        for s in reversed(STARS)
    ]


async def review_rows(
    session: AsyncSession, rows: Sequence[tuple[Review, User]], user: User | None
) -> list[dict[str, Any]]:
    ids = [r.id for r, _ in rows]
    photos = await reviews.photos_of(session, ids)
    mine = await reviews.voted(session, user_id=user.id, review_ids=ids) if user else set()
    return [
        {
            "review": r,
            "author": public_name(u.display_name),
            "photos": [reviews.photo_url(p) for p in photos.get(r.id, [])],
            "voted": r.id in mine,
            "own": user is not None and user.id == r.user_id,
        }
        for r, u in rows
    ]


async def question_rows(
    session: AsyncSession, rows: Sequence[tuple[Question, User]], user: User | None
) -> list[dict[str, Any]]:
    answers = await questions.answers_for(session, [q.id for q, _ in rows])
    me = user.id if user is not None else None
    return [
        {
            "question": q,
            "author": public_name(u.display_name),
            "own": q.user_id == me,
            "answers": [
                {"answer": a, "author": public_name(au.display_name), "own": a.user_id == me}
                for a, au in answers.get(q.id, [])
            ],
        }
        for q, u in rows
    ]


async def product_section(
    session: AsyncSession, *, product_id: int, merchant_id: int, user: User | None
) -> dict[str, Any]:
    """What the product page's reviews and questions section shows (social/product_section.html)."""
    rating = await reviews.rating(session, subject="product", subject_id=product_id)
    latest = await reviews.of_product(session, product_id=product_id, page=PageParams(None, LATEST))
    asked = await questions.of_product(
        session, product_id=product_id, page=PageParams(None, LATEST)
    )
    return {
        "product_id": product_id,
        "rating": rating,
        "bars": bars(rating),
        "reviews": await review_rows(session, latest[:LATEST], user),
        "more_reviews": rating.count > LATEST,
        "questions": await question_rows(session, asked[:LATEST], user),
        "more_questions": len(asked) > LATEST,
        "may_answer": await questions.may_answer(
            session, user=user, product_id=product_id, merchant_id=merchant_id
        )
        is not None,
        "signed_in": user is not None,
    }


# --- all reviews of a product ------------------------------------------------------------------


@router.get("/products/{product_id}/reviews")
async def reviews_page(
    request: Request,
    product_id: IdPath,
    session: Session,
    user: OptionalPageUser,
    stars: Annotated[str, Query(max_length=1)] = "",
    photos: Annotated[str, Query(max_length=1)] = "",
    cursor: Cursor = None,
) -> Response:
    product = await questions.visible_product(session, product_id=product_id)
    chosen = int(stars) if stars in {"1", "2", "3", "4", "5"} else None
    filters = Filters(stars=chosen, with_photos=photos == "1")
    params = page_params(cursor=cursor, limit=20)
    rows = await reviews.of_product(session, product_id=product.id, page=params, filters=filters)
    shown, next_cursor = split_page(rows, params, key=lambda row: row[0].id)
    rating = await reviews.rating(session, subject="product", subject_id=product.id)
    base = f"/products/{product.id}/reviews"
    query = "&".join(
        part
        for part in (f"stars={chosen}" if chosen else "", "photos=1" if photos == "1" else "")
        if part
    )
    return render(
        request,
        "social/review_list.html",
        {
            "user": user,
            "tab": "home",
            "product": product,
            "rating": rating,
            "bars": bars(rating),
            "reviews": await review_rows(session, shown, user),
            "stars": chosen,
            "with_photos": filters.with_photos,
            "base": base,
            "pager_base": f"{base}?{query}" if query else base,
            "next_cursor": next_cursor,
        },
    )


# --- writing a review --------------------------------------------------------------------------


async def _form_page(
    request: Request,
    session: AsyncSession,
    user: User,
    line_id: int,
    *,
    typed: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    line, order, review = await reviews.line_for_review(session, user=user, line_id=line_id)
    if review is None:
        reason = reviews.refusal_of(order_status=order.status)
        if reason is not None:
            raise reason
    photos = (await reviews.photos_of(session, [review.id])).get(review.id, []) if review else []
    shown = typed or (
        {"stars": review.stars, "body": review.body} if review else {"stars": 5, "body": ""}
    )
    return render(
        request,
        "social/review_form.html",
        {
            "user": user,
            "tab": "me",
            "line": line,
            "order": order,
            "review": review,
            "photos": [reviews.photo_url(p) for p in photos],
            "room": reviews.MAX_PHOTOS - len(photos),
            "typed": shown,
            "error": error,
        },
        status=status,
    )


@router.get("/order-lines/{line_id}/review")
async def review_form(
    request: Request, line_id: IdPath, session: Session, user: PageUser
) -> Response:
    return await _form_page(request, session, user, line_id)


@router.post("/order-lines/{line_id}/review")
async def submit_review(
    request: Request,
    line_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    stars: Annotated[str, Form(max_length=2)] = "",
    body: Annotated[str, Form(max_length=4000)] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    verify_csrf(request, csrf_token)
    chosen = int(stars) if stars.isdigit() else 0
    typed = {"stars": chosen, "body": body}
    limit = get_settings().upload_max_bytes + 1
    files = [await f.read(limit) for f in (photos or [])[: reviews.MAX_PHOTOS + 1]]
    # A form with no file chosen sends one empty part; `write` skips it.
    try:
        review = await reviews.write(
            session, user=user, line_id=line_id, stars=chosen, body=body, photos=files
        )
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _form_page(
            request,
            session,
            user,
            line_id,
            typed=typed,
            error=message_of(exc),
            status=exc.status if exc.status in (409, 413, 415, 422, 429) else 422,
        )
    return see_other(f"/products/{review.product_id}#review-{review.id}")


@router.get("/reviews/photos/{key}")
async def review_photo(key: Annotated[str, Path(max_length=40)], session: Session) -> Response:
    """A photo of a review that is shown. Not the public /media route: a removed review's
    photos go with it, and a cache keeps them at most PHOTO_CACHE seconds after that."""
    photo, path = await reviews.visible_photo(session, key=key)
    return FileResponse(
        path,
        media_type=photo.content_type,
        headers={"Cache-Control": f"public, max-age={PHOTO_CACHE}"},
    )


@router.post("/reviews/{review_id}/helpful")
async def helpful(
    request: Request,
    review_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    helpful: Annotated[str, Form(max_length=1)] = "1",
    next: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    review = await reviews.vote(session, user=user, review_id=review_id, helpful=helpful == "1")
    back = safe_next(next, f"/products/{review.product_id}")
    return see_other(f"{back.split('#')[0]}#review-{review.id}")


# --- questions ---------------------------------------------------------------------------------


async def _questions_page(
    request: Request,
    session: AsyncSession,
    user: User | None,
    product_id: int,
    *,
    cursor: str | None = None,
    typed: dict[str, Any] | None = None,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    product = await questions.visible_product(session, product_id=product_id)
    params = page_params(cursor=cursor, limit=20)
    rows = await questions.of_product(session, product_id=product.id, page=params)
    shown, next_cursor = split_page(rows, params, key=lambda row: row[0].id)
    return render(
        request,
        "social/question_list.html",
        {
            "user": user,
            "tab": "home",
            "product": product,
            "questions": await question_rows(session, shown, user),
            "may_answer": await questions.may_answer(
                session, user=user, product_id=product.id, merchant_id=product.merchant_id
            )
            is not None,
            "signed_in": user is not None,
            "typed": typed or {},
            "next_cursor": next_cursor,
            "error": error,
            "notice": notice,
        },
        status=status,
    )


def _notice(code: str) -> str:
    return {
        "asked": _("Your question is up. You will be told when someone answers."),
        "answered": _("Thank you for your answer."),
    }.get(code, "")


@router.get("/products/{product_id}/questions")
async def questions_page(
    request: Request,
    product_id: IdPath,
    session: Session,
    user: OptionalPageUser,
    cursor: Cursor = None,
    notice: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return await _questions_page(
        request, session, user, product_id, cursor=cursor, notice=_notice(notice)
    )


@router.post("/products/{product_id}/questions")
async def ask(
    request: Request,
    product_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    body: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        question = await questions.ask(session, user=user, product_id=product_id, body=body)
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _questions_page(
            request,
            session,
            user,
            product_id,
            typed={"question": body},
            error=message_of(exc),
            status=exc.status if exc.status in (422, 429) else 422,
        )
    return see_other(f"/products/{product_id}/questions?notice=asked#q-{question.id}")


@router.post("/questions/{question_id}/answers")
async def answer(
    request: Request,
    question_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    body: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    question = await questions.visible_question(session, question_id=question_id)
    product_id = question.product_id
    try:
        await questions.answer(session, user=user, question_id=question_id, body=body)
    except DomainError as exc:
        await session.rollback()
        await session.refresh(user)
        return await _questions_page(
            request,
            session,
            user,
            product_id,
            typed={"answer_to": question_id, "answer": body},
            error=message_of(exc),
            status=exc.status if exc.status in (403, 422, 429) else 422,
        )
    return see_other(f"/products/{product_id}/questions?notice=answered#q-{question_id}")
