"""The limiter under bursts: never more than the limit, never refusing while there is room."""

from __future__ import annotations

import asyncio
import datetime as dt

from mobimart.db import Database
from mobimart.infra import throttle

HOUR = dt.timedelta(hours=1)


async def _burst(db: Database, n: int, **kwargs: object) -> list[throttle.Refusal | None]:
    async def one() -> throttle.Refusal | None:
        async with db.session() as s:
            refusal = await throttle.take(s, key="burst", **kwargs)  # type: ignore[arg-type]
            await s.commit()
            return refusal

    return await asyncio.gather(*(one() for _ in range(n)))


async def test_a_burst_within_the_limit_is_admitted_whole(db: Database) -> None:
    results = await _burst(db, 20, limit=50, window=HOUR)
    assert results == [None] * 20


async def test_a_burst_over_the_limit_admits_exactly_the_limit(db: Database) -> None:
    results = await _burst(db, 20, limit=5, window=HOUR)
    refusals = [r for r in results if r is not None]
    assert len(refusals) == 15
    # The reason is the full window, with its real wait, not "try again in a second".
    assert all(not r.too_soon and r.retry_after > 3500 for r in refusals)


async def test_spacing_admits_one_of_a_burst(db: Database) -> None:
    results = await _burst(db, 10, limit=50, window=HOUR, min_interval=dt.timedelta(seconds=60))
    refusals = [r for r in results if r is not None]
    assert len(refusals) == 9
    assert all(r.too_soon and 55 <= r.retry_after <= 61 for r in refusals)


async def test_a_rolled_back_event_is_not_counted(db: Database) -> None:
    async with db.session() as s:
        assert await throttle.take(s, key="k", limit=1, window=HOUR) is None
        await s.rollback()
    async with db.session() as s:
        assert await throttle.take(s, key="k", limit=1, window=HOUR) is None
        await s.commit()
    async with db.session() as s:
        refusal = await throttle.take(s, key="k", limit=1, window=HOUR)
        assert refusal is not None
        assert not refusal.too_soon
