"""Reviews, ratings and product questions and answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.merchants import service as merchants
from mobimart.settings import get_settings
from mobimart.social import questions, reviews
from mobimart.social.models import Review
from mobimart.social.reviews import Filters
from mobimart.social.schemas import (
    AnswerIn,
    AnswerOut,
    HelpfulOut,
    PhotoOut,
    QuestionIn,
    QuestionOut,
    RatingOut,
    ReplyIn,
    ReviewableOut,
    ReviewIn,
    ReviewOut,
    ReviewPatch,
)
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["reviews"])
Paging = Annotated[PageParams, Depends(page_params)]
Stars = Annotated[int | None, Query(ge=1, le=5, description="only reviews with these stars")]
WithPhotos = Annotated[bool, Query(description="only reviews with photos")]


async def _reviews_page(
    session: AsyncSession, rows: list[tuple[Review, User]], page: PageParams
) -> Page[ReviewOut]:
    photos = await reviews.photos_of(session, [r.id for r, _ in rows[: page.limit]])
    return make_page(
        rows,
        page,
        lambda row: ReviewOut.of(row[0], row[1], photos.get(row[0].id, [])),
        key=lambda row: row[0].id,
    )


async def _review_out(session: AsyncSession, review: Review) -> ReviewOut:
    author = await session.get(User, review.user_id)
    assert author is not None
    photos = await reviews.photos_of(session, [review.id])
    return ReviewOut.of(review, author, photos.get(review.id, []))


@router.get("/products/{product_id}/reviews")
async def product_reviews(
    product_id: IdPath,
    session: Session,
    page: Paging,
    stars: Stars = None,
    with_photos: WithPhotos = False,
) -> Page[ReviewOut]:
    """The product's reviews, newest first."""
    await questions.visible_product(session, product_id=product_id)
    rows = await reviews.of_product(
        session, product_id=product_id, page=page, filters=Filters(stars, with_photos)
    )
    return await _reviews_page(session, rows, page)


@router.get("/products/{product_id}/rating")
async def product_rating(product_id: IdPath, session: Session) -> RatingOut:
    """Average stars and how many reviews gave each number of stars."""
    await questions.visible_product(session, product_id=product_id)
    return RatingOut.of(await reviews.rating(session, subject="product", subject_id=product_id))


@router.get("/shops/{shop_id}/rating")
async def shop_rating(shop_id: IdPath, session: Session) -> RatingOut:
    """The shop's rating over the reviews of all its products."""
    await catalog.open_shop(session, shop_id=shop_id)
    return RatingOut.of(await reviews.rating(session, subject="shop", subject_id=shop_id))


@router.get("/me/reviewable")
async def my_reviewable(user: CurrentUser, session: Session, page: Paging) -> Page[ReviewableOut]:
    """Delivered items the caller has not reviewed yet."""
    rows = await reviews.reviewable(session, user_id=user.id, page=page)
    return make_page(rows, page, lambda row: ReviewableOut.of(*row), key=lambda row: row[0].id)


@router.post("/order-lines/{line_id}/review", status_code=201)
async def create_review(
    line_id: IdPath, body: ReviewIn, user: CurrentUser, session: Session
) -> ReviewOut:
    """Review a delivered item: only its buyer, once (then PATCH the review)."""
    review = await reviews.create(
        session, user=user, line_id=line_id, stars=body.stars, body=body.body
    )
    return ReviewOut.of(review, user, [])


@router.patch("/reviews/{review_id}")
async def edit_review(
    review_id: IdPath, body: ReviewPatch, user: CurrentUser, session: Session
) -> ReviewOut:
    review = await reviews.edit(
        session, user=user, review_id=review_id, stars=body.stars, body=body.body
    )
    return await _review_out(session, review)


@router.post("/reviews/{review_id}/photos", status_code=201)
async def add_review_photos(
    review_id: IdPath,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG or WebP; six per review")],
    user: CurrentUser,
    session: Session,
) -> list[PhotoOut]:
    limit = get_settings().upload_max_bytes + 1
    data = [await f.read(limit) for f in files[: reviews.MAX_PHOTOS + 1]]
    photos = await reviews.add_photos(session, user=user, review_id=review_id, files=data)
    return [PhotoOut(id=p.id, url=reviews.photo_url(p)) for p in photos]


async def _vote(session: AsyncSession, user: User, review_id: int, helpful: bool) -> HelpfulOut:
    review = await reviews.vote(session, user=user, review_id=review_id, helpful=helpful)
    return HelpfulOut(review_id=review.id, helpful_count=review.helpful_count, voted=helpful)


@router.put("/reviews/{review_id}/helpful")
async def mark_helpful(review_id: IdPath, user: CurrentUser, session: Session) -> HelpfulOut:
    """Say the review helped; saying it again changes nothing."""
    return await _vote(session, user, review_id, True)


@router.delete("/reviews/{review_id}/helpful")
async def unmark_helpful(review_id: IdPath, user: CurrentUser, session: Session) -> HelpfulOut:
    return await _vote(session, user, review_id, False)


@router.get("/merchants/{merchant_id}/reviews")
async def merchant_reviews(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Paging,
    stars: Stars = None,
    unreplied: Annotated[bool, Query(description="only reviews without a reply")] = False,
) -> Page[ReviewOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await reviews.of_merchant(
        session,
        merchant_id=merchant_id,
        page=page,
        unreplied=unreplied,
        filters=Filters(stars=stars),
    )
    return await _reviews_page(session, rows, page)


@router.put("/merchants/{merchant_id}/reviews/{review_id}/reply")
async def reply_to_review(
    merchant_id: IdPath, review_id: IdPath, body: ReplyIn, user: CurrentUser, session: Session
) -> ReviewOut:
    """The shop's public reply to a review (one; putting it again replaces it)."""
    review = await reviews.reply(
        session, user=user, merchant_id=merchant_id, review_id=review_id, body=body.body
    )
    return await _review_out(session, review)


@router.get("/products/{product_id}/questions")
async def product_questions(
    product_id: IdPath, session: Session, page: Paging
) -> Page[QuestionOut]:
    await questions.visible_product(session, product_id=product_id)
    rows = await questions.of_product(session, product_id=product_id, page=page)
    return make_page(rows, page, lambda row: QuestionOut.of(*row), key=lambda row: row[0].id)


@router.post("/products/{product_id}/questions", status_code=201)
async def ask_question(
    product_id: IdPath, body: QuestionIn, user: CurrentUser, session: Session
) -> QuestionOut:
    question = await questions.ask(session, user=user, product_id=product_id, body=body.body)
    return QuestionOut.of(question, user)


@router.get("/questions/{question_id}/answers")
async def question_answers(question_id: IdPath, session: Session, page: Paging) -> Page[AnswerOut]:
    rows = await questions.answers_of(session, question_id=question_id, page=page)
    return make_page(rows, page, lambda row: AnswerOut.of(*row), key=lambda row: row[0].id)


@router.post("/questions/{question_id}/answers", status_code=201)
async def answer_question(
    question_id: IdPath, body: AnswerIn, user: CurrentUser, session: Session
) -> AnswerOut:
    """Answer as the shop's staff or as a buyer of the product; others get a 403."""
    answer = await questions.answer(session, user=user, question_id=question_id, body=body.body)
    return AnswerOut.of(answer, user)


@router.get("/merchants/{merchant_id}/questions")
async def merchant_questions(
    merchant_id: IdPath,
    user: CurrentUser,
    session: Session,
    page: Paging,
    unanswered: Annotated[
        bool | None, Query(description="true: not answered yet; false: answered")
    ] = None,
) -> Page[QuestionOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await questions.of_merchant(
        session, merchant_id=merchant_id, page=page, unanswered=unanswered
    )
    return make_page(rows, page, lambda row: QuestionOut.of(*row), key=lambda row: row[0].id)
