"""Search over the catalogue: an in-memory index per process, a follower of the catalogue
replica (see catalog/feed.py), so a published product is findable at the next query in every
process and there is no search server to run."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog import feed
from mobimart.catalog.view import ProductView
from mobimart.search.engine import SearchIndex

MAX_RESULTS = 1000


class _Follower:
    def __init__(self) -> None:
        self.index = SearchIndex()

    def apply(self, changed: list[ProductView], removed: list[int]) -> None:
        for view in changed:
            self.index.add(view.id, view.search_fields())
        for product_id in removed:
            self.index.remove(product_id)


async def index(session: AsyncSession) -> SearchIndex:
    return (await feed.follower(session, "search", _Follower)).index


async def search(session: AsyncSession, *, query: str, limit: int = 20) -> list[ProductView]:
    found = await ids(session, query=query, limit=limit)
    views = (await feed.replica(session)).views
    return [views[i] for i in found if i in views]


async def ids(session: AsyncSession, *, query: str, limit: int = MAX_RESULTS) -> list[int]:
    """Matching product ids, best first."""
    return (await index(session)).search(query, limit=min(limit, MAX_RESULTS))


async def suggest(session: AsyncSession, *, prefix: str, limit: int = 8) -> list[str]:
    return (await index(session)).suggest(prefix, limit=limit)
