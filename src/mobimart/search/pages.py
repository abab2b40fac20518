from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mobimart.search import service as search
from mobimart.text import clean
from mobimart.web.deps import OptionalPageUser, Session
from mobimart.web.templating import render

router = APIRouter()


@router.get("/search")
async def results(
    request: Request,
    session: Session,
    user: OptionalPageUser,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    query = clean(q, 200)
    products = await search.search(session, query=query, limit=40) if query else []
    return render(
        request,
        "search/results.html",
        {"user": user, "tab": "home", "query": query, "products": products},
    )
