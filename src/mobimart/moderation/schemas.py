from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from mobimart.moderation.reports import Action, Status, Subject
from mobimart.web.schemas import MAX_ID, InputModel


class BlockedWordIn(InputModel):
    word: str = Field(
        min_length=1,
        max_length=60,
        description="Stored normalised (full-width to half-width, case folded); "
        "a word already on the list is a 409.",
    )


class BlockedWordOut(BaseModel):
    id: int
    word: str
    created_at: dt.datetime


class ReportIn(InputModel):
    subject: Subject
    subject_id: int = Field(ge=1, le=MAX_ID)
    reason: str = Field(min_length=1, max_length=200)


class ReportOut(BaseModel):
    id: int
    subject: Subject
    subject_id: int
    reason: str
    status: Status
    created_at: dt.datetime


class ContentOut(BaseModel):
    author_id: int | None
    kind: str = Field(description="text, or a chat message's kind: image, product, order")
    preview: str = Field(description="The first 200 characters, as written (render escaped)")
    hidden: bool
    product_id: int | None = Field(description="The product page a review or Q&A is shown on")


class CaseOut(BaseModel):
    """Every report on one piece of content in one status."""

    report_id: int = Field(description="The newest report; resolve the case through it")
    subject: Subject
    subject_id: int
    reports: int = Field(description="How many people reported it")
    reasons: list[str]
    first_reported_at: dt.datetime
    last_reported_at: dt.datetime
    content: ContentOut | None = Field(description="None when the content has been deleted")


class ResolveIn(InputModel):
    action: Action = Field(description="remove hides the content; dismiss keeps it")


class ResolvedOut(BaseModel):
    subject: Subject
    subject_id: int
    status: Status
    reports: int = Field(description="How many open reports this settled")
