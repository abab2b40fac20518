"""Rate limits as one conditional UPDATE per event, so parallel requests cannot slip past.

A counter per key holds a fixed window (start, count) and the time of the last event. An event
is admitted when the window has passed or still has room, and the last event is at least
`min_interval` old; the UPDATE that admits it is the check, so there is no read-then-write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import String, case, delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, insert_or_skip, utcnow

_LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class RateCounter(Base):
    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[dt.datetime]
    count: Mapped[int]
    last_at: Mapped[dt.datetime]


@dataclass(frozen=True)
class Refusal:
    retry_after: int
    too_soon: bool  # True: min_interval not yet passed; False: the window is full


async def take(
    session: AsyncSession,
    *,
    key: str,
    limit: int,
    window: dt.timedelta,
    min_interval: dt.timedelta = dt.timedelta(0),
) -> Refusal | None:
    """Count one event under `key` in the caller's transaction, or say why not."""
    now = utcnow()
    expired = RateCounter.window_start <= now - window
    conditions = [RateCounter.key == key, or_(expired, RateCounter.count < limit)]
    if min_interval:
        # Only where spacing is asked for: a parallel request may write a later last_at.
        conditions.append(RateCounter.last_at <= now - min_interval)
    for _ in range(2):  # a second pass if the hourly purge removed the row in between
        await session.execute(
            insert_or_skip(session, RateCounter, index_elements=["key"]).values(
                key=key, window_start=now, count=0, last_at=_LONG_AGO
            )
        )
        admitted = await session.execute(
            update(RateCounter)
            .where(*conditions)
            .values(
                count=case((expired, 1), else_=RateCounter.count + 1),
                window_start=case((expired, now), else_=RateCounter.window_start),
                last_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if admitted.rowcount == 1:  # type: ignore[attr-defined]
            return None
        row = await session.get(RateCounter, key, populate_existing=True)
        if row is not None:
            return _refusal(row, now=now, limit=limit, window=window, min_interval=min_interval)
    raise RuntimeError(f"rate counter {key!r} vanished twice")


def _refusal(
    row: RateCounter,
    *,
    now: dt.datetime,
    limit: int,
    window: dt.timedelta,
    min_interval: dt.timedelta,
) -> Refusal:
    # A full window is the stronger reason: its wait is the one that matters.
    window_left = (row.window_start + window - now).total_seconds()
    if row.count >= limit and window_left > 0:
        return Refusal(int(window_left) + 1, too_soon=False)
    spacing_left = (row.last_at + min_interval - now).total_seconds()
    return Refusal(max(1, int(spacing_left) + 1), too_soon=True)


async def purge(session: AsyncSession, *, older_than: dt.timedelta) -> int:
    result = await session.execute(
        delete(RateCounter).where(RateCounter.last_at < utcnow() - older_than)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
