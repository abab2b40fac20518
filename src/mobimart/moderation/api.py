from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from mobimart.moderation import reports
from mobimart.moderation import service as moderation
from mobimart.moderation.models import BlockedWord, Report
from mobimart.moderation.schemas import (
    BlockedWordIn,
    BlockedWordOut,
    CaseOut,
    ContentOut,
    ReportIn,
    ReportOut,
    ResolvedOut,
    ResolveIn,
)
from mobimart.text import clean
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["moderation"])
Paging = Annotated[PageParams, Depends(page_params)]


def word_out(row: BlockedWord) -> BlockedWordOut:
    return BlockedWordOut(id=row.id, word=row.word, created_at=row.created_at)


def case_out(case: reports.Case) -> CaseOut:
    c = case.content
    return CaseOut(
        report_id=case.report_id,
        subject=case.subject,
        subject_id=case.subject_id,
        reports=case.reports,
        reasons=case.reasons,
        first_reported_at=case.first_reported_at,
        last_reported_at=case.last_reported_at,
        content=ContentOut(
            author_id=c.author_id,
            kind=c.kind,
            preview=c.text,
            hidden=c.hidden,
            product_id=c.product_id,
        )
        if c
        else None,
    )


@router.get("/admin/blocked-words")
async def list_words(
    admin: Admin,
    session: Session,
    page: Paging,
    prefix: Annotated[str, Query(max_length=60)] = "",
) -> Page[BlockedWordOut]:
    """The word list, newest first; `prefix` narrows it (matched after normalising)."""
    rows = await moderation.words(session, page=page, prefix=clean(prefix, 60))
    return make_page(rows, page, word_out, key=lambda w: w.id)


@router.post("/admin/blocked-words", status_code=201)
async def add_word(body: BlockedWordIn, admin: Admin, session: Session) -> BlockedWordOut:
    """Add one word; screening refuses it from the next write on, in every process."""
    row = await moderation.add_word(session, word=body.word, admin_id=admin.id)
    await session.commit()
    return word_out(row)


@router.delete("/admin/blocked-words/{word_id}", status_code=204)
async def remove_word(word_id: IdPath, admin: Admin, session: Session) -> Response:
    await moderation.remove_word(session, word_id=word_id)
    await session.commit()
    return Response(status_code=204)


@router.post("/reports", status_code=201)
async def report(body: ReportIn, user: CurrentUser, session: Session) -> ReportOut:
    """Flag a review, question, answer or chat message you can see. Once per person and
    content: a second report is a 409 `already_reported`."""
    row: Report = await reports.report(
        session, user=user, subject=body.subject, subject_id=body.subject_id, reason=body.reason
    )
    return ReportOut(
        id=row.id,
        subject=body.subject,
        subject_id=row.subject_id,
        reason=row.reason,
        status="open",
        created_at=row.created_at,
    )


@router.get("/admin/reports")
async def report_queue(
    admin: Admin, session: Session, page: Paging, status: reports.Status = "open"
) -> Page[CaseOut]:
    """Reported content, one entry per piece of content with how many people reported it,
    the most recently reported first."""
    cases = await reports.queue(session, status=status, page=page)
    return make_page(cases, page, case_out, key=lambda c: c.report_id)


@router.post("/admin/reports/{report_id}/resolve")
async def resolve(
    report_id: IdPath, body: ResolveIn, request: Request, admin: Admin, session: Session
) -> ResolvedOut:
    """Remove (hide) or keep the reported content; settles every open report on it."""
    done = await reports.resolve(
        session,
        report_id=report_id,
        action=body.action,
        admin=admin,
        broker=request.app.state.chat.broker,
    )
    return ResolvedOut(
        subject=done.subject, subject_id=done.subject_id, status=done.status, reports=done.reports
    )
