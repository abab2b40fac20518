"""Following a shop: the API (PUT/DELETE, idempotent, counted), the shop page's button, and
the service the draws' "followers only" rule reads."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select, update

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.catalog import follows
from mobimart.catalog import service as catalog
from mobimart.catalog.models import ShopFollow
from mobimart.db import Database
from mobimart.web.deps import SESSION_COOKIE
from tests import factories
from tests.api.test_pages import csrf_of


async def _shop(db: Database, make_user: Any) -> int:
    admin, owner = await make_user(admin=True), await make_user()
    merchant = await factories.merchant(db, owner, admin=admin)
    async with db.session() as s:
        shop = await catalog.shop_for(s, merchant=merchant)
        await s.commit()
        return shop.id


async def test_follow_twice_counts_once_and_unfollow(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop_id = await _shop(db, make_user)
    a, b = await auth_headers(await make_user()), await auth_headers(await make_user())
    url = f"/api/v1/shops/{shop_id}/follow"
    assert (await client.put(url, headers=a)).json() == {"following": True, "follower_count": 1}
    assert (await client.put(url, headers=a)).json() == {"following": True, "follower_count": 1}
    assert (await client.put(url, headers=b)).json()["follower_count"] == 2
    assert (await client.delete(url, headers=a)).json() == {
        "following": False,
        "follower_count": 1,
    }
    assert (await client.delete(url, headers=a)).json()["follower_count"] == 1
    assert (await client.put(url)).status_code == 401
    assert (await client.put("/api/v1/shops/999999/follow", headers=a)).status_code == 404


async def test_a_shop_not_open_cannot_be_followed(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    from mobimart.catalog.models import Shop
    from mobimart.merchants.models import Merchant

    shop_id = await _shop(db, make_user)
    async with db.session() as s:
        merchant_id = await s.scalar(select(Shop.merchant_id).where(Shop.id == shop_id))
        await s.execute(
            update(Merchant).where(Merchant.id == merchant_id).values(status="rejected")
        )
        await s.commit()
    headers = await auth_headers(await make_user())
    assert (await client.put(f"/api/v1/shops/{shop_id}/follow", headers=headers)).status_code == 404


async def test_service_follow_unfollow_follows(db: Database, make_user: Any) -> None:
    shop_id = await _shop(db, make_user)
    person = await make_user()
    async with db.session() as s:
        assert await follows.follow(s, user_id=person.id, shop_id=shop_id) is True
        assert await follows.follow(s, user_id=person.id, shop_id=shop_id) is False
        await s.commit()
        assert await follows.follows(s, user_id=person.id, shop_id=shop_id)
        assert [x.id for x in await follows.followed(s, user_id=person.id)] == [shop_id]
        assert await follows.unfollow(s, user_id=person.id, shop_id=shop_id) is True
        assert await follows.unfollow(s, user_id=person.id, shop_id=shop_id) is False
        await follows.follow(s, user_id=person.id, shop_id=shop_id)
        await follows.unfollow_all(s, user_id=person.id)
        await s.commit()
        rows = await s.scalar(select(func.count()).select_from(ShopFollow))
    assert rows == 0


async def test_shop_page_button(client: httpx.AsyncClient, db: Database, make_user: Any) -> None:
    shop_id = await _shop(db, make_user)
    anonymous = await client.get(f"/shops/{shop_id}")
    assert anonymous.status_code == 200
    assert f'href="/signin?next=/shops/{shop_id}"' in anonymous.text
    person = await make_user()
    async with db.session() as s:
        fresh = await s.get(User, person.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    client.cookies.set(SESSION_COOKIE, token)
    page = await client.get(f"/shops/{shop_id}")
    assert "0 followers" in page.text
    done = await client.post(
        f"/shops/{shop_id}/follow", data={"csrf_token": csrf_of(page.text), "follow": "true"}
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/shops/{shop_id}?notice=")
    after = await client.get(f"/shops/{shop_id}")
    assert "1 follower" in after.text
    assert '<button type="submit" id="follow" class="secondary">Following</button>' in after.text
    # A draw's page sends followers back to it; other sites are not a destination.
    back = await client.post(
        f"/shops/{shop_id}/follow",
        data={"csrf_token": csrf_of(after.text), "follow": "false", "next": "/draws/7"},
    )
    assert back.headers["location"].startswith("/draws/7?notice=")
    evil = await client.post(
        f"/shops/{shop_id}/follow",
        data={"csrf_token": csrf_of(after.text), "next": "//evil.example"},
    )
    assert evil.headers["location"].startswith(f"/shops/{shop_id}?")
    forged = await client.post(f"/shops/{shop_id}/follow", data={"csrf_token": "x" * 43})
    assert forged.status_code == 403
