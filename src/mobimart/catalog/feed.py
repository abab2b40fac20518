"""The catalogue as every process sees it: the views of all visible products, held in memory
and kept current from the change feed, with followers (the search index, the listing index)
told of each change. A change is visible in every process at its next read after the poll
interval; there is no server to run and no full rebuild after the first load."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mobimart.catalog import service as catalog
from mobimart.catalog.models import ProductChange
from mobimart.catalog.view import ProductView, load_views
from mobimart.db import Database
from mobimart.search import synonyms
from mobimart.search.synonyms import Groups, Signature

# On PostgreSQL a change with a lower id can commit after a higher one: ids skipped over are
# looked for again at each poll for a minute, longer than any catalogue transaction takes.
GAP_PATIENCE_S = 60.0
# The feed is read at most this often per process: a change is visible within a second, and
# most requests skip the round trip.
FEED_POLL_S = 0.25


class Follower(Protocol):
    def apply(self, changed: list[ProductView], removed: list[int]) -> None:
        """Take in new or changed views and forget removed products. Idempotent."""


F = TypeVar("F", bound=Follower)


@dataclass
class Replica:
    views: dict[int, ProductView]
    last_change: int
    gaps: dict[int, float] = field(default_factory=dict)  # change id -> when first missed
    polled_at: float = 0.0
    followers: dict[str, Follower] = field(default_factory=dict)
    # Search synonyms travel with the catalogue: a new group applies at the next poll.
    synonyms: Groups = field(default_factory=list)
    synonyms_seen: Signature = (0, "")

    def apply(self, changed: list[ProductView], removed: list[int]) -> None:
        for view in changed:
            self.views[view.id] = view
        for product_id in removed:
            self.views.pop(product_id, None)
        for follower in self.followers.values():
            follower.apply(changed, removed)


# Keyed by database URL: tests and tools may talk to several databases in one process.
_replicas: dict[str, Replica] = {}


def reset() -> None:
    """Forget every replica (tests switch databases and empty them)."""
    _replicas.clear()


def _key(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=True)


async def current(database: Database) -> Replica:
    """The replica, opening a database session only when the feed has news: the busiest read
    requests need no session at all."""
    live = _replicas.get(_key(database.engine))
    if live is not None:
        now = time.monotonic()
        if now - live.polled_at < FEED_POLL_S:
            return live
        if not live.gaps and _unchanged(database, live):
            live.polled_at = now
            return live
    async with database.session() as session:
        return await replica(session)


def _news() -> Select[Any]:
    """What tells a replica whether anything changed: the newest change id, then the synonym
    groups' signature."""
    newest = select(func.coalesce(func.max(ProductChange.id), 0)).scalar_subquery()
    return select(newest, *synonyms.signature_columns())


# SQLite only: "anything new?" asked on the event loop's own thread (tens of microseconds on a
# local file). Through aiosqlite's thread, under load, that question made the slowest 1 % of
# requests wait 100 ms (bench/RESULTS.md, browse).
_PEEK_SQL = str(_news().compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
_peekers: dict[str, sqlite3.Connection] = {}


def _unchanged(database: Database, live: Replica) -> bool:
    url = database.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return False
    try:
        peeker = _peekers.get(url.database)
        if peeker is None:
            peeker = _peekers[url.database] = sqlite3.connect(url.database)
        newest, count, latest = peeker.execute(_PEEK_SQL).fetchone()
    except sqlite3.Error:
        return False  # the full read will say what is wrong
    return bool(newest == live.last_change and (count, latest) == live.synonyms_seen)


async def replica(session: AsyncSession) -> Replica:
    """This process's replica of the catalogue, current to within FEED_POLL_S."""
    key = _key(session.get_bind().engine)  # type: ignore[arg-type]
    live = _replicas.get(key)
    if live is None:
        # The high-water mark first: changes made during the load are replayed, not lost.
        last = (await session.execute(_news())).one()[0]
        live = _replicas[key] = Replica(await load_views(session), last)
    now = time.monotonic()
    if now - live.polled_at < FEED_POLL_S:
        return live
    live.polled_at = now
    newest, count, latest = (await session.execute(_news())).one()
    while (newest != live.last_change or live.gaps) and (
        changes := await catalog.changes_since(
            session, after_id=live.last_change, also=list(live.gaps)
        )
    ):
        changed = sorted({c.product_id for c in changes})
        views = await load_views(session, product_ids=changed)
        # Not found: unpublished, archived, or its merchant suspended.
        live.apply(list(views.values()), [i for i in changed if i not in views])
        _advance(live, [c.id for c in changes])
    seen = (int(count), str(latest))
    if seen != live.synonyms_seen:
        live.synonyms = await synonyms.all_groups(session)
        live.synonyms_seen = seen
        live.apply([], [])  # no product changed, but search results may have
    return live


def follower(live: Replica, name: str, make: Callable[[], F]) -> F:
    """The replica's follower called `name`, made and fed every view on first use."""
    found = live.followers.get(name)
    if found is None:
        found = make()
        found.apply(list(live.views.values()), [])
        live.followers[name] = found
    return found  # type: ignore[return-value]  # one factory per name


def _advance(live: Replica, seen: list[int]) -> None:
    now = time.monotonic()
    newest = max(seen)
    seen_set = set(seen)
    for missing in range(live.last_change + 1, newest):
        if missing not in seen_set:
            live.gaps.setdefault(missing, now)
    for change_id in seen_set:
        live.gaps.pop(change_id, None)
    for change_id, since in list(live.gaps.items()):
        if now - since > GAP_PATIENCE_S:
            del live.gaps[change_id]  # a rolled-back transaction: the id will never appear
    live.last_change = max(live.last_change, newest)
