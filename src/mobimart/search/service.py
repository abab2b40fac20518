"""Search over the catalogue: an in-memory index per process, a follower of the catalogue
replica (see catalog/feed.py), so a published product is findable at the next query in every
process and there is no search server to run."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog import feed
from mobimart.catalog.view import ProductView
from mobimart.search.engine import SearchIndex
from mobimart.search.synonyms import Groups

MAX_RESULTS = 1000


class _Follower:
    def __init__(self) -> None:
        self.index = SearchIndex()
        self.synonyms: Groups | None = None

    def apply(self, changed: list[ProductView], removed: list[int]) -> None:
        for view in changed:
            self.index.add(view.id, view.search_fields(), owner=view.merchant_id)
        for product_id in removed:
            self.index.remove(product_id)


def index(live: feed.Replica) -> SearchIndex:
    follower = feed.follower(live, "search", _Follower)
    if follower.synonyms is not live.synonyms:
        follower.index.set_synonyms(live.synonyms)
        follower.synonyms = live.synonyms
    return follower.index


def ids(live: feed.Replica, *, query: str, limit: int = MAX_RESULTS) -> list[int]:
    """Matching product ids, best first."""
    return index(live).search(query, limit=min(limit, MAX_RESULTS))


async def search(session: AsyncSession, *, query: str, limit: int = 20) -> list[ProductView]:
    live = await feed.replica(session)
    return [live.views[i] for i in ids(live, query=query, limit=limit) if i in live.views]


async def suggest(session: AsyncSession, *, prefix: str, limit: int = 8) -> list[str]:
    return index(await feed.replica(session)).suggest(prefix, limit=limit)
