from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from mobimart.catalog.pages import listing_page
from mobimart.errors import DomainError
from mobimart.search import listening
from mobimart.search.voice import AUDIO_MAX_BYTES
from mobimart.text import clean_name
from mobimart.web.deps import OptionalPageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.templating import render, verify_csrf

router = APIRouter()


@router.get("/search")
async def results(request: Request, session: Session, user: OptionalPageUser) -> Response:
    query = clean_name(request.query_params.get("q", ""), 200)
    if not query:
        return render(request, "search/start.html", {"user": user, "tab": "home"})
    heard = request.query_params.get("heard") == "1"
    return await listing_page(
        request,
        session,
        user,
        base="/search",
        heading=_("You said “%(query)s”") % {"query": query} if heard else _("Results"),
        query=query,
    )


@router.post("/search/voice")
async def voice(
    request: Request,
    session: Session,
    user: OptionalPageUser,
    csrf_token: Annotated[str, Form(max_length=200)],
    audio: Annotated[UploadFile, File()],
) -> Response:
    """The microphone button posts its recording here (and, without script, the file
    picker): the recognised words become a search."""
    verify_csrf(request, csrf_token)
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        text = await listening.hear(session, audio=await audio.read(AUDIO_MAX_BYTES + 1))
    except DomainError as exc:
        if wants_json:
            return JSONResponse({"error": message_of(exc)}, status_code=exc.status)
        return render(
            request,
            "search/start.html",
            {"user": user, "tab": "home", "error": message_of(exc)},
            status=exc.status,
        )
    url = "/search?" + urlencode({"q": text, "heard": "1"})
    return JSONResponse({"text": text, "url": url}) if wants_json else see_other(url)
