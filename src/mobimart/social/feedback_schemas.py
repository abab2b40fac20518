"""The merchant feedback document of GET /merchants/{merchant_id}/feedback."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from mobimart.social import feedback as service


class WeekOut(BaseModel):
    week: str = Field(description="ISO week, e.g. 2026-W49 (UTC)")
    starts_on: dt.date = Field(description="its Monday")
    count: int = Field(description="visible reviews written that week")
    average: float | None = Field(description="their average stars; null in a week without")


class TermOut(BaseModel):
    term: str
    count: int = Field(description="low reviews (3 stars or fewer) using the word")
    review_ids: list[int]


class QuestionOut(BaseModel):
    id: int
    product_id: int
    product_name: str
    body: str
    created_at: dt.datetime
    age_seconds: int


class SlowChatOut(BaseModel):
    conversation_id: int
    since: dt.datetime = Field(description="the consumer's first unanswered message")
    replied_at: dt.datetime | None = Field(description="null: still waiting")
    wait_seconds: int


class FixOut(BaseModel):
    kind: str = Field(description="term (ids are reviews), questions or chats (conversations)")
    count: int
    ids: list[int]
    term: str
    message: str
    link: str = Field(description="the console page behind it")


class FeedbackOut(BaseModel):
    merchant_id: int
    product_id: int | None
    weeks: int
    since: dt.datetime
    trend: list[WeekOut]
    review_count: int
    low_review_count: int
    terms: list[TermOut]
    unanswered_count: int
    overdue_count: int = Field(description="unanswered for over two days")
    unanswered: list[QuestionOut] = Field(description="the oldest unanswered questions")
    slow_chat_threshold_seconds: int
    slow_chat_count: int
    slow_chats: list[SlowChatOut] = Field(description="the longest waits first")
    median_first_response_seconds: int | None = Field(
        description="median wait for the shop's reply after a consumer wrote, over the window"
    )
    fixes: list[FixOut] = Field(description="what to fix, most people affected first")

    @classmethod
    def of(cls, f: service.Feedback) -> FeedbackOut:
        median = f.median_first_response_seconds
        return cls(
            merchant_id=f.merchant_id,
            product_id=f.product.id if f.product else None,
            weeks=f.weeks,
            since=f.since,
            trend=[
                WeekOut(week=p.label, starts_on=p.week, count=p.count, average=p.average)
                for p in f.trend
            ],
            review_count=f.review_count,
            low_review_count=f.low_review_count,
            terms=[
                TermOut(term=t.term, count=t.count, review_ids=list(t.review_ids)) for t in f.terms
            ],
            unanswered_count=f.unanswered_count,
            overdue_count=f.overdue_count,
            unanswered=[
                QuestionOut(
                    id=q.id,
                    product_id=q.product_id,
                    product_name=q.product_name,
                    body=q.body,
                    created_at=q.created_at,
                    age_seconds=int(q.age.total_seconds()),
                )
                for q in f.questions
            ],
            slow_chat_threshold_seconds=int(f.threshold.total_seconds()),
            slow_chat_count=f.slow_count,
            slow_chats=[
                SlowChatOut(
                    conversation_id=s.conversation_id,
                    since=s.since,
                    replied_at=s.until,
                    wait_seconds=int(s.seconds),
                )
                for s in f.slow_chats
            ],
            median_first_response_seconds=None if median is None else round(median),
            fixes=[
                FixOut(
                    kind=x.kind,
                    count=x.count,
                    ids=list(x.ids),
                    term=x.term,
                    message=x.message,
                    link=x.link,
                )
                for x in f.fixes
            ],
        )
