"""Cursor pagination: `?cursor=&limit=`; the cursor is opaque to clients."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from mobimart.errors import DomainError
from mobimart.web.schemas import MAX_ID

T = TypeVar("T")
S = TypeVar("S")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        before = data["before"]
        if isinstance(before, int) and not isinstance(before, bool) and 0 < before <= MAX_ID:
            return before
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        pass
    raise DomainError("invalid_cursor", "The cursor is not one this API gave out.", 422)


@dataclass(frozen=True)
class PageParams:
    before_id: int | None
    limit: int

    @property
    def fetch(self) -> int:
        """Ask for one row more than the page: its presence says whether a next page exists."""
        return self.limit + 1


def page_params(
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PageParams:
    return PageParams(decode_cursor(cursor) if cursor else None, limit)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def split_page(
    rows: Sequence[S], params: PageParams, key: Callable[[S], int]
) -> tuple[list[S], str | None]:
    """The page's rows and the cursor of the next page (None on the last)."""
    items = list(rows[: params.limit])
    more = len(rows) > params.limit
    return items, encode_cursor(key(items[-1])) if more and items else None


def make_page(
    rows: Sequence[S], params: PageParams, convert: Callable[[S], T], key: Callable[[S], int]
) -> Page[T]:
    items, next_cursor = split_page(rows, params, key)
    return Page[T](items=[convert(row) for row in items], next_cursor=next_cursor)
