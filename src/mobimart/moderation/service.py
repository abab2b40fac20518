"""Moderation shared by every kind of user content: the admin-managed word list that screens
text before it is stored, and per-user rate limits on writing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.db import unique_or
from mobimart.errors import Conflict, DomainError, NotFound, TooManyRequests
from mobimart.infra import throttle
from mobimart.moderation.domain import WordFilter, normalise
from mobimart.moderation.models import BlockedWord
from mobimart.web.pagination import PageParams

# (events, window) per user and action: enough for any person, too few for a spam script.
# Chat allows bursts (people type several short lines) but not a flood.
LIMITS: dict[str, tuple[int, dt.timedelta]] = {
    "review": (20, dt.timedelta(hours=1)),
    "question": (20, dt.timedelta(hours=1)),
    "answer": (40, dt.timedelta(hours=1)),
    "message": (30, dt.timedelta(seconds=10)),
    "report": (20, dt.timedelta(hours=1)),
}

# The filter is rebuilt when the list changes; (count, newest id) changes with every add or
# remove, so each process notices an admin's change at its next check.
_cached: tuple[tuple[int, int], WordFilter] | None = None


async def word_filter(session: AsyncSession) -> WordFilter:
    global _cached
    count, newest = (
        await session.execute(select(func.count(), func.coalesce(func.max(BlockedWord.id), 0)))
    ).one()
    version = (int(count), int(newest))
    if _cached is None or _cached[0] != version:
        words = await session.scalars(select(BlockedWord.word))
        _cached = (version, WordFilter(words))
    return _cached[1]


async def screen(session: AsyncSession, *texts: str) -> None:
    """Refuse text with a listed word, naming what to change (as typed, so people find it)."""
    wf = await word_filter(session)
    found: list[str] = []
    for text in texts:
        for match in wf.find(text):
            typed = text[match.start : match.end]
            if typed not in found:
                found.append(typed)
    if found:
        shown = ", ".join(f"“{w}”" for w in found[:5])
        raise DomainError(
            "blocked_words",
            f"Your text contains words that are not allowed here: {shown}. "
            "Please change them and try again.",
            422,
            words=found[:5],
        )


async def limit(session: AsyncSession, *, user_id: int, action: str) -> None:
    events, window = LIMITS[action]
    refusal = await throttle.take(session, key=f"{action}:{user_id}", limit=events, window=window)
    if refusal is not None:
        raise TooManyRequests(
            f"You are doing that too often; try again in {refusal.retry_after} s.",
            refusal.retry_after,
        )


async def words(session: AsyncSession, *, page: PageParams, prefix: str = "") -> list[BlockedWord]:
    query = select(BlockedWord)
    if prefix:
        query = query.where(BlockedWord.word.startswith(normalise(prefix), autoescape=True))
    if page.before_id is not None:
        query = query.where(BlockedWord.id < page.before_id)
    return list(await session.scalars(query.order_by(BlockedWord.id.desc()).limit(page.fetch)))


async def add_word(session: AsyncSession, *, word: str, admin_id: int) -> BlockedWord:
    text = normalise(word.strip())
    if not text or len(text) > 60 or WordFilter([text]).clean(text):
        # The last test catches words made only of separators, which would match nothing.
        raise DomainError("invalid_word", "A word is 1 to 60 letters, not only punctuation.", 422)
    # The filter ignores separators, so "刷 单" is "刷单"; and a word containing a listed one
    # ("加微信号" beside "加微信") is refused already. Neither would change what is blocked.
    for match in (await word_filter(session)).find(text):
        same = match.start == 0 and match.end == len(text)
        raise Conflict(
            "word_exists",
            f"“{text}” is on the list already."
            if same
            else f"“{text}” is blocked already, by “{match.word}”.",
        )
    row = BlockedWord(word=text, added_by=admin_id)
    async with unique_or(session, Conflict("word_exists", f"“{text}” is on the list already.")):
        session.add(row)
    return row


async def remove_word(session: AsyncSession, *, word_id: int) -> None:
    result = await session.execute(delete(BlockedWord).where(BlockedWord.id == word_id))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("Word")
