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

EVERYONE = {"anonymous", "consumer", "owner_a", "staff_a", "owner_b", "admin"}
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
    "/products/{published}": EVERYONE,
    "/products/{published}/reviews": EVERYONE,
    "/products/{published}/reviews?stars=5&photos=1": EVERYONE,
    "/products/{published}/questions": EVERYONE,
    "/order-lines/{line}/review": {"consumer"},
    "/console/{a}/reviews": {"owner_a", "staff_a"},
    "/console/{a}/reviews?unreplied=1": {"owner_a", "staff_a"},
    "/console/{a}/questions": {"owner_a", "staff_a"},
    "/console/{a}/questions?answered=1": {"owner_a", "staff_a"},
    # Chat.
    "/chats": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    "/chats/{conversation}": {"consumer"},
    "/chats/{conversation}/images/{chat_image}": {"consumer", "owner_a", "staff_a"},
    "/console/{a}/inbox": {"owner_a", "staff_a"},
    "/console/{a}/inbox?view=mine": {"owner_a", "staff_a"},
    "/console/{a}/inbox/{conversation}": {"owner_a", "staff_a"},
    # Notifications.
    "/me/notifications": {"consumer", "owner_a", "staff_a", "owner_b", "admin"},
    # Moderation and merchant feedback.
    "/admin/words": {"admin"},
    "/admin/words?prefix=sc": {"admin"},
    "/admin/reports": {"admin"},
    "/admin/reports?status=removed": {"admin"},
    "/console/{a}/feedback": {"owner_a", "staff_a"},
    "/console/{a}/feedback?weeks=4": {"owner_a", "staff_a"},
    "/console/{a}/feedback/products/{product}": {"owner_a", "staff_a"},
    "/console/{a}/feedback/reviews?term=size&product_id={product}": {"owner_a", "staff_a"},
    # Marketing: segments and consent.
    "/console/{a}/segments": {"owner_a", "staff_a"},
    "/console/{a}/segments/new": {"owner_a", "staff_a"},
    "/console/{a}/segments/{segment}": {"owner_a", "staff_a"},
    "/console/{a}/segments/{segment}/export.csv": {"owner_a", "staff_a"},
    "/admin/segments": {"admin"},
    "/admin/segments/new": {"admin"},
    "/admin/segments/{platform_segment}": {"admin"},
    "/admin/segments/{platform_segment}/export.csv": {"admin"},
    # Marketing: SMS and push campaigns, short links, campaign reports.
    "/console/{a}/marketing": {"owner_a", "staff_a"},
    "/console/{a}/campaigns": {"owner_a", "staff_a"},
    "/console/{a}/campaigns/new": {"owner_a", "staff_a"},
    "/console/{a}/campaigns/{campaign_draft}": {"owner_a", "staff_a"},
    "/console/{a}/campaigns/{campaign_sent}": {"owner_a", "staff_a"},
    # Marketing: QR codes and attribution.
    "/console/{a}/qr": {"owner_a", "staff_a"},
    "/console/{a}/qr?archived=1": {"owner_a", "staff_a"},
    "/console/{a}/qr/{qr}": {"owner_a", "staff_a"},
    "/console/{a}/qr/{qr}?days=7": {"owner_a", "staff_a"},
    "/console/{a}/qr/{qr}/image": {"owner_a", "staff_a"},
    "/console/{a}/qr/{qr}/image?format=pdf&copies=2": {"owner_a", "staff_a"},
    "/console/{a}/qr/sheet?ids={qr}": {"owner_a", "staff_a"},
    "/q/{qr_token}": EVERYONE,  # public: the landing a printed code opens
    # Marketing: lucky draws and shop follows.
    "/draws/{draw}": EVERYONE,
    "/draws/{draw}?src=qr&qr=abc": EVERYONE,
    "/draws/{draw}/verify": EVERYONE,
    "/draws/{draw}/verify?entry={draw_entry}": EVERYONE,
    "/draws/{draw}/entries/{draw_entry}": {"consumer"},
    "/console/{a}/draws": {"owner_a", "staff_a"},
    "/console/{a}/draws/{draw}": {"owner_a", "staff_a"},
    "/shops/{draw_shop}": EVERYONE,
    # Marketing: Wi-Fi portal, stores, geofences and offers.
    "/wifi/{wifi_token}?fas={wifi_fas}": EVERYONE,
    "/wifi/{wifi_token}/welcome": EVERYONE,
    "/console/{a}/wifi": {"owner_a"},  # shows the gateway's shared key
    "/admin/wifi": {"admin"},
    "/console/{a}/places": {"owner_a", "staff_a"},
    "/nearby": EVERYONE,
    "/nearby?lat=31.23&lng=121.47": EVERYONE,
    # Marketing: Web Push subscriptions and automations.
    "/sw.js": EVERYONE,  # the service worker: public, like any script
    "/console/{a}/automations": {"owner_a", "staff_a"},
    "/console/{a}/automations/{automation}": {"owner_a", "staff_a"},
    "/admin/automations": {"admin"},
    "/admin/automations/{platform_automation}": {"admin"},
}
ROLES = ["anonymous", "consumer", "owner_a", "staff_a", "owner_b", "admin"]


async def _session_cookie(db: Database, user: User) -> str:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return token


async def _chat(db: Database, consumer: User, shop_id: int) -> dict[str, int]:
    """The consumer's conversation with shop A, with a photo in it."""
    from mobimart.infra.pubsub import LocalBroker
    from mobimart.social import chat

    async with db.session() as s:
        consumer = await s.merge(consumer)
        conversation = await chat.open_conversation(
            s, user=consumer, shop_id=shop_id, broker=LocalBroker()
        )
        image, _ = await chat.send_image(
            s,
            user=consumer,
            conversation_id=conversation.id,
            data=factories.PNG,
            broker=LocalBroker(),
        )
    return {"conversation": conversation.id, "chat_image": image.id}


async def _reviews(db: Database, a: Any, users: dict[str, User]) -> dict[str, int]:
    """A published product of A's with a review and a question, and the consumer's delivered
    line of it not reviewed yet."""
    from tests.api.test_authorization import CA, CB, _reviews_world

    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=a, name="Teapot", price_minor=100, stock=5, publish=True
        )
        made = await _reviews_world(s, a, product.id, {CA: users["consumer"], CB: users["owner_b"]})
    return {"published": product.id, "line": made["line_id"]}


async def _draws(db: Database, a: Any, users: dict[str, User]) -> dict[str, int]:
    """A's draw, won and claimed by the consumer."""
    from tests.api.test_authorization import CA, _draws_world

    async with db.session() as s:
        product = await catalog.create_product(s, merchant=a, name="Vase", price_minor=100)
        made = await _draws_world(s, a, product.id, {CA: users["consumer"]})
    return {"draw": made["draw_id"], "draw_entry": made["entry_id"], "draw_shop": product.shop_id}


async def _qr(db: Database, a: Any) -> dict[str, Any]:
    """A's static code on a published product of theirs."""
    from mobimart.campaigns import qr

    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=a, name="Scarf", price_minor=100, stock=3, publish=True
        )
        code = await qr.create(
            s,
            merchant_id=a.id,
            spec=qr.Spec("Rail", qr.Target(qr.TargetKind.product, product.id)),
        )
    return {"qr": code.id, "qr_token": code.token}


async def _segments(db: Database, a: Any, users: dict[str, User]) -> dict[str, int]:
    """A segment of A's and a platform one, with the consumer in both."""
    from mobimart.accounts import privacy
    from mobimart.accounts.domain import Channel
    from mobimart.campaigns import segments

    rules = [{"kind": "has_consent", "channel": "sms"}]
    async with db.session() as s:
        await privacy.set_consent(
            s, user_id=users["consumer"].id, channel=Channel.sms, granted=True, source="t"
        )
        mine = await segments.create(
            s, merchant_id=a.id, name="Texts", match="all", conditions=rules
        )
        platform = await segments.create(
            s, merchant_id=None, name="All", match="all", conditions=rules
        )
    return {"segment": mine.id, "platform_segment": platform.id}


async def _places(db: Database, a: Any) -> dict[str, Any]:
    """A's Wi-Fi portal with an openNDS level-1 query, and a store with a geofence."""
    import base64
    from urllib.parse import quote

    from mobimart.campaigns import places, wifi

    fas = f"hid={'ab' * 32}, clientip=192.168.8.9, gatewayaddress=192.168.8.1:2050"
    async with db.session() as s:
        portal = await wifi.create(s, merchant_id=a.id, name="Cafe")
        store = await places.create_store(s, merchant_id=a.id, name="Kiosk", lat=31.23, lng=121.47)
        await places.create_geofence(
            s, merchant_id=a.id, name="Zone", store_id=store.id, radius_m=99
        )
    return {
        "wifi_token": portal.token,
        "wifi_fas": quote(base64.b64encode(fas.encode()).decode(), safe=""),
    }


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
    ids |= await _chat(db, users["consumer"], product.shop_id)
    ids |= await _reviews(db, a, users)
    # Marketing worlds, one line per part.
    ids |= {
        f"campaign_{k}": await factories.sms_campaign(db, a.id, status=k) for k in ("draft", "sent")
    }
    ids |= {  # Web Push and automations: a flow of A's and one of the platform's
        "automation": await factories.automation(db, a.id),
        "platform_automation": await factories.automation(db, None),
    }
    ids |= await _qr(db, a)
    ids |= await _segments(db, a, users)
    ids |= await _draws(db, a, users)
    ids |= await _places(db, a)
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
