"""Segments API: a merchant's (`/merchants/{merchant_id}/segments`) and the platform's
(`/admin/segments`). Lists use cursors; members show masked phone numbers only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import segments
from mobimart.campaigns.models import Segment
from mobimart.campaigns.segments_schemas import (
    CountOut,
    MemberOut,
    RulesBody,
    SegmentIn,
    SegmentOut,
)
from mobimart.db import Database
from mobimart.merchants import service as merchants
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["segments"])
Paging = Annotated[PageParams, Depends(page_params)]


def _out(row: Segment) -> SegmentOut:
    return SegmentOut.model_validate(row, from_attributes=True)


async def _scope(session: AsyncSession, merchant_id: int, user: User) -> int:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return merchant_id


def export_response(request: Request, *, segment: Segment) -> StreamingResponse:
    """The CSV streamed from a session of its own (the request's closes before the body is
    sent)."""
    database: Database = request.app.state.db

    async def body() -> AsyncIterator[str]:
        async with database.session() as session:
            async for chunk in segments.export_csv(session, segment_id=segment.id):
                yield chunk

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="segment-{segment.id}.csv"'},
    )


# --- one set of handlers for both scopes ----------------------------------------------------


async def _list(session: AsyncSession, owner: int | None, page: PageParams) -> Page[SegmentOut]:
    rows = await segments.listed(
        session, merchant_id=owner, before=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, _out, key=lambda r: r.id)


async def _members(
    session: AsyncSession, owner: int | None, segment_id: int, page: PageParams
) -> Page[MemberOut]:
    await segments.get(session, segment_id=segment_id, merchant_id=owner)
    rows = await segments.member_views(
        session, segment_id=segment_id, after_user_id=page.before_id, limit=page.fetch
    )
    return make_page(
        rows,
        page,
        lambda r: MemberOut.model_validate(r, from_attributes=True),
        key=lambda r: r.user_id,
    )


# --- merchant ---------------------------------------------------------------------------------


@router.get("/merchants/{merchant_id}/segments")
async def list_segments(
    merchant_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[SegmentOut]:
    return await _list(session, await _scope(session, merchant_id, user), page)


@router.post("/merchants/{merchant_id}/segments", status_code=201)
async def create_segment(
    merchant_id: IdPath, body: SegmentIn, user: CurrentUser, session: Session
) -> SegmentOut:
    """Save a segment and evaluate it; members are then kept up to date as events happen."""
    owner = await _scope(session, merchant_id, user)
    row = await segments.create(
        session, merchant_id=owner, name=body.name, match=body.match, conditions=body.rules
    )
    return _out(row)


@router.post("/merchants/{merchant_id}/segments/preview")
async def preview_segment(
    merchant_id: IdPath, body: RulesBody, user: CurrentUser, session: Session
) -> CountOut:
    """How many people these rules pick now, without saving."""
    owner = await _scope(session, merchant_id, user)
    count = await segments.preview(
        session, merchant_id=owner, match=body.match, conditions=body.rules
    )
    return CountOut(count=count)


@router.get("/merchants/{merchant_id}/segments/{segment_id}")
async def get_segment(
    merchant_id: IdPath, segment_id: IdPath, user: CurrentUser, session: Session
) -> SegmentOut:
    owner = await _scope(session, merchant_id, user)
    return _out(await segments.get(session, segment_id=segment_id, merchant_id=owner))


@router.put("/merchants/{merchant_id}/segments/{segment_id}")
async def update_segment(
    merchant_id: IdPath, segment_id: IdPath, body: SegmentIn, user: CurrentUser, session: Session
) -> SegmentOut:
    """Change the name or rules; the segment is evaluated again."""
    owner = await _scope(session, merchant_id, user)
    row = await segments.update_segment(
        session,
        segment_id=segment_id,
        merchant_id=owner,
        name=body.name,
        match=body.match,
        conditions=body.rules,
    )
    return _out(row)


@router.delete("/merchants/{merchant_id}/segments/{segment_id}", status_code=204)
async def delete_segment(
    merchant_id: IdPath, segment_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    """The owner's: a campaign may be aimed at it."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await segments.delete_segment(session, segment_id=segment_id, merchant_id=merchant_id)
    return Response(status_code=204)


@router.get("/merchants/{merchant_id}/segments/{segment_id}/members")
async def segment_members(
    merchant_id: IdPath, segment_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[MemberOut]:
    """Members in id order, phone numbers masked."""
    owner = await _scope(session, merchant_id, user)
    return await _members(session, owner, segment_id, page)


@router.get(
    "/merchants/{merchant_id}/segments/{segment_id}/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_segment(
    request: Request, merchant_id: IdPath, segment_id: IdPath, user: CurrentUser, session: Session
) -> StreamingResponse:
    """Members as CSV: user_id, phone (masked), display_name, added_at."""
    owner = await _scope(session, merchant_id, user)
    segment = await segments.get(session, segment_id=segment_id, merchant_id=owner)
    return export_response(request, segment=segment)


# --- platform ---------------------------------------------------------------------------------


@router.get("/admin/segments")
async def list_platform_segments(admin: Admin, session: Session, page: Paging) -> Page[SegmentOut]:
    return await _list(session, None, page)


@router.post("/admin/segments", status_code=201)
async def create_platform_segment(body: SegmentIn, admin: Admin, session: Session) -> SegmentOut:
    """A platform segment: rules over everyone's behaviour at every shop."""
    row = await segments.create(
        session, merchant_id=None, name=body.name, match=body.match, conditions=body.rules
    )
    return _out(row)


@router.post("/admin/segments/preview")
async def preview_platform_segment(body: RulesBody, admin: Admin, session: Session) -> CountOut:
    count = await segments.preview(
        session, merchant_id=None, match=body.match, conditions=body.rules
    )
    return CountOut(count=count)


@router.get("/admin/segments/{platform_segment_id}")
async def get_platform_segment(
    platform_segment_id: IdPath, admin: Admin, session: Session
) -> SegmentOut:
    return _out(await segments.get(session, segment_id=platform_segment_id, merchant_id=None))


@router.put("/admin/segments/{platform_segment_id}")
async def update_platform_segment(
    platform_segment_id: IdPath, body: SegmentIn, admin: Admin, session: Session
) -> SegmentOut:
    row = await segments.update_segment(
        session,
        segment_id=platform_segment_id,
        merchant_id=None,
        name=body.name,
        match=body.match,
        conditions=body.rules,
    )
    return _out(row)


@router.delete("/admin/segments/{platform_segment_id}", status_code=204)
async def delete_platform_segment(
    platform_segment_id: IdPath, admin: Admin, session: Session
) -> Response:
    await segments.delete_segment(session, segment_id=platform_segment_id, merchant_id=None)
    return Response(status_code=204)


@router.get("/admin/segments/{platform_segment_id}/members")
async def platform_segment_members(
    platform_segment_id: IdPath, admin: Admin, session: Session, page: Paging
) -> Page[MemberOut]:
    return await _members(session, None, platform_segment_id, page)


@router.get(
    "/admin/segments/{platform_segment_id}/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_platform_segment(
    request: Request, platform_segment_id: IdPath, admin: Admin, session: Session
) -> StreamingResponse:
    segment = await segments.get(session, segment_id=platform_segment_id, merchant_id=None)
    return export_response(request, segment=segment)
