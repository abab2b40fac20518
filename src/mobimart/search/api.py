from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from mobimart.catalog import browse, feed
from mobimart.catalog.listing import Filters
from mobimart.catalog.schemas import ProductCard
from mobimart.merchants import service as merchants
from mobimart.search import listening, sms, synonyms
from mobimart.search import service as search
from mobimart.search.models import SynonymGroup
from mobimart.search.synonyms import MAX_WORDS, WORD_MAX
from mobimart.search.voice import AUDIO_MAX_BYTES
from mobimart.text import clean
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.schemas import IdPath, InputModel

router = APIRouter(tags=["search"])


@router.get("/search/suggest")
async def suggest(
    q: Annotated[str, Query(min_length=1, max_length=200, description="What was typed so far")],
    session: Session,
) -> list[str]:
    """Catalogue words completing the last word typed. Search itself is
    `GET /products?q=`, with the same filters and facets as browsing."""
    return await search.suggest(session, prefix=clean(q, 200))


class SynonymsIn(InputModel):
    words: list[Annotated[str, Field(min_length=1, max_length=WORD_MAX)]] = Field(
        min_length=2, max_length=MAX_WORDS, description='e.g. ["fridge", "refrigerator", "冰箱"]'
    )


class SynonymsOut(BaseModel):
    id: int
    words: list[str]
    merchant_id: int | None


def _out(group: SynonymGroup) -> SynonymsOut:
    return SynonymsOut(id=group.id, words=group.words, merchant_id=group.merchant_id)


@router.get("/admin/synonyms")
async def platform_synonyms(admin: Admin, session: Session) -> list[SynonymsOut]:
    return [_out(g) for g in await synonyms.groups_of(session, merchant_id=None)]


@router.post("/admin/synonyms", status_code=201)
async def add_platform_synonyms(body: SynonymsIn, admin: Admin, session: Session) -> SynonymsOut:
    """Words that find each other across the whole catalogue, from the next search on."""
    return _out(await synonyms.add_group(session, words=body.words, merchant_id=None))


@router.delete("/admin/synonyms/{group_id}", status_code=204)
async def delete_platform_synonyms(group_id: IdPath, admin: Admin, session: Session) -> Response:
    await synonyms.delete_group(session, group_id=group_id, merchant_id=None)
    return Response(status_code=204)


@router.get("/merchants/{merchant_id}/synonyms")
async def merchant_synonyms(
    merchant_id: IdPath, user: CurrentUser, session: Session
) -> list[SynonymsOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return [_out(g) for g in await synonyms.groups_of(session, merchant_id=merchant_id)]


@router.post("/merchants/{merchant_id}/synonyms", status_code=201)
async def add_merchant_synonyms(
    merchant_id: IdPath, body: SynonymsIn, user: CurrentUser, session: Session
) -> SynonymsOut:
    """Words that find each other in searches, for this merchant's products only."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return _out(await synonyms.add_group(session, words=body.words, merchant_id=merchant_id))


@router.delete("/merchants/{merchant_id}/synonyms/{group_id}", status_code=204)
async def delete_merchant_synonyms(
    merchant_id: IdPath, group_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    await synonyms.delete_group(session, group_id=group_id, merchant_id=merchant_id)
    return Response(status_code=204)


@router.get("/sms/inbound", response_class=PlainTextResponse, tags=["sms"])
async def inbound_sms(
    request: Request,
    session: Session,
    secret: Annotated[str, Query(max_length=200)],
    sender: Annotated[str, Query(alias="from", min_length=1, max_length=32)],
    text: Annotated[str, Query(max_length=2000, description="Kannel's %b")] = "",
    message_id: Annotated[str, Query(alias="id", max_length=64)] = "",
    coding: Annotated[int, Query(ge=0, le=2, description="Kannel's %c")] = 0,
    charset: Annotated[str, Query(max_length=20, description="Kannel's %C")] = "",
) -> str:
    """Kannel's sms-service calls this for every message to the service number (see
    deploy/kannel): a search, answered by SMS with the top three products, or a keyword.
    The reply is sent through the SMS interface, not in this response."""
    sms.check_secret(secret)
    body = sms.message_text(request.scope["query_string"], coding, charset) or text
    await sms.handle_inbound(session, sender=sender, text=body, message_id=message_id)
    return ""


class VoiceSearchOut(BaseModel):
    text: str = Field(description="What was heard, in the catalogue's words")
    total: int
    items: list[ProductCard]


@router.post("/search/voice")
async def voice_search(
    audio: Annotated[
        UploadFile, File(description="A recording: WebM/Opus, Ogg/Opus, MP4/AAC or WAV, ≤ 15 s")
    ],
    session: Session,
) -> VoiceSearchOut:
    """Search by voice: the recording is recognised offline against the catalogue's
    vocabulary and searched like typed words."""
    text = await listening.hear(session, audio=await audio.read(AUDIO_MAX_BYTES + 1))
    found = browse.browse(await feed.replica(session), filters=Filters(), query=text, limit=20)
    return VoiceSearchOut(
        text=text, total=found.total, items=[ProductCard.of(v) for v in found.items]
    )
