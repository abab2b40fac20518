"""Admin pages for the word list and the report queue, and the Report form every page can
show (`moderation/report_button.html`)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.errors import Conflict, DomainError
from mobimart.moderation import reports
from mobimart.moderation import service as moderation
from mobimart.moderation.reasons import REASONS
from mobimart.text import clean
from mobimart.web.deps import PageAdmin, PageUser, Session
from mobimart.web.forms import message_of, safe_next, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import PageParams, page_params, split_page
from mobimart.web.schemas import MAX_ID, IdPath
from mobimart.web.templating import render, templates, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
Paging = Annotated[PageParams, Depends(page_params)]

NOTICES = {
    "added": "Word added. New text with it is refused from now on.",
    "deleted": "Word removed from the list.",
    "removed": "Removed: the content is hidden from everyone.",
    "dismissed": "Dismissed: the content stays up.",
}
# The report button, on pages of any domain, lists the reasons the handler below takes.
templates.env.globals["REPORT_REASONS"] = REASONS
# The report button's outcomes (the codes the form comes back with), by the error's code.
OUTCOMES = {"already_reported", "own_content", "rate_limited", "not_found"}


def _notice(code: str) -> str | None:
    return _(NOTICES[code]) if code in NOTICES else None


# --- the word list -----------------------------------------------------------------------------


async def _words_page(
    request: Request,
    session: AsyncSession,
    admin: User,
    page: PageParams,
    *,
    prefix: str = "",
    status: int = 200,
    **ctx: object,
) -> Response:
    rows = await moderation.words(session, page=page, prefix=prefix)
    words, next_cursor = split_page(rows, page, key=lambda w: w.id)
    return render(
        request,
        "moderation/words.html",
        {
            "user": admin,
            "tab": "admin",
            "words": words,
            "next_cursor": next_cursor,
            "prefix": prefix,
            "open_cases": await reports.open_count(session),
            **ctx,
        },
        status=status,
    )


@router.get("/admin/words")
async def words_page(
    request: Request,
    admin: PageAdmin,
    session: Session,
    page: Paging,
    prefix: Annotated[str, Query(max_length=60)] = "",
    notice: str = "",
) -> Response:
    return await _words_page(
        request, session, admin, page, prefix=clean(prefix, 60), notice=_notice(notice)
    )


@router.post("/admin/words")
async def add_word(
    request: Request,
    admin: PageAdmin,
    session: Session,
    csrf_token: Csrf,
    word: Annotated[str, Form(max_length=200)],
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        await moderation.add_word(session, word=word, admin_id=admin.id)
    except DomainError as exc:
        await session.rollback()
        await session.refresh(admin)
        return await _words_page(
            request,
            session,
            admin,
            PageParams(None, 20),
            error=message_of(exc),
            typed=word[:60],
            status=exc.status,
        )
    await session.commit()
    return see_other("/admin/words", "added")


@router.post("/admin/words/{word_id}/delete")
async def delete_word(
    request: Request, word_id: IdPath, admin: PageAdmin, session: Session, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    await moderation.remove_word(session, word_id=word_id)
    await session.commit()
    return see_other("/admin/words", "deleted")


# --- the report queue --------------------------------------------------------------------------


async def _reports_page(
    request: Request,
    session: AsyncSession,
    admin: User,
    page: PageParams,
    *,
    status: reports.Status = "open",
    code: int = 200,
    **ctx: object,
) -> Response:
    cases = await reports.queue(session, status=status, page=page)
    shown, next_cursor = split_page(cases, page, key=lambda c: c.report_id)
    return render(
        request,
        "moderation/reports.html",
        {
            "user": admin,
            "tab": "admin",
            "cases": shown,
            "next_cursor": next_cursor,
            "status": status,
            **ctx,
        },
        status=code,
    )


@router.get("/admin/reports")
async def reports_page(
    request: Request,
    admin: PageAdmin,
    session: Session,
    page: Paging,
    status: reports.Status = "open",
    notice: str = "",
) -> Response:
    return await _reports_page(request, session, admin, page, status=status, notice=_notice(notice))


@router.post("/admin/reports/{report_id}/resolve")
async def resolve(
    request: Request,
    report_id: IdPath,
    admin: PageAdmin,
    session: Session,
    csrf_token: Csrf,
    action: Annotated[reports.Action, Form()],
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        done = await reports.resolve(
            session,
            report_id=report_id,
            action=action,
            admin=admin,
            broker=request.app.state.chat.broker,
        )
    except Conflict as exc:  # another admin was quicker: show the queue as it is now
        await session.rollback()
        await session.refresh(admin)
        return await _reports_page(
            request, session, admin, PageParams(None, 20), error=message_of(exc), code=exc.status
        )
    return see_other("/admin/reports", done.status)


# --- reporting, from any page ------------------------------------------------------------------


@router.post("/report")
async def report(
    request: Request,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    subject: Annotated[reports.Subject, Form()],
    subject_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    reason: Annotated[str, Form(max_length=40)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    """Back to the page the form was on; the report button there shows how it went, refused
    or not (the redirect carries codes, never words: a link cannot put text on our pages)."""
    verify_csrf(request, csrf_token)
    try:
        await reports.report(
            session,
            user=user,
            subject=subject,
            subject_id=subject_id,
            reason=REASONS.get(reason, REASONS["other"]),
        )
        outcome = "reported"
    except DomainError as exc:
        # Already reported (409), one's own content (422), too many reports (429), content
        # no longer shown (404): the form's page says so in place of the form.
        if exc.code not in OUTCOMES:
            raise
        await session.rollback()
        outcome = exc.code
    back = urlsplit(safe_next(next, "/"))
    query = [(k, v) for k, v in parse_qsl(back.query) if k not in ("reported", "notice")]
    query += [("reported", f"{subject}-{subject_id}"), ("notice", outcome)]
    return see_other(f"{back.path}?{urlencode(query)}#report-{subject}-{subject_id}")
