"""Background jobs on Huey: SQLite storage in ./var by default, Redis when configured."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from huey import Huey, RedisHuey, SqliteHuey

from mobimart.db import Database
from mobimart.settings import Settings, get_settings

T = TypeVar("T")


def make_huey(settings: Settings) -> Huey:
    if settings.redis_url:
        return RedisHuey("mobimart", url=settings.redis_url)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("mobimart", filename=str(settings.var_dir / "jobs.db"))


huey = make_huey(get_settings())


def run_with_db(job: Callable[[Database], Awaitable[T]]) -> T:
    """Huey tasks are synchronous; each runs its async body on a fresh engine and loop."""

    async def main() -> T:
        database = Database(get_settings().database_url, null_pool=True)
        try:
            return await job(database)
        finally:
            await database.dispose()

    return asyncio.run(main())
