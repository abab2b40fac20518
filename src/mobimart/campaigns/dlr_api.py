"""Kannel's delivery-report callback (the `dlr-url` of every campaign SMS): a route of the
app, and the same receiver as a bare ASGI app for a process of its own.

Reports come at twice the send rate (an 8 and a 1 per message). Through the whole app a
report costs ~0.5 ms of CPU (routing past every route, middleware, validation), so one core
takes ~2,000 a second; the bare receiver does the same work in a fraction of that. Point
Kannel's dlr-url at it for large sends:

    uvicorn mobimart.campaigns.dlr_api:receiver --factory --port 8001
    MOBIMART_SMS_DLR_URL=http://127.0.0.1:8001/api/v1/sms/dlr
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from mobimart.campaigns import dlr
from mobimart.db import Database
from mobimart.errors import Forbidden
from mobimart.settings import get_settings

router = APIRouter(tags=["sms"])


@router.get("/sms/dlr", response_class=PlainTextResponse)
async def delivery_report(
    request: Request,
    message: Annotated[int, Query(alias="m", ge=1, le=dlr.MAX_ID, description="Message id")],
    key: Annotated[str, Query(alias="k", max_length=64, description="Its signature")],
    status: Annotated[int, Query(alias="s", ge=0, le=255, description="Kannel's %d")],
) -> str:
    """Record one delivery report on its campaign message. Answers 200 once it is
    committed; anything else makes Kannel send it again. A repeated report changes nothing."""
    if not dlr.verify(message, key):
        raise Forbidden("Wrong or missing report signature.")
    await dlr.recorder(request.app.state, request.app.state.db).submit(message, status)
    return ""


# The bare receiver accepts exactly what Kannel sends: m=<id>&k=<hex>&s=<status>.
_QUERY = re.compile(rb"m=([0-9]{1,10})&k=([0-9a-f]{1,64})&s=([0-9]{1,3})")


class _State:
    pass


class Receiver:
    """The report route alone, as a bare ASGI app: 200 after the commit, 403 for a bad
    signature, 404 elsewhere, 400 for anything that is not a report."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.state = _State()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await self.database.dispose()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        if scope["path"] != dlr.PATH:
            await _answer(send, 404)
            return
        found = _QUERY.fullmatch(scope["query_string"])
        if found is None:
            await _answer(send, 400)
            return
        message, status = int(found[1]), int(found[3])
        if not 1 <= message <= dlr.MAX_ID or status > 255:
            await _answer(send, 400)
            return
        if not dlr.verify(message, found[2].decode()):
            await _answer(send, 403)
            return
        try:
            await dlr.recorder(self.state, self.database).submit(message, status)
        except Exception:  # not stored: Kannel sends it again
            await _answer(send, 503)
            return
        await _answer(send, 200)


async def _answer(send: Send, status: int) -> None:
    headers: list[Any] = [(b"content-type", b"text/plain"), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def receiver() -> Receiver:
    """uvicorn's --factory entry point."""
    return Receiver(Database(get_settings().database_url))
