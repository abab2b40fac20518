from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mobimart.search import service as search
from mobimart.text import clean
from mobimart.web.deps import Session

router = APIRouter(tags=["search"])


@router.get("/search/suggest")
async def suggest(
    q: Annotated[str, Query(min_length=1, max_length=200, description="What was typed so far")],
    session: Session,
) -> list[str]:
    """Catalogue words completing the last word typed. Search itself is
    `GET /products?q=`, with the same filters and facets as browsing."""
    return await search.suggest(session, prefix=clean(q, 200))
