"""Reports: people flag a review, question, answer or chat message; an admin removes or keeps it.

Reports on the same piece of content are one case in the queue: the admin sees how many people
flagged it and why, and one decision settles every open report on it. A person reports a piece
of content once (a second report is a 409 `already_reported`, whatever the first one's outcome);
and only content they can see: anything else is a 404, so a report is no way to probe for ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.db import unique_or, utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.infra.pubsub import Broker
from mobimart.merchants.models import MerchantMember
from mobimart.moderation import service as moderation
from mobimart.moderation.models import Report
from mobimart.notifications import service as notifications
from mobimart.social import chat, questions, reviews
from mobimart.social.models import Answer, Conversation, Message, Question, Review
from mobimart.text import clean
from mobimart.web.i18n import stored as _
from mobimart.web.pagination import PageParams

Subject = Literal["review", "question", "answer", "message"]
Status = Literal["open", "removed", "dismissed"]
Action = Literal["remove", "dismiss"]


OUTCOME_TITLES: dict[tuple[Subject, Action], str] = {
    ("review", "remove"): _("A review you reported was removed. Thank you."),
    ("question", "remove"): _("A question you reported was removed. Thank you."),
    ("answer", "remove"): _("An answer you reported was removed. Thank you."),
    ("message", "remove"): _("A chat message you reported was removed. Thank you."),
    ("review", "dismiss"): _("A review you reported was checked and stays up."),
    ("question", "dismiss"): _("A question you reported was checked and stays up."),
    ("answer", "dismiss"): _("An answer you reported was checked and stays up."),
    ("message", "dismiss"): _("A chat message you reported was checked and stays up."),
}
PREVIEW_CHARS = 200
REASONS_SHOWN = 5


@dataclass(frozen=True)
class Content:
    """What a report points at, as the admin queue shows it."""

    subject: Subject
    subject_id: int
    author_id: int | None
    text: str  # the first PREVIEW_CHARS characters; "" for an image message
    kind: str  # text, or a message's kind (image, product, order)
    hidden: bool
    product_id: int | None  # where a review, question or answer is shown


@dataclass(frozen=True)
class Case:
    """Every report on one piece of content in one status."""

    report_id: int  # the newest report: the case's handle in the queue
    subject: Subject
    subject_id: int
    reports: int
    reasons: list[str]
    first_reported_at: dt.datetime
    last_reported_at: dt.datetime
    content: Content | None  # None when the content has since been deleted


# --- reading the content -----------------------------------------------------------------------


async def _contents(
    session: AsyncSession, subject: Subject, ids: Sequence[int]
) -> dict[int, Content]:
    if not ids:
        return {}
    found: dict[int, Content] = {}
    if subject == "review":
        for r in await session.scalars(select(Review).where(Review.id.in_(ids))):
            found[r.id] = Content(
                subject,
                r.id,
                r.user_id,
                r.body[:PREVIEW_CHARS],
                "text",
                r.hidden_at is not None,
                r.product_id,
            )
    elif subject == "question":
        for q in await session.scalars(select(Question).where(Question.id.in_(ids))):
            found[q.id] = Content(
                subject,
                q.id,
                q.user_id,
                q.body[:PREVIEW_CHARS],
                "text",
                q.hidden_at is not None,
                q.product_id,
            )
    elif subject == "answer":
        rows = await session.execute(
            select(Answer, Question.product_id, Question.hidden_at)
            .join(Question, Question.id == Answer.question_id)
            .where(Answer.id.in_(ids))
        )
        for a, product_id, question_hidden in rows:
            hidden = a.hidden_at is not None or question_hidden is not None
            found[a.id] = Content(
                subject, a.id, a.user_id, a.body[:PREVIEW_CHARS], "text", hidden, product_id
            )
    else:
        for m in await session.scalars(select(Message).where(Message.id.in_(ids))):
            found[m.id] = Content(
                subject,
                m.id,
                m.sender_id,
                m.body[:PREVIEW_CHARS] if m.kind == "text" else "",
                m.kind,
                m.hidden_at is not None,
                None,
            )
    return found


async def _visible(
    session: AsyncSession, *, subject: Subject, subject_id: int, user: User
) -> Content:
    """The content as `user` may see it, or 404. Reviews, questions and answers that are shown
    are public; a chat message is seen only by the conversation's consumer and the shop's staff."""
    content = (await _contents(session, subject, [subject_id])).get(subject_id)
    if content is None or content.hidden:
        raise NotFound(subject.capitalize())
    if subject == "message":
        merchant_id, consumer_id = (
            await session.execute(
                select(Conversation.merchant_id, Conversation.user_id)
                .join(Message, Message.conversation_id == Conversation.id)
                .where(Message.id == subject_id)
            )
        ).one()
        if consumer_id != user.id:
            member = await session.scalar(
                select(MerchantMember.id).where(
                    MerchantMember.merchant_id == merchant_id, MerchantMember.user_id == user.id
                )
            )
            if member is None:
                raise NotFound("Message")
    return content


# --- reporting ---------------------------------------------------------------------------------


async def report(
    session: AsyncSession, *, user: User, subject: Subject, subject_id: int, reason: str
) -> Report:
    content = await _visible(session, subject=subject, subject_id=subject_id, user=user)
    if content.author_id == user.id:
        raise DomainError("own_content", "You cannot report what you wrote yourself.", 422)
    text = clean(reason, 200)
    if not text:
        raise DomainError("invalid_reason", "Say in a few words what is wrong with it.", 422)
    await moderation.limit(session, user_id=user.id, action="report")
    row = Report(reporter_id=user.id, subject=subject, subject_id=subject_id, reason=text)
    duplicate = Conflict("already_reported", "You have reported this already; thank you.")
    async with unique_or(session, duplicate):
        session.add(row)
    await session.commit()
    return row


# --- the admin queue ---------------------------------------------------------------------------


async def queue(session: AsyncSession, *, status: Status, page: PageParams) -> list[Case]:
    """Cases in one status, the most recently reported first: a case that people keep
    reporting comes back to the top. Cursor: the newest report id of the last case shown."""
    newest = func.max(Report.id)
    query = (
        select(
            Report.subject,
            Report.subject_id,
            func.count().label("reports"),
            newest.label("last_id"),
            func.min(Report.created_at).label("first_at"),
            func.max(Report.created_at).label("last_at"),
        )
        .where(Report.status == status)
        .group_by(Report.subject, Report.subject_id)
    )
    if page.before_id is not None:
        query = query.having(newest < page.before_id)
    groups = (await session.execute(query.order_by(newest.desc()).limit(page.fetch))).all()
    if not groups:
        return []
    keys = [(cast(Subject, g.subject), int(g.subject_id)) for g in groups]
    by_subject: dict[Subject, list[int]] = {}
    for subject, subject_id in keys:
        by_subject.setdefault(subject, []).append(subject_id)
    contents: dict[tuple[Subject, int], Content] = {}
    for subject, ids in by_subject.items():
        for cid, content in (await _contents(session, subject, ids)).items():
            contents[subject, cid] = content
    # One query for the reasons of the whole page (ids of other kinds are filtered out here).
    reasons: dict[tuple[str, int], list[str]] = {key: [] for key in keys}
    rows = await session.execute(
        select(Report.subject, Report.subject_id, Report.reason)
        .where(Report.status == status, Report.subject_id.in_({i for _, i in keys}))
        .order_by(Report.id)
    )
    for subject_name, subject_id, reason in rows:
        shown = reasons.get((subject_name, subject_id))
        if shown is not None and reason not in shown and len(shown) < REASONS_SHOWN:
            shown.append(reason)
    return [
        Case(
            report_id=g.last_id,
            subject=key[0],
            subject_id=key[1],
            reports=g.reports,
            reasons=reasons[key],
            first_reported_at=g.first_at,
            last_reported_at=g.last_at,
            content=contents.get(key),
        )
        for key, g in zip(keys, groups, strict=True)
    ]


async def open_count(session: AsyncSession) -> int:
    """How many pieces of content wait for a decision."""
    cases = select(Report.subject, Report.subject_id).where(Report.status == "open").distinct()
    return int(await session.scalar(select(func.count()).select_from(cases.subquery())) or 0)


@dataclass(frozen=True)
class Resolution:
    subject: Subject
    subject_id: int
    status: Status
    reports: int  # how many open reports it settled


async def resolve(
    session: AsyncSession,
    *,
    report_id: int,
    action: Action,
    admin: User,
    broker: Broker | None = None,
) -> Resolution:
    """Settle every open report on the content `report_id` points at; "remove" hides the
    content (kept, not shown), "dismiss" leaves it. With the `broker`, a removed chat message
    is taken off the threads open on screen too.

    The reports are closed first, with a conditional UPDATE: of two admins deciding at once,
    one closes them and acts on the content, the other gets a 409 and changes nothing."""
    found = await session.get(Report, report_id)
    if found is None:
        raise NotFound("Report")
    subject: Subject = found.subject  # type: ignore[assignment]
    subject_id = found.subject_id
    status: Status = "removed" if action == "remove" else "dismissed"
    reporters = list(
        await session.scalars(
            update(Report)
            .where(
                Report.subject == subject, Report.subject_id == subject_id, Report.status == "open"
            )
            .values(status=status, resolved_by=admin.id, resolved_at=utcnow())
            .returning(Report.reporter_id)
            .execution_options(synchronize_session=False)
        )
    )
    if not reporters:
        raise Conflict("already_resolved", "These reports have been dealt with already.")
    if action == "remove":
        await hide(session, subject=subject, subject_id=subject_id, broker=broker)
    for reporter_id in reporters:  # people who report want to know it was worth it
        await notifications.notify(
            session,
            user_id=reporter_id,
            kind="system",
            title=OUTCOME_TITLES[subject, action],
            key=f"report:{subject}:{subject_id}",
        )
    await session.commit()
    return Resolution(subject, subject_id, status, len(reporters))


async def hide(
    session: AsyncSession, *, subject: Subject, subject_id: int, broker: Broker | None = None
) -> None:
    """Take content out of view, kept for the record, each through its own service: reviews
    keep ratings right, questions answer counts, and a chat message reaches the open threads
    (through `broker`, after the commit) as removed."""
    if subject == "review":
        await reviews.hide(session, review_id=subject_id)
    elif subject == "question":
        await questions.hide_question(session, question_id=subject_id)
    elif subject == "answer":
        await questions.hide_answer(session, answer_id=subject_id)
    else:
        await chat.hide_message(session, message_id=subject_id, broker=broker)
