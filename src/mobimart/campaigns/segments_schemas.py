"""Request and response bodies of the segments API. The rules' content is checked by
rules.parse (422 with a readable message); here only its shape and size."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from mobimart.campaigns import rules
from mobimart.web.schemas import InputModel

Value = Annotated[str, Field(max_length=40)] | int | bool
ConditionIn = Annotated[dict[Annotated[str, Field(max_length=40)], Value], Field(max_length=8)]
RulesIn = Annotated[
    list[ConditionIn],
    Field(
        min_length=1,
        max_length=rules.MAX_CONDITIONS,
        description='conditions, e.g. {"kind": "bought_in_category", "category_id": 7, '
        '"days": 30} or {"kind": "has_consent", "channel": "sms", "not": true}; '
        f"kinds: {', '.join(rules.KINDS)}",
    ),
]


class RulesBody(InputModel):
    match: Literal["all", "any"] = "all"
    rules: RulesIn


class SegmentIn(RulesBody):
    name: str = Field(min_length=1, max_length=80)


class SegmentOut(BaseModel):
    id: int
    merchant_id: int | None
    name: str
    match: str
    rules: list[dict[str, str | int | bool]]
    member_count: int
    evaluated_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CountOut(BaseModel):
    count: int


class MemberOut(BaseModel):
    user_id: int
    phone_masked: str = Field(description="138****5678: never the whole number")
    display_name: str
    added_at: dt.datetime
