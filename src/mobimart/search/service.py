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


def index(live: feed.Replica) -> SearchIndex:
    return feed.follower(live, "search", _Follower).index


def ids(live: feed.Replica, *, query: str, limit: int = MAX_RESULTS) -> list[int]:
    """Matching product ids, best first."""
    return index(live).search(query, limit=min(limit, MAX_RESULTS))


async def search(session: AsyncSession, *, query: str, limit: int = 20) -> list[ProductView]:
    live = await feed.replica(session)
    return [live.views[i] for i in ids(live, query=query, limit=limit) if i in live.views]


async def suggest(session: AsyncSession, *, prefix: str, limit: int = 8) -> list[str]:
    return index(await feed.replica(session)).suggest(prefix, limit=limit)
