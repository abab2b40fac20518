"""Search over the catalogue: one in-memory index per process and database, kept current from
the catalogue's change feed at every query (a published product is findable at the next query
in every process; no search server to run)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog import service as catalog
from mobimart.catalog.models import Product
from mobimart.search.engine import SearchIndex

MAX_RESULTS = 100


# On PostgreSQL a change with a lower id can commit after a higher one: ids skipped over are
# looked for again at each query for a minute, longer than any catalogue transaction takes.
GAP_PATIENCE_S = 60.0
# The feed is read at most this often per process: a change is findable within a second, and
# most queries skip the round trip (a third of a query's time on SQLite).
FEED_POLL_S = 0.25


@dataclass
class _Live:
    index: SearchIndex
    last_change: int
    gaps: dict[int, float] = field(default_factory=dict)  # change id -> when first missed
    polled_at: float = 0.0


# Keyed by database URL: tests and tools may talk to several databases in one process.
_indexes: dict[str, _Live] = {}


async def _current(session: AsyncSession) -> SearchIndex:
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    live = _indexes.get(key)
    if live is None:
        # The high-water mark first: changes made during the build are replayed, not lost.
        last = await catalog.latest_change(session)
        index = SearchIndex()
        for doc in await catalog.search_documents(session):
            index.add(doc.product_id, doc.fields)
        live = _indexes[key] = _Live(index, last)
    now = time.monotonic()
    if now - live.polled_at < FEED_POLL_S:
        return live.index
    live.polled_at = now
    while changes := await catalog.changes_since(
        session, after_id=live.last_change, also=list(live.gaps)
    ):
        changed = sorted({c.product_id for c in changes})
        documents = {
            d.product_id: d for d in await catalog.search_documents(session, product_ids=changed)
        }
        for product_id in changed:
            found = documents.get(product_id)
            if found is None:
                live.index.remove(product_id)  # unpublished, archived or merchant suspended
            else:
                live.index.add(product_id, found.fields)
        _advance(live, [c.id for c in changes])
    return live.index


def _advance(live: _Live, seen: list[int]) -> None:
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


async def search(session: AsyncSession, *, query: str, limit: int = 20) -> list[Product]:
    index = await _current(session)
    ids = index.search(query, limit=min(limit, MAX_RESULTS))
    return await catalog.products_by_ids(session, product_ids=ids)


async def suggest(session: AsyncSession, *, prefix: str, limit: int = 8) -> list[str]:
    return (await _current(session)).suggest(prefix, limit=limit)
