"""Reviews, ratings and product Q&A as the API shows them. People appear by a masked display
name only, never by a phone number."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from mobimart.accounts.domain import public_name
from mobimart.accounts.models import User
from mobimart.checkout.models import Order, OrderLine
from mobimart.social.domain import STARS, Rating
from mobimart.social.models import Answer, Question, Review, ReviewPhoto
from mobimart.social.reviews import photo_url
from mobimart.web.schemas import InputModel


class ReviewIn(InputModel):
    stars: int = Field(ge=1, le=5)
    body: str = Field("", max_length=2000)


class ReviewPatch(InputModel):
    stars: int | None = Field(None, ge=1, le=5)
    body: str | None = Field(None, max_length=2000)


class ReplyIn(InputModel):
    body: str = Field(min_length=1, max_length=1000)


class QuestionIn(InputModel):
    body: str = Field(min_length=1, max_length=500)


class AnswerIn(InputModel):
    body: str = Field(min_length=1, max_length=1000)


class PhotoOut(BaseModel):
    id: int
    url: str


class StarCount(BaseModel):
    stars: int
    count: int


class RatingOut(BaseModel):
    average: float = Field(description="Rounded to one decimal; 0 with no reviews")
    count: int
    distribution: list[StarCount] = Field(description="Five stars first")

    @classmethod
    def of(cls, rating: Rating) -> RatingOut:
        return cls(
            average=rating.average,
            count=rating.count,
            distribution=[StarCount(stars=s, count=rating.counts[s - 1]) for s in reversed(STARS)],
        )


class ReplyOut(BaseModel):
    body: str
    replied_at: dt.datetime


class ReviewOut(BaseModel):
    id: int
    product_id: int
    shop_id: int
    author: str = Field(description="The reviewer's display name, masked")
    stars: int
    body: str
    photos: list[PhotoOut]
    reply: ReplyOut | None
    helpful_count: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, review: Review, author: User, photos: list[ReviewPhoto]) -> ReviewOut:
        return cls(
            id=review.id,
            product_id=review.product_id,
            shop_id=review.shop_id,
            author=public_name(author.display_name),
            stars=review.stars,
            body=review.body,
            photos=[PhotoOut(id=p.id, url=photo_url(p)) for p in photos],
            reply=ReplyOut(body=review.reply, replied_at=review.replied_at)
            if review.reply and review.replied_at
            else None,
            helpful_count=review.helpful_count,
            created_at=review.created_at,
            updated_at=review.updated_at,
        )


class ReviewableOut(BaseModel):
    line_id: int
    order_id: int
    order_number: str
    product_id: int
    name: str
    options: dict[str, str]

    @classmethod
    def of(cls, line: OrderLine, order: Order) -> ReviewableOut:
        return cls(
            line_id=line.id,
            order_id=order.id,
            order_number=order.number,
            product_id=line.product_id,
            name=line.name,
            options={str(k): str(v) for k, v in (line.options or {}).items()},
        )


class HelpfulOut(BaseModel):
    review_id: int
    helpful_count: int
    voted: bool


class AnswerOut(BaseModel):
    id: int
    question_id: int
    author: str
    by_shop: bool
    body: str
    created_at: dt.datetime

    @classmethod
    def of(cls, answer: Answer, author: User) -> AnswerOut:
        return cls(
            id=answer.id,
            question_id=answer.question_id,
            author=public_name(author.display_name),
            by_shop=answer.by_shop,
            body=answer.body,
            created_at=answer.created_at,
        )


class QuestionOut(BaseModel):
    id: int
    product_id: int
    author: str
    body: str
    answer_count: int
    created_at: dt.datetime

    @classmethod
    def of(cls, question: Question, author: User) -> QuestionOut:
        return cls(
            id=question.id,
            product_id=question.product_id,
            author=public_name(author.display_name),
            body=question.body,
            answer_count=question.answer_count,
            created_at=question.created_at,
        )
