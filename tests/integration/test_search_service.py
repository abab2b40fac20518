from typing import Any

from mobimart.catalog import feed
from mobimart.catalog import service as catalog
from mobimart.catalog.feed import Replica, _advance
from mobimart.db import Database
from mobimart.search import service as search
from tests import factories


async def _shop(db: Database, make_user: Any, n: int = 1) -> Any:
    owner, admin = await make_user(), await make_user(admin=True)
    return await factories.merchant(db, owner, admin=admin, n=n)


async def test_published_products_are_found_by_relevance(db: Database, make_user: Any) -> None:
    merchant = await _shop(db, make_user)
    async with db.session() as s:
        for name in ("Brass Door Knob", "Door Hinge Set", "Garden Hose 50 ft."):
            await catalog.create_product(
                s, merchant=merchant, name=name, price_minor=1000, stock=3, publish=True
            )
        await catalog.create_product(
            s, merchant=merchant, name="Door Knob Draft", price_minor=1000, stock=3
        )
        found = [p.name for p in await search.search(s, query="door knob")]
    assert found[0] == "Brass Door Knob"
    assert "Door Knob Draft" not in found  # drafts are not searchable
    assert "Garden Hose 50 ft." not in found


async def test_a_new_product_is_found_at_the_next_query(db: Database, make_user: Any) -> None:
    merchant = await _shop(db, make_user)
    async with db.session() as s:
        assert await search.search(s, query="lantern") == []  # the index exists from here
        await catalog.create_product(
            s, merchant=merchant, name="Paper Lantern", price_minor=500, stock=1, publish=True
        )
        assert [p.name for p in await search.search(s, query="lantrn")] == ["Paper Lantern"]
        assert await search.suggest(s, prefix="lan") == ["lantern"]


async def test_unapproved_merchants_products_are_not_found(db: Database, make_user: Any) -> None:
    owner = await make_user()
    await factories.merchant(db, owner, status="pending")
    async with db.session() as s:
        assert await search.search(s, query="anything") == []


def test_changes_committed_out_of_order_are_waited_for() -> None:
    live = Replica({}, last_change=10)
    _advance(live, [11, 13, 14])  # 12 is still in an open transaction
    assert live.last_change == 14
    assert set(live.gaps) == {12}
    _advance(live, [12])  # it committed: applied late, no longer waited for
    assert live.gaps == {}
    assert live.last_change == 14


async def test_the_feed_is_read_at_most_every_interval(
    db: Database, make_user: Any, monkeypatch: Any
) -> None:
    import asyncio

    monkeypatch.setattr(feed, "FEED_POLL_S", 0.3)
    merchant = await _shop(db, make_user)
    async with db.session() as s:
        assert await search.search(s, query="kettle") == []
        await catalog.create_product(
            s, merchant=merchant, name="Steel Kettle", price_minor=500, stock=1, publish=True
        )
        assert await search.search(s, query="kettle") == []  # within the interval
        await asyncio.sleep(0.35)
        assert [p.name for p in await search.search(s, query="kettle")] == ["Steel Kettle"]


async def test_long_marketplace_titles_are_accepted(db: Database, make_user: Any) -> None:
    merchant = await _shop(db, make_user)
    title = "Ultra Durable " * 12  # 168 characters
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name=title, price_minor=500, stock=1, publish=True
        )
    assert product.name == title.strip()


async def test_edits_and_states_reach_search(db: Database, make_user: Any) -> None:
    import pytest

    from mobimart.errors import DomainError

    merchant = await _shop(db, make_user)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name="Bamboo Cutting Board", price_minor=900, stock=2
        )
        assert await search.search(s, query="cutting board") == []  # a draft
        await catalog.set_status(s, merchant=merchant, product_id=product.id, action="publish")
        assert len(await search.search(s, query="cutting board")) == 1
        await catalog.update_product(
            s, merchant=merchant, product_id=product.id, changes={"name": "Bamboo Serving Tray"}
        )
        assert await search.search(s, query="cutting board") == []
        assert len(await search.search(s, query="serving tray")) == 1
        await catalog.set_status(s, merchant=merchant, product_id=product.id, action="archive")
        assert await search.search(s, query="serving tray") == []
        with pytest.raises(DomainError) as err:
            await catalog.set_status(s, merchant=merchant, product_id=product.id, action="archive")
        assert err.value.code == "invalid_transition"
        with pytest.raises(DomainError) as err:
            await catalog.update_product(
                s, merchant=merchant, product_id=product.id, changes={"price_minor": 0}
            )
        assert err.value.code == "invalid_price"


async def test_synonym_changes_reach_the_replica_even_when_an_id_is_reused(
    db: Database, make_user: Any
) -> None:
    from mobimart.search import synonyms

    merchant = await _shop(db, make_user)
    async with db.session() as s:
        await catalog.create_product(
            s, merchant=merchant, name="Steel Kettle", price_minor=500, stock=1, publish=True
        )
        first = await synonyms.add_group(s, words=["pot", "kettle"], merchant_id=None)
        second = await synonyms.add_group(s, words=["boiler", "kettle"], merchant_id=None)
    assert [p.name for p in await _found(db, "boiler")] == ["Steel Kettle"]
    async with db.session() as s:
        await synonyms.delete_group(s, group_id=second.id, merchant_id=None)
        await synonyms.add_group(s, words=["jug", "kettle"], merchant_id=None)
    live = await feed.current(db)  # the path the busiest requests take
    assert len(live.synonyms) == 2
    assert [p.name for p in await _found(db, "jug")] == ["Steel Kettle"]
    assert await _found(db, "boiler") == []
    assert first.id


async def _found(db: Database, query: str) -> list[Any]:
    async with db.session() as s:
        return await search.search(s, query=query)
