"""Lucky draws against real databases: creating, entering (once per period, eligibility),
prizes of each kind, stock under parallel entries, the public check, pages and console."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.campaigns import draws
from mobimart.campaigns.models import Draw, DrawEntry, DrawPrize, MarketingEvent
from mobimart.catalog import service as catalog
from mobimart.db import Database
from mobimart.engagement import points
from mobimart.errors import DomainError
from mobimart.promotions.models import Promotion
from mobimart.web.deps import SESSION_COOKIE
from tests import factories
from tests.api.test_pages import csrf_of

Prize = draws.PrizeSpec


@pytest.fixture
async def shop(db: Database, make_user: Any, auth_headers: Any) -> dict[str, Any]:
    admin, owner = await make_user(admin=True), await make_user()
    merchant = await factories.merchant(db, owner, admin=admin, n=1)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name="Teapot", price_minor=6000, stock=50, publish=True
        )
        shop = await catalog.shop_for(s, merchant=merchant)
    return {
        "merchant": merchant,
        "m": merchant.id,
        "owner": owner,
        "owner_headers": await auth_headers(owner),
        "product": product,
        "shop_id": shop.id,
        "coupon": await factories.draw_coupon(db, merchant.id, ended=True),
    }


async def _enter(
    client: httpx.AsyncClient, draw_id: int, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post(f"/api/v1/draws/{draw_id}/entries", json=body, headers=headers)


def _body(coupon: int, **over: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "name": "Spring draw",
        "opens_at": (now - dt.timedelta(minutes=5)).isoformat(),
        "closes_at": (now + dt.timedelta(days=3)).isoformat(),
        "prizes": [
            {"name": "¥5 off", "kind": "coupon", "chance_ppm": 1_000_000, "quantity": 10,
             "promotion_id": coupon},
        ],
    } | over  # fmt: skip


async def test_create_enter_win_a_coupon_and_enter_again_gets_the_same_result(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, shop: Any
) -> None:
    made = await client.post(
        f"/api/v1/merchants/{shop['m']}/draws",
        json=_body(shop["coupon"]),
        headers=shop["owner_headers"],
    )
    assert made.status_code == 201, made.text
    draw = made.json()
    assert draw["seed"] is None
    assert len(draw["seed_hash"]) == 64
    assert draw["prizes"][0]["band_start"] == 0
    assert draw["prizes"][0]["band_end"] == 1_000_000
    public = (await client.get(f"/api/v1/draws/{draw['id']}")).json()
    assert public["seed"] is None
    assert public["seed_hash"] == draw["seed_hash"]

    person = await make_user()
    headers = await auth_headers(person)
    first = await _enter(client, draw["id"], headers, source="qr")
    assert first.status_code == 201, first.text
    won = first.json()
    assert won["outcome"] == "won"
    assert won["prize_kind"] == "coupon"
    code = won["coupon_code"]
    assert re.fullmatch(r"[A-Z2-9]{12}", code)
    again = await _enter(client, draw["id"], headers)
    assert again.json()["id"] == won["id"]
    assert again.json()["coupon_code"] == code
    async with db.session() as s:
        copy = await s.scalar(select(Promotion).where(Promotion.code == code))
        assert copy is not None
        assert copy.total_uses == 1
        assert copy.merchant_id == shop["m"]
        prize = await s.scalar(select(DrawPrize).where(DrawPrize.draw_id == draw["id"]))
        assert prize is not None
        assert prize.awarded == 1
        entry = await s.get(DrawEntry, won["id"])
        assert entry is not None
        assert entry.source == "qr"
        assert entry.period == "once"
        event = await s.scalar(
            select(MarketingEvent).where(
                MarketingEvent.kind == "draw_entry", MarketingEvent.user_id == person.id
            )
        )
        assert event is not None
        assert event.subject_id == draw["id"]
        assert event.merchant_id == shop["m"]
    mine = await client.get(f"/api/v1/draws/{draw['id']}/entries/{won['id']}", headers=headers)
    assert mine.json()["coupon_code"] == code
    other = await auth_headers(await make_user())
    assert (
        await client.get(f"/api/v1/draws/{draw['id']}/entries/{won['id']}", headers=other)
    ).status_code == 404


async def test_the_coupon_won_takes_money_off_an_order(
    db: Database, make_user: Any, shop: Any
) -> None:
    from mobimart.checkout import service as checkout

    draw_id = await factories.draw(
        db, shop["m"], [Prize("¥5 off", "coupon", 1_000_000, 5, promotion_id=shop["coupon"])]
    )
    person = await make_user()
    async with db.session() as s:
        entry = await draws.enter(s, draw_id=draw_id, user=await s.merge(person), source="page")
        cart = await checkout.cart_of(s, user_id=person.id)
        variant = (await catalog.variants_of(s, product_id=shop["product"].id))[0]
        await checkout.put(s, cart=cart, variant_id=variant.id, quantity=1)
        entries = await checkout.cart_entries(s, cart=cart)
        now = dt.datetime.now(dt.UTC)
        plain = await checkout.quote(s, entries=entries, codes=[], user_id=person.id, now=now)
        assert entry.coupon_code
        off = await checkout.quote(
            s, entries=entries, codes=[entry.coupon_code], user_id=person.id, now=now
        )
    shop_id = shop["shop_id"]
    assert plain.shop_total(shop_id) - off.shop_total(shop_id) == 500
    assert off.unknown_codes == ()


async def test_once_a_day_in_the_draws_zone(
    db: Database, make_user: Any, shop: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    draw_id = await factories.draw(
        db,
        shop["m"],
        [Prize("Points", "points", 500_000, 100, points=10)],
        rules={"per_day": 1},
        hours=72,
    )
    person = await make_user()
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    day1 = tomorrow.replace(hour=15, minute=30)  # 23:30 in Beijing, while the draw is open
    seen = []
    for at in (day1, day1 + dt.timedelta(minutes=20), day1 + dt.timedelta(hours=1)):
        monkeypatch.setattr(draws, "utcnow", lambda at=at: at)
        async with db.session() as s:
            seen.append(
                await draws.enter(s, draw_id=draw_id, user=await s.merge(person), source="")
            )
    assert seen[0].id == seen[1].id  # 23:50 in Beijing: the same day
    assert seen[2].id != seen[0].id  # 00:30: the next day
    assert seen[0].period != seen[2].period
    assert seen[0].source == "page"


async def test_points_prize_adds_points_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, shop: Any
) -> None:
    draw_id = await factories.draw(
        db, shop["m"], [Prize("Points", "points", 1_000_000, 100, points=25)]
    )
    person = await make_user()
    headers = await auth_headers(person) | {"Idempotency-Key": "tap-1"}
    first = await _enter(client, draw_id, headers)
    replay = await _enter(client, draw_id, headers)
    assert first.json() == replay.json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["points"] == 25
    async with db.session() as s:
        assert await points.balance(s, user_id=person.id, merchant_id=shop["m"]) == 25


async def test_a_prize_out_of_stock_is_said_honestly(
    db: Database, make_user: Any, shop: Any
) -> None:
    draw_id = await factories.draw(db, shop["m"], [Prize("Teapot", "physical", 1_000_000, 1)])
    outcomes = []
    for _ in range(3):
        person = await make_user()
        async with db.session() as s:
            entry = await draws.enter(s, draw_id=draw_id, user=await s.merge(person), source="")
            outcomes.append((entry.outcome, entry.prize_id is not None))
    assert outcomes == [("won", True), (draws.OUT_OF_STOCK, True), (draws.OUT_OF_STOCK, True)]


@pytest.mark.parametrize("quantity", [1, 3])
async def test_parallel_entries_never_award_more_than_stocked(
    db: Database, make_user: Any, shop: Any, quantity: int
) -> None:
    """Twelve people enter at once on separate connections (real parallel sessions on
    PostgreSQL; SQLite serialises the writers): exactly `quantity` win."""
    draw_id = await factories.draw(db, shop["m"], [Prize("Gift", "physical", 1_000_000, quantity)])
    people = [await make_user() for _ in range(12)]

    async def one(person: User) -> str:
        async with db.session() as s:
            entry = await draws.enter(s, draw_id=draw_id, user=await s.merge(person), source="")
            return entry.outcome

    outcomes = await asyncio.gather(*(one(p) for p in people))
    assert outcomes.count("won") == quantity
    assert outcomes.count(draws.OUT_OF_STOCK) == 12 - quantity
    async with db.session() as s:
        prize = await s.scalar(select(DrawPrize).where(DrawPrize.draw_id == draw_id))
        assert prize is not None
        assert prize.awarded == quantity


async def test_parallel_taps_of_one_person_make_one_entry(
    db: Database, make_user: Any, shop: Any
) -> None:
    draw_id = await factories.draw(db, shop["m"], [Prize("Gift", "physical", 1_000_000, 5)])
    person = await make_user()

    async def tap() -> int:
        async with db.session() as s:
            entry = await draws.enter(s, draw_id=draw_id, user=await s.merge(person), source="")
            return entry.id

    ids = await asyncio.gather(*(tap() for _ in range(6)))
    assert len(set(ids)) == 1
    async with db.session() as s:
        prize = await s.scalar(select(DrawPrize).where(DrawPrize.draw_id == draw_id))
        assert prize is not None
        assert prize.awarded == 1
        count = await s.scalar(select(func.count()).select_from(DrawEntry))
        assert count == 1


async def test_must_follow_the_shop(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, shop: Any
) -> None:
    draw_id = await factories.draw(
        db, shop["m"], [Prize("Gift", "physical", 10, 5)], rules={"must_follow": True}
    )
    headers = await auth_headers(await make_user())
    refused = await _enter(client, draw_id, headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "draw_must_follow"
    followed = await client.put(f"/api/v1/shops/{shop['shop_id']}/follow", headers=headers)
    assert followed.json() == {"following": True, "follower_count": 1}
    assert (await _enter(client, draw_id, headers)).status_code == 201
    gone = await client.delete(f"/api/v1/shops/{shop['shop_id']}/follow", headers=headers)
    assert gone.json() == {"following": False, "follower_count": 0}


async def test_minimum_recent_order(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, shop: Any
) -> None:
    draw_id = await factories.draw(
        db,
        shop["m"],
        [Prize("Gift", "physical", 10, 5)],
        rules={"min_order_minor": 5000, "order_days": 7},
    )
    buyer = await make_user()
    headers = await auth_headers(buyer)
    refused = await _enter(client, draw_id, headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "draw_min_order"
    await factories.buy(
        db, buyer, [shop["product"]], owner=shop["owner"], merchant_id=shop["m"], until="paid"
    )
    assert (await _enter(client, draw_id, headers)).status_code == 201


async def test_physical_prize_claim_shows_the_merchant_a_masked_phone(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, shop: Any
) -> None:
    draw_id = await factories.draw(db, shop["m"], [Prize("Teapot", "physical", 1_000_000, 2)])
    headers = await auth_headers(await make_user())
    entry = (await _enter(client, draw_id, headers)).json()
    url = f"/api/v1/draws/{draw_id}/entries/{entry['id']}/claim"
    bad = await client.put(
        url, json={"name": "Han", "phone": "12", "address": "1 Road"}, headers=headers
    )
    assert bad.status_code == 422
    claim = {"name": "韩梅梅", "phone": "+8613912340001", "address": "上海市 1 Road, Room 2"}
    done = await client.put(url, json=claim, headers=headers)
    assert done.status_code == 200
    assert done.json()["claimed"] is True
    listed = await client.get(
        f"/api/v1/merchants/{shop['m']}/draws/{draw_id}/claims", headers=shop["owner_headers"]
    )
    (row,) = listed.json()["items"]
    assert row["phone_masked"] == "139****0001"
    assert row["name"] == "韩梅梅"
    assert "13912340001" not in listed.text
    async with db.session() as s:  # encrypted at rest
        raw = (await s.execute(select(func.cast(DrawEntry.address, type_=_text())))).scalar()
        assert raw
        assert "13912340001" not in raw
    lost = await auth_headers(await make_user())
    assert (await client.put(url, json=claim, headers=lost)).status_code == 404


def _text() -> Any:
    from sqlalchemy import Text

    return Text()


async def test_verify_recomputes_every_entry_after_closing(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, shop: Any
) -> None:
    draw_id = await factories.draw(
        db,
        shop["m"],
        [
            Prize("Gift", "physical", 300_000, 3),
            Prize("Points", "points", 400_000, 100, points=5),
        ],
    )
    for _ in range(8):
        await _enter(client, draw_id, await auth_headers(await make_user()))
    before = (await client.get(f"/api/v1/draws/{draw_id}/verify")).json()
    assert before["seed"] is None
    assert len(before["items"]) == 8
    closed = await client.post(
        f"/api/v1/merchants/{shop['m']}/draws/{draw_id}/close", headers=shop["owner_headers"]
    )
    assert closed.json()["closed"] is True
    assert closed.json()["seed"]
    late = await _enter(client, draw_id, await auth_headers(await make_user()))
    assert late.status_code == 409
    assert late.json()["code"] == "draw_closed"

    page1 = (await client.get(f"/api/v1/draws/{draw_id}/verify?limit=5")).json()
    page2 = (
        await client.get(f"/api/v1/draws/{draw_id}/verify?limit=5&cursor={page1['next_cursor']}")
    ).json()
    assert page2["next_cursor"] is None
    seed = page1["seed"]
    assert hashlib.sha256(seed.encode()).hexdigest() == page1["seed_hash"]
    bands = page1["bands"]
    items = page1["items"] + page2["items"]
    assert len(items) == 8
    for item in items:  # what an outsider would run
        mac = hmac.new(seed.encode(), f"{draw_id}:{item['id']}".encode(), hashlib.sha256)
        value = int(mac.hexdigest(), 16) % 1_000_000
        band = next((b["id"] for b in bands if b["band_start"] <= value < b["band_end"]), None)
        assert (value, band) == (item["roll"], item["prize_id"])
        assert item["outcome"] in (("won", draws.OUT_OF_STOCK) if band else ("lost",))
    async with db.session() as s:
        draw = await s.get(Draw, draw_id)
        assert draw is not None
        check = await draws.check_entry(s, draw=draw, entry_id=items[0]["id"])
        assert check.matches is True


async def test_bad_draws_are_refused(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, shop: Any
) -> None:
    url = f"/api/v1/merchants/{shop['m']}/draws"
    h = shop["owner_headers"]
    two = [
        {"name": "A", "kind": "physical", "chance_ppm": 600_000, "quantity": 1},
        {"name": "B", "kind": "physical", "chance_ppm": 500_000, "quantity": 1},
    ]
    over = await client.post(url, json=_body(shop["coupon"], prizes=two), headers=h)
    assert over.status_code == 422
    assert "1,000,000" in over.json()["detail"]
    zero = [{"name": "A", "kind": "physical", "chance_ppm": 0, "quantity": 1}]
    assert (await client.post(url, json=_body(1, prizes=zero), headers=h)).status_code == 422
    other_admin, other_owner = await make_user(admin=True), await make_user()
    other = await factories.merchant(db, other_owner, admin=other_admin, n=2)
    theirs = await factories.draw_coupon(db, other.id, code="THEIRS")
    stolen = await client.post(url, json=_body(theirs), headers=h)
    assert stolen.status_code == 422
    backwards = _body(shop["coupon"], closes_at=dt.datetime.now(dt.UTC).isoformat())
    assert (await client.post(url, json=backwards, headers=h)).status_code == 422
    bad_zone = _body(shop["coupon"], rules={"zone": "Mars/Base"})
    assert (await client.post(url, json=bad_zone, headers=h)).status_code == 422


async def test_delete_only_without_entries_and_rename(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any, shop: Any
) -> None:
    h = shop["owner_headers"]
    base = f"/api/v1/merchants/{shop['m']}/draws"
    empty = await factories.draw(db, shop["m"], [Prize("Gift", "physical", 10, 1)])
    used = await factories.draw(db, shop["m"], [Prize("Gift", "physical", 10, 1)])
    await _enter(client, used, await auth_headers(await make_user()))
    assert (await client.delete(f"{base}/{used}", headers=h)).status_code == 409
    assert (await client.delete(f"{base}/{empty}", headers=h)).status_code == 204
    renamed = await client.patch(f"{base}/{used}", json={"name": "Summer"}, headers=h)
    assert renamed.json()["name"] == "Summer"
    assert renamed.json()["entries"] == 1
    listed = (await client.get(base, headers=h)).json()
    assert [d["id"] for d in listed["items"]] == [used]


async def test_a_live_coupon_is_refused_as_a_prize_and_an_ended_one_is_only_a_template(
    client: httpx.AsyncClient, db: Database, make_user: Any, shop: Any
) -> None:
    from mobimart.checkout import service as checkout

    live = await factories.draw_coupon(db, shop["m"], code="OPEN5")
    url = f"/api/v1/merchants/{shop['m']}/draws"
    refused = await client.post(url, json=_body(live), headers=shop["owner_headers"])
    assert refused.status_code == 422
    assert "OPEN5 is live" in refused.json()["detail"]
    assert "End it first" in refused.json()["detail"]
    async with db.session() as s:
        offered = [c.id for c in await draws.coupons(s, merchant_id=shop["m"])]
    assert offered == [shop["coupon"]]  # the ended one only

    # The ended template's own code takes nothing off; the copy a winner gets does.
    draw_id = await factories.draw(
        db, shop["m"], [Prize("¥5 off", "coupon", 1_000_000, 5, promotion_id=shop["coupon"])]
    )
    person = await make_user()
    async with db.session() as s:
        entry = await draws.enter(s, draw_id=draw_id, user=await s.merge(person), source="page")
        assert entry.coupon_code
        cart = await checkout.cart_of(s, user_id=person.id)
        variant = (await catalog.variants_of(s, product_id=shop["product"].id))[0]
        await checkout.put(s, cart=cart, variant_id=variant.id, quantity=1)
        entries = await checkout.cart_entries(s, cart=cart)
        now = dt.datetime.now(dt.UTC)
        plain = await checkout.quote(s, entries=entries, codes=[], user_id=person.id, now=now)
        base = await checkout.quote(
            s, entries=entries, codes=["LUCKY5"], user_id=person.id, now=now
        )
        won = await checkout.quote(
            s, entries=entries, codes=[entry.coupon_code], user_id=person.id, now=now
        )
    shop_id = shop["shop_id"]
    assert base.shop_total(shop_id) == plain.shop_total(shop_id)
    assert plain.shop_total(shop_id) - won.shop_total(shop_id) == 500


async def test_a_coupon_gone_gives_nothing_and_no_second_roll(
    db: Database, make_user: Any, shop: Any
) -> None:
    draw_id = await factories.draw(
        db, shop["m"], [Prize("¥5", "coupon", 1_000_000, 5, promotion_id=shop["coupon"])]
    )
    async with db.session() as s:  # a template without a code cannot be copied
        await s.execute(update(Promotion).where(Promotion.id == shop["coupon"]).values(code=None))
        await s.commit()
    person = await make_user()
    async with db.session() as s:
        entry = await draws.enter(s, draw_id=draw_id, user=await s.merge(person), source="")
        again = await draws.enter(s, draw_id=draw_id, user=await s.merge(person), source="")
    assert entry.outcome == draws.OUT_OF_STOCK
    assert entry.coupon_code is None
    assert again.id == entry.id
    async with db.session() as s:
        prize = await s.scalar(select(DrawPrize).where(DrawPrize.draw_id == draw_id))
        assert prize is not None
        assert prize.awarded == 0


async def test_not_open_yet(db: Database, make_user: Any, shop: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    async with db.session() as s:
        draw = await draws.create(
            s,
            merchant_id=shop["m"],
            spec=draws.DrawSpec(
                "Later",
                now + dt.timedelta(hours=1),
                now + dt.timedelta(hours=2),
                [Prize("Gift", "physical", 10, 1)],
            ),
        )
        with pytest.raises(DomainError) as refused:
            await draws.enter(s, draw_id=draw.id, user=await s.merge(await make_user()), source="")
    assert refused.value.code == "draw_not_open"


# --- pages -----------------------------------------------------------------------------------


async def _signed_in(client: httpx.AsyncClient, db: Database, user: User) -> None:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    client.cookies.set(SESSION_COOKIE, token)


async def test_pages_enter_from_a_qr_scan_and_see_the_coupon(
    client: httpx.AsyncClient, db: Database, make_user: Any, shop: Any
) -> None:
    draw_id = await factories.draw(
        db, shop["m"], [Prize("¥5 off", "coupon", 1_000_000, 3, promotion_id=shop["coupon"])]
    )
    anonymous = await client.get(f"/draws/{draw_id}?src=qr&qr=abc123")
    assert anonymous.status_code == 200
    assert "/signin?next=/draws/" in anonymous.text
    assert "src%3Dqr" in anonymous.text
    async with db.session() as s:
        draw = await s.get(Draw, draw_id)
        assert draw is not None
        assert draw.seed_hash in anonymous.text
    # An anonymous POST is sent to sign in and back to the draw page, not to the POST.
    sent = await client.post(
        f"/draws/{draw_id}/enter",
        data={"csrf_token": client.cookies["mm_csrf"], "src": "qr", "qr": "abc123"},
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/signin?next=/draws/{draw_id}%3Fsrc%3Dqr%26qr%3Dabc123"

    person = await make_user()
    await _signed_in(client, db, person)
    page = await client.get(f"/draws/{draw_id}?src=qr&qr=abc123")
    assert 'id="enter-form"' in page.text
    entered = await client.post(
        f"/draws/{draw_id}/enter",
        data={"csrf_token": csrf_of(page.text), "src": "qr", "qr": "abc123"},
    )
    assert entered.status_code == 303
    result = await client.get(entered.headers["location"])
    code = re.search(r'id="coupon-code">([A-Z2-9]{12})<', result.text)
    assert code, result.text
    assert f'href="/cart?code={code.group(1)}"' in result.text
    assert 'id="my-result"' in (await client.get(f"/draws/{draw_id}")).text
    async with db.session() as s:
        entry = await s.scalar(select(DrawEntry).where(DrawEntry.user_id == person.id))
        assert entry is not None
        assert entry.source == "qr"

    verify = await client.get(f"/draws/{draw_id}/verify?entry={entry.id}")
    assert verify.status_code == 200
    assert 'id="seed-secret"' in verify.text
    assert str(entry.roll) in verify.text
    assert person.phone not in verify.text
    assert "It can be recomputed once the seed is published" in verify.text


async def test_console_creates_a_draw_and_shows_claims_masked(
    client: httpx.AsyncClient, db: Database, make_user: Any, shop: Any
) -> None:
    await _signed_in(client, db, shop["owner"])
    listing = await client.get(f"/console/{shop['m']}/draws")
    assert listing.status_code == 200
    assert "LUCKY5" in listing.text
    form: dict[str, Any] = {
        "csrf_token": csrf_of(listing.text),
        "name": "Opening week",
        "opens_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M"),
        "closes_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
        "per_day": "1",
        "prize_name": ["Teapot", "¥5", ""],
        "prize_kind": ["physical", "coupon", "coupon"],
        "prize_chance": ["0.5", "99.5", ""],
        "prize_quantity": ["2", "100", ""],
        "prize_coupon": ["", str(shop["coupon"]), ""],
        "prize_points": ["", "", ""],
    }
    made = await client.post(f"/console/{shop['m']}/draws", data=form)
    assert made.status_code == 303, made.text
    draw_id = int(re.findall(r"/draws/(\d+)", made.headers["location"])[0])
    async with db.session() as s:
        prizes = await draws.prizes_of(s, draw_id=draw_id)
        draw = await s.get(Draw, draw_id)
    assert [(p.name, p.chance_ppm, p.quantity) for p in prizes] == [
        ("Teapot", 5000, 2),
        ("¥5", 995_000, 100),
    ]
    assert draw is not None
    assert draw.rules["per_day"] == 1

    too_much = form | {"prize_chance": ["50", "60", ""], "name": "Too generous"}
    refused = await client.post(f"/console/{shop['m']}/draws", data=too_much)
    assert refused.status_code == 422
    assert "Too generous" in refused.text

    # 0001-01-01 00:00 in UTC+8 is before year 1 in UTC (OverflowError): a readable error.
    ancient = form | {"opens_at": "0001-01-01T00:00", "name": "Ancient"}
    refused = await client.post(f"/console/{shop['m']}/draws", data=ancient)
    assert refused.status_code == 422
    assert "Give the opening date and time." in refused.text
    assert "Ancient" in refused.text

    gift = await factories.draw(db, shop["m"], [Prize("Vase", "physical", 1_000_000, 1)])
    winner = await make_user()
    async with db.session() as s:
        won = await draws.enter(s, draw_id=gift, user=await s.merge(winner), source="")
        await draws.claim(
            s,
            user=await s.merge(winner),
            draw_id=gift,
            entry_id=won.id,
            name="Li Lei",
            phone="+8613912340002",
            address="1 Road, Shanghai",
        )
    claims = await client.get(f"/console/{shop['m']}/draws/{gift}")
    assert "139****0002" in claims.text
    assert "13912340002" not in claims.text
    assert "1 Road, Shanghai" in claims.text
    async with db.session() as s:
        entry = await draws.enter(s, draw_id=draw_id, user=await s.merge(winner), source="")
    detail = await client.get(f"/console/{shop['m']}/draws/{draw_id}")
    assert detail.status_code == 200
    assert 'id="entry-count">1 entry' in detail.text
    closed = await client.post(
        f"/console/{shop['m']}/draws/{draw_id}/close", data={"csrf_token": csrf_of(detail.text)}
    )
    assert closed.status_code == 303
    verify = await client.get(f"/draws/{draw_id}/verify?entry={entry.id}")
    assert 'id="seed-value"' in verify.text
    assert "They match." in verify.text


async def test_draw_page_for_followers_offers_the_follow_button(
    client: httpx.AsyncClient, db: Database, make_user: Any, shop: Any
) -> None:
    draw_id = await factories.draw(
        db, shop["m"], [Prize("Gift", "physical", 10, 5)], rules={"must_follow": True}
    )
    await _signed_in(client, db, await make_user())
    page = await client.get(f"/draws/{draw_id}?src=link")
    assert 'id="follow-form"' in page.text
    refused = await client.post(
        f"/draws/{draw_id}/enter", data={"csrf_token": csrf_of(page.text), "src": "link"}
    )
    assert refused.status_code == 403
    assert "Follow the shop to enter this draw." in refused.text
    followed = await client.post(
        f"/shops/{shop['shop_id']}/follow",
        data={
            "csrf_token": csrf_of(page.text),
            "follow": "true",
            "next": f"/draws/{draw_id}?src=link",
        },
    )
    assert followed.headers["location"].startswith(f"/draws/{draw_id}?src=link&notice=")
    again = await client.get(f"/draws/{draw_id}?src=link")
    assert 'id="follow-form"' not in again.text
    assert 'id="enter-form"' in again.text
    entered = await client.post(
        f"/draws/{draw_id}/enter", data={"csrf_token": csrf_of(again.text), "src": "link"}
    )
    assert entered.status_code == 303


async def test_an_entry_from_a_qr_code_carries_its_campaign(
    db: Database, make_user: Any, shop: Any
) -> None:
    from mobimart.campaigns.models import Campaign, QrCode

    draw_id = await factories.draw(db, shop["m"], [Prize("Gift", "physical", 10, 5)])
    async with db.session() as s:
        campaign = Campaign(merchant_id=shop["m"], name="Posters", channel="sms", template="x")
        s.add(campaign)
        await s.flush()
        mine = QrCode(
            merchant_id=shop["m"],
            token="drawqr-1",
            dynamic=True,
            label="Door",
            target_kind="draw",
            target_id=draw_id,
            campaign_id=campaign.id,
        )
        s.add(mine)
        await s.commit()
    people = [await make_user(), await make_user()]
    for person, token in zip(people, ("drawqr-1", "not-this-one"), strict=True):
        async with db.session() as s:
            await draws.enter(
                s, draw_id=draw_id, user=await s.merge(person), source="qr", qr_token=token
            )
    async with db.session() as s:
        got = dict(
            (
                await s.execute(
                    select(MarketingEvent.user_id, MarketingEvent.campaign_id).where(
                        MarketingEvent.kind == "draw_entry"
                    )
                )
            ).all()
        )
    assert got == {people[0].id: campaign.id, people[1].id: None}


async def test_console_form_says_what_is_wrong(
    client: httpx.AsyncClient, db: Database, shop: Any
) -> None:
    await _signed_in(client, db, shop["owner"])
    listing = await client.get(f"/console/{shop['m']}/draws")
    base: dict[str, Any] = {
        "csrf_token": csrf_of(listing.text),
        "name": "Typos",
        "opens_at": "2026-12-01T10:00",
        "closes_at": "2026-12-08T10:00",
        "prize_name": ["Teapot"],
        "prize_kind": ["physical"],
        "prize_chance": ["1"],
        "prize_quantity": ["2"],
        "prize_coupon": [""],
        "prize_points": [""],
    }
    for change, message in (
        ({"prize_quantity": ["two"]}, "Give each prize’s quantity as a whole number."),
        ({"prize_chance": ["0.00001"]}, "A chance is 0.0001 % to 100 %"),
        ({"prize_chance": ["lots"]}, "Give each prize&#39;s chance as a percentage."),
        ({"closes_at": "next week"}, "Give the closing date and time."),
        ({"prize_kind": ["coupon"]}, "Choose the coupon a coupon prize gives."),
        ({"min_order": "abc"}, "Type an amount such as 12.50."),
    ):
        refused = await client.post(f"/console/{shop['m']}/draws", data=base | change)
        assert refused.status_code == 422, change
        assert message in refused.text, change
        assert 'value="Typos"' in refused.text
