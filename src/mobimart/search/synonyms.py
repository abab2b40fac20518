"""Synonym groups managed by platform admins (every product) and merchants (their own)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ScalarSelect, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.errors import DomainError
from mobimart.search.models import SynonymGroup
from mobimart.text import clean_name

MAX_WORDS = 10
WORD_MAX = 40
MAX_GROUPS_PER_OWNER = 500

Groups = list[tuple[list[str], int | None]]


def check_words(words: list[str]) -> list[str]:
    """2 to 10 different words or short phrases."""
    kept: dict[str, str] = {}
    for word in words:
        value = clean_name(str(word), WORD_MAX + 1)
        if not 1 <= len(value) <= WORD_MAX:
            raise DomainError(
                "invalid_synonyms", f"Each word or phrase has 1 to {WORD_MAX} characters.", 422
            )
        kept.setdefault(value.casefold(), value)
    if not 2 <= len(kept) <= MAX_WORDS:
        raise DomainError("invalid_synonyms", f"A group has 2 to {MAX_WORDS} different words.", 422)
    return list(kept.values())


async def add_group(
    session: AsyncSession, *, words: list[str], merchant_id: int | None
) -> SynonymGroup:
    checked = check_words(words)
    owned = (
        SynonymGroup.merchant_id.is_(None)
        if merchant_id is None
        else (SynonymGroup.merchant_id == merchant_id)
    )
    count = await session.scalar(select(func.count()).select_from(SynonymGroup).where(owned))
    if (count or 0) >= MAX_GROUPS_PER_OWNER:
        raise DomainError(
            "too_many_synonyms", f"At most {MAX_GROUPS_PER_OWNER} groups; remove some first.", 422
        )
    group = SynonymGroup(words=checked, merchant_id=merchant_id)
    session.add(group)
    await session.commit()
    return group


async def groups_of(session: AsyncSession, *, merchant_id: int | None) -> list[SynonymGroup]:
    owned = (
        SynonymGroup.merchant_id.is_(None)
        if merchant_id is None
        else (SynonymGroup.merchant_id == merchant_id)
    )
    return list(await session.scalars(select(SynonymGroup).where(owned).order_by(SynonymGroup.id)))


async def delete_group(session: AsyncSession, *, group_id: int, merchant_id: int | None) -> None:
    """Remove one of the owner's groups; a group that is gone (or not theirs) is left alone,
    so a retried request is not an error."""
    group = await session.get(SynonymGroup, group_id)
    if group is None or group.merchant_id != merchant_id:
        return
    await session.delete(group)
    await session.commit()


Signature = tuple[int, str]


def signature_columns() -> list[ScalarSelect[Any]]:
    """What changes when a group is added or removed: (count, latest creation time as text).
    A removal lowers the count; an addition raises the latest time, even if it reuses an id."""
    latest = func.coalesce(cast(func.max(SynonymGroup.created_at), String), "")
    return [
        select(func.count()).select_from(SynonymGroup).scalar_subquery(),
        select(latest).scalar_subquery(),
    ]


async def all_groups(session: AsyncSession) -> Groups:
    rows = await session.scalars(select(SynonymGroup).order_by(SynonymGroup.id))
    return [(list(g.words), g.merchant_id) for g in rows]
