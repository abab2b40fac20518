from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mobimart.catalog.api import product_out
from mobimart.search import service as search
from mobimart.search.schemas import SearchResults
from mobimart.text import clean
from mobimart.web.deps import Session

router = APIRouter(tags=["search"])
Q = Annotated[str, Query(min_length=1, max_length=200, description="What to look for")]


@router.get("/search")
async def search_products(
    q: Q, session: Session, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> SearchResults:
    """Published products by relevance; forgives one typo per long word."""
    query = clean(q, 200)
    products = await search.search(session, query=query, limit=limit)
    return SearchResults(query=query, items=[product_out(p) for p in products])


@router.get("/search/suggest")
async def suggest(q: Q, session: Session) -> list[str]:
    """Catalogue words completing the last word typed."""
    return await search.suggest(session, prefix=clean(q, 200))
