"""Segments: rules (rules.py) evaluated in SQL, members kept as events happen."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


async def on_event(session: AsyncSession, *, user_id: int, kind: str | None) -> None:
    """Re-evaluate the person's membership of the segments whose rules read `kind` (all of
    them when None)."""
    # Placeholder until segments land (issue 6, in progress).
