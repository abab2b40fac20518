from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mobimart.catalog.pages import listing_page
from mobimart.text import clean_name
from mobimart.web.deps import OptionalPageUser, Session
from mobimart.web.i18n import gettext_ as _
from mobimart.web.templating import render

router = APIRouter()


@router.get("/search")
async def results(request: Request, session: Session, user: OptionalPageUser) -> Response:
    query = clean_name(request.query_params.get("q", ""), 200)
    if not query:
        return render(request, "search/start.html", {"user": user, "tab": "home"})
    return await listing_page(
        request, session, user, base="/search", heading=_("Results"), query=query
    )
