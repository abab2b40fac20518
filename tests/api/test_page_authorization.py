"""Pages against roles: another merchant's console, the admin queue, someone else's data."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.db import Database
from mobimart.merchants import service as merchants
from mobimart.payments import instore
from mobimart.web.deps import SESSION_COOKIE
from tests import factories

PAGES = {
    # path template: roles that get the page (others: redirect to sign-in, 403 or 404)
    "/me": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    "/me/export.json": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    "/console": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    "/console/{a}": {"owner_a", "staff_a"},
    "/console/{a}/products": {"owner_a", "staff_a"},
    "/console/{a}/products/{product}": {"owner_a", "staff_a"},
    "/console/{a}/collect": {"owner_a", "staff_a"},
    "/console/{a}/collect?c={collection}": {"owner_a", "staff_a"},
    "/console/{a}/collect/{collection}/status": {"owner_a", "staff_a"},
    "/me/paycode": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    "/me/paycode/status": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    "/console/{a}/orders": {"owner_a", "staff_a"},
    "/console/{a}/money": {"owner_a", "staff_a"},
    "/orders": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    "/me/wallet": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    "/admin/kyc": {"admin"},
    "/admin/kyc/{a}": {"admin"},
    "/admin/kyc/{a}/documents/{doc}": {"admin"},
    # Reviews and product Q&A.
    # Chat.
    # Notifications.
    # Moderation and merchant feedback.
}
ROLES = ["anonymous", "consumer", "owner_a", "staff_a", "owner_b", "admin"]


async def _session_cookie(db: Database, user: User) -> str:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return token


@pytest.fixture
async def world(db: Database, make_user: Any) -> dict[str, Any]:
    users = {role: await make_user(admin=role == "admin") for role in ROLES[1:]}
    a = await factories.merchant(db, users["owner_a"], admin=users["admin"], n=1)
    await factories.merchant(db, users["owner_b"], admin=users["admin"], n=2)
    await factories.add_staff(db, a, users["owner_a"], users["staff_a"])
    async with db.session() as s:
        doc = (await merchants.documents(s, merchant_id=a.id))[0]
        product = await catalog.create_product(s, merchant=a, name="Cup", price_minor=100)
        collection = await instore.create_collection(
            s, merchant=a, actor=users["owner_a"], amount_minor=100, note=""
        )
    cookies = {role: await _session_cookie(db, user) for role, user in users.items()}
    ids = {"a": a.id, "doc": doc.id, "product": product.id, "collection": collection.collection.id}
    return {"cookies": cookies, "ids": ids, "users": users}


@pytest.mark.parametrize("template", sorted(PAGES))
async def test_page_access(app: Any, world: dict[str, Any], template: str) -> None:
    path = template.format(**world["ids"])
    for role in ROLES:
        cookies = {SESSION_COOKIE: world["cookies"][role]} if role != "anonymous" else {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", cookies=cookies
        ) as c:
            response = await c.get(path)
        if role in PAGES[template]:
            assert response.status_code == 200, (role, response.status_code)
        elif role == "anonymous":
            assert response.status_code == 303, role
            assert response.headers["location"].startswith("/signin?next=")
        else:
            assert response.status_code in (403, 404), (role, response.status_code)


async def test_owner_of_b_cannot_act_on_a(app: Any, world: dict[str, Any]) -> None:
    cookies = {SESSION_COOKIE: world["cookies"]["owner_b"], "mm_csrf": "x" * 43}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", cookies=cookies) as c:
        response = await c.post(
            f"/console/{world['ids']['a']}/invitations",
            data={"phone": world["users"]["owner_b"].phone, "csrf_token": "x" * 43},
        )
    assert response.status_code == 404


async def test_owner_of_b_cannot_change_a_product_of_a(app: Any, world: dict[str, Any]) -> None:
    cookies = {SESSION_COOKIE: world["cookies"]["owner_b"], "mm_csrf": "x" * 43}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", cookies=cookies) as c:
        response = await c.post(
            f"/console/{world['ids']['a']}/products/{world['ids']['product']}/status",
            data={"action": "publish", "csrf_token": "x" * 43},
        )
    assert response.status_code == 404
