"""Segments: rules evaluated in SQL (preview, full evaluation, incremental updates, the sweep),
merchant scoping, and the merchant and admin APIs with masked member lists and CSV export."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from mobimart.accounts import privacy
from mobimart.accounts.domain import Channel
from mobimart.accounts.models import User
from mobimart.campaigns import events, rules, segments
from mobimart.campaigns.events import Kind
from mobimart.campaigns.models import MarketingEvent, Segment, SegmentMember
from mobimart.catalog import follows
from mobimart.catalog import service as catalog
from mobimart.catalog.models import Category, Shop, ShopFollow
from mobimart.db import Database, utcnow
from mobimart.errors import DomainError, NotFound
from tests import factories

SMS = [{"kind": "has_consent", "channel": "sms"}]


async def _consent(db: Database, user: User, granted: bool = True) -> None:
    async with db.session() as s:
        await privacy.set_consent(
            s, user_id=user.id, channel=Channel.sms, granted=granted, source="test"
        )


async def _event(db: Database, user: User, kind: Kind, **kw: Any) -> None:
    async with db.session() as s:
        await events.record(s, kind=kind, user_id=user.id, **kw)
        await s.commit()


async def _members(db: Database, segment_id: int) -> list[int]:
    async with db.session() as s:
        return await segments.members(s, segment_id=segment_id, after_user_id=None, limit=100)


async def _count(db: Database, segment_id: int) -> int:
    async with db.session() as s:
        row = await s.get(Segment, segment_id)
        assert row is not None
        return row.member_count


async def _shops(db: Database, make_user: Any) -> tuple[Any, Any, User, User]:
    owner_a, owner_b = await make_user(), await make_user()
    admin = await make_user(admin=True)
    a = await factories.merchant(db, owner_a, admin=admin, n=1)
    b = await factories.merchant(db, owner_b, admin=admin, n=2)
    return a, b, owner_a, owner_b


async def test_consent_segment_counts_the_newest_row_per_person(
    db: Database, make_user: Any
) -> None:
    yes, withdrew, never, deleted = [await make_user() for _ in range(4)]
    await _consent(db, yes)
    await _consent(db, withdrew)
    await _consent(db, withdrew, granted=False)
    await _consent(db, deleted)
    async with db.session() as s:
        await s.execute(update(User).where(User.id == deleted.id).values(deleted_at=utcnow()))
        await s.commit()
        mine = [yes.id, withdrew.id, never.id, deleted.id]
        picked = set(
            await s.scalars(
                segments.compile_rules(rules.parse("all", SMS), merchant_id=None, user_ids=mine)
            )
        )
        assert picked == {yes.id}
        segment = await segments.create(
            s, merchant_id=None, name="SMS", match="all", conditions=SMS
        )
        assert yes.id in await _members(db, segment.id)
        assert not {withdrew.id, never.id, deleted.id} & set(await _members(db, segment.id))
        negated = [{"kind": "has_consent", "channel": "sms", "not": True}]
        others = set(
            await s.scalars(
                segments.compile_rules(rules.parse("all", negated), merchant_id=None, user_ids=mine)
            )
        )
        assert others == {withdrew.id, never.id}


async def test_events_move_membership_and_the_count_incrementally(
    db: Database, make_user: Any
) -> None:
    a, b, _, _ = await _shops(db, make_user)
    fan, stranger = await make_user(), await make_user()
    spec = [{"kind": "scanned_qr", "days": 7}]
    async with db.session() as s:
        segment = await segments.create(
            s, merchant_id=a.id, name="Scanners", match="all", conditions=spec
        )
    assert await _members(db, segment.id) == []
    await _event(db, fan, Kind.qr_scan, merchant_id=a.id, subject_id=5)
    await _event(db, stranger, Kind.qr_scan, merchant_id=b.id, subject_id=6)  # another shop
    await _event(db, stranger, Kind.product_view, merchant_id=a.id, subject_id=1)  # not read
    assert await _members(db, segment.id) == [fan.id]
    assert await _count(db, segment.id) == 1
    await _event(db, fan, Kind.qr_scan, merchant_id=a.id, subject_id=5)  # again: no double
    assert await _count(db, segment.id) == 1
    async with db.session() as s:
        member = await s.get(SegmentMember, (segment.id, fan.id))
        assert member is not None
        assert member.recheck_at is not None
        # The first scan ages out 7 days after it was made.
        assert (
            dt.timedelta(days=7, seconds=-10)
            < member.recheck_at - utcnow()
            <= dt.timedelta(days=7, seconds=2)
        )


async def test_sweep_drops_members_whose_event_aged_out(db: Database, make_user: Any) -> None:
    a, _, _, _ = await _shops(db, make_user)
    old, recent = await make_user(), await make_user()
    now = utcnow()
    await _event(db, old, Kind.qr_scan, merchant_id=a.id, at=now - dt.timedelta(days=6, hours=23))
    await _event(db, recent, Kind.qr_scan, merchant_id=a.id, at=now - dt.timedelta(days=1))
    async with db.session() as s:
        segment = await segments.create(
            s,
            merchant_id=a.id,
            name="Recent",
            match="all",
            conditions=[{"kind": "scanned_qr", "days": 7}],
        )
    assert sorted(await _members(db, segment.id)) == sorted([old.id, recent.id])
    async with db.session() as s:
        assert await segments.sweep(s, now=now) == 0  # nothing due yet
        assert await segments.sweep(s, now=now + dt.timedelta(hours=2)) == 1
    assert await _members(db, segment.id) == [recent.id]
    assert await _count(db, segment.id) == 1
    async with db.session() as s:
        member = await s.get(SegmentMember, (segment.id, recent.id))
        assert member is not None
        assert member.recheck_at is not None
        assert member.recheck_at > now + dt.timedelta(days=5)


async def test_merchant_segments_see_only_their_own_orders(db: Database, make_user: Any) -> None:
    a, b, owner_a, owner_b = await _shops(db, make_user)
    buyer_a, buyer_b = await make_user(), await make_user()
    async with db.session() as s:
        parent = Category(slug="kitchen-seg", name_en="Kitchen", name_zh="厨房")
        s.add(parent)
        await s.flush()
        child = Category(slug="kettles-seg", name_en="Kettles", name_zh="水壶", parent_id=parent.id)
        s.add(child)
        await s.commit()
        cup_a = await catalog.create_product(
            s,
            merchant=a,
            name="Kettle A",
            price_minor=3000,
            stock=5,
            publish=True,
            category_id=child.id,
        )
        cup_b = await catalog.create_product(
            s,
            merchant=b,
            name="Kettle B",
            price_minor=3000,
            stock=5,
            publish=True,
            category_id=child.id,
        )
    await factories.buy(db, buyer_a, [cup_a], owner=owner_a, merchant_id=a.id, until="paid")
    await factories.buy(db, buyer_b, [cup_b], owner=owner_b, merchant_id=b.id, until="paid")
    bought = [{"kind": "bought_in_category", "category_id": parent.id, "days": 30}]
    spent = [{"kind": "spent_at_least", "amount_minor": 2000, "days": 30}]
    async with db.session() as s:
        for spec in (bought, spent, [{"kind": "bought_from_shop", "days": 30}]):
            assert await segments.preview(s, merchant_id=a.id, match="all", conditions=spec) == 1
            assert await segments.preview(s, merchant_id=None, match="all", conditions=spec) == 2
        more = [{"kind": "spent_at_least", "amount_minor": 999_999, "days": 30}]
        assert await segments.preview(s, merchant_id=a.id, match="all", conditions=more) == 0
        segment = await segments.create(
            s, merchant_id=a.id, name="Kettles", match="all", conditions=bought
        )
    assert await _members(db, segment.id) == [buyer_a.id]
    not_spent = [{"kind": "spent_at_least", "amount_minor": 2000, "days": 30, "not": True}]
    async with db.session() as s:
        picked = set(
            await s.scalars(
                segments.compile_rules(
                    rules.parse("all", not_spent),
                    merchant_id=a.id,
                    user_ids=[buyer_a.id, buyer_b.id],
                )
            )
        )
    # B's buyer never touched shop A: not A's contact, so not in A's "not spent" either.
    assert picked == set()
    async with db.session() as s:
        shop_a = await s.scalar(select(Shop.id).where(Shop.merchant_id == a.id))
        assert shop_a is not None
        await follows.follow(s, user_id=buyer_b.id, shop_id=shop_a)
        await s.commit()
        picked = set(
            await s.scalars(
                segments.compile_rules(
                    rules.parse("all", not_spent),
                    merchant_id=a.id,
                    user_ids=[buyer_a.id, buyer_b.id],
                )
            )
        )
    assert picked == {buyer_b.id}  # a follower of shop A now, who spent nothing there


async def test_first_channel_follows_and_any(db: Database, make_user: Any) -> None:
    a, _, _, _ = await _shops(db, make_user)
    wifi_first, qr_only, direct = await make_user(), await make_user(), await make_user()
    stranger = await make_user()
    now = utcnow()
    await _event(
        db,
        wifi_first,
        Kind.wifi_signup,
        merchant_id=a.id,
        subject_id=3,
        at=now - dt.timedelta(days=2),
    )
    await _event(
        db, wifi_first, Kind.qr_scan, merchant_id=a.id, subject_id=9, at=now - dt.timedelta(days=1)
    )
    await _event(db, qr_only, Kind.qr_scan, merchant_id=a.id, subject_id=9)
    ids = [wifi_first.id, qr_only.id, direct.id, stranger.id]
    # A's contacts who came directly: a follower of shop A; a stranger is no contact of A's.
    async with db.session() as s:
        shop_id = (await catalog.shop_for(s, merchant=a)).id
        s.add(ShopFollow(user_id=direct.id, shop_id=shop_id))
        await s.commit()

    async def pick(match: str, spec: list[dict[str, Any]]) -> set[int]:
        async with db.session() as s:
            q = segments.compile_rules(rules.parse(match, spec), merchant_id=a.id, user_ids=ids)
            return set(await s.scalars(q))

    assert await pick("all", [{"kind": "first_channel", "channel": "wifi"}]) == {wifi_first.id}
    assert await pick("all", [{"kind": "first_channel", "channel": "qr"}]) == {qr_only.id}
    assert await pick("all", [{"kind": "first_channel", "channel": "direct"}]) == {direct.id}
    assert await pick("all", [{"kind": "joined_wifi", "portal_id": 3}]) == {wifi_first.id}
    assert await pick("all", [{"kind": "joined_wifi", "portal_id": 4}]) == set()
    either = [{"kind": "follows_shop"}, {"kind": "scanned_qr", "qr_code_id": 9, "days": 1}]
    assert await pick("any", either) == {direct.id, qr_only.id}
    assert await pick("all", either) == set()


async def test_segments_are_private_to_their_merchant(db: Database, make_user: Any) -> None:
    a, b, _, _ = await _shops(db, make_user)
    async with db.session() as s:
        segment = await segments.create(
            s, merchant_id=a.id, name="Mine", match="all", conditions=SMS
        )
        with pytest.raises(NotFound):
            await segments.get(s, segment_id=segment.id, merchant_id=b.id)
        with pytest.raises(NotFound):
            await segments.get(s, segment_id=segment.id, merchant_id=None)
        with pytest.raises(DomainError) as bad:
            await segments.create(
                s,
                merchant_id=a.id,
                name="Bad",
                match="all",
                conditions=[{"kind": "bought_in_category"}],
            )
        assert "category_id is required" in bad.value.detail


# --- HTTP ---------------------------------------------------------------------------------


async def test_merchant_api_round_trip_masks_phones_and_exports(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    a, _, owner_a, _ = await _shops(db, make_user)
    fan = await make_user(name="=cmd()")
    await _consent(db, fan)
    async with db.session() as s:
        await follows.follow(s, user_id=fan.id, shop_id=(await catalog.shop_for(s, merchant=a)).id)
        await s.commit()
    headers = await auth_headers(owner_a)
    base = f"/api/v1/merchants/{a.id}/segments"
    preview = await client.post(
        f"{base}/preview", json={"match": "all", "rules": SMS}, headers=headers
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 1
    made = await client.post(
        base, json={"name": "Texts", "match": "all", "rules": SMS}, headers=headers
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["member_count"] == 1
    assert body["rules"] == SMS
    url = f"{base}/{body['id']}"
    listed = (await client.get(base, headers=headers)).json()
    assert [s["id"] for s in listed["items"]] == [body["id"]]
    people = (await client.get(f"{url}/members", headers=headers)).json()["items"]
    mine = next(p for p in people if p["user_id"] == fan.id)
    assert mine["phone_masked"] == f"{fan.phone[3:6]}****{fan.phone[-4:]}"
    assert fan.phone not in str(people)
    assert fan.phone[3:] not in str(people)
    csv = await client.get(f"{url}/export.csv", headers=headers)
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    assert f"{fan.id},{mine['phone_masked']},'=cmd()," in csv.text
    assert fan.phone[3:] not in csv.text
    bad = await client.put(url, json={"name": "X", "match": "most", "rules": SMS}, headers=headers)
    assert bad.status_code == 422
    changed = await client.put(
        url,
        json={
            "name": "Nobody",
            "match": "all",
            "rules": [{"kind": "joined_wifi", "portal_id": 99}],
        },
        headers=headers,
    )
    assert changed.status_code == 200
    assert changed.json()["member_count"] == 0
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404


async def test_admin_segments_are_the_platforms(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    admin = await make_user(admin=True)
    headers = await auth_headers(admin)
    made = await client.post(
        "/api/v1/admin/segments",
        json={"name": "All SMS", "match": "all", "rules": SMS},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    segment_id = made.json()["id"]
    got = await client.get(f"/api/v1/admin/segments/{segment_id}", headers=headers)
    assert got.status_code == 200
    assert got.json()["merchant_id"] is None
    consumer = await auth_headers(await make_user())
    assert (
        await client.get(f"/api/v1/admin/segments/{segment_id}", headers=consumer)
    ).status_code == 403


# --- pages --------------------------------------------------------------------------------


async def _page_client(app: Any, db: Database, user: User) -> httpx.AsyncClient:
    from mobimart.accounts import service as accounts
    from mobimart.web.deps import SESSION_COOKIE

    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        cookies={SESSION_COOKIE: token, "mm_csrf": "c" * 43},
    )


async def test_console_rule_builder_counts_saves_and_explains_mistakes(
    app: Any, db: Database, make_user: Any
) -> None:
    a, _, owner_a, _ = await _shops(db, make_user)
    fan = await make_user()
    await _consent(db, fan)
    await _event(db, fan, Kind.qr_scan, merchant_id=a.id, subject_id=4)
    base = f"/console/{a.id}/segments"
    form = {
        "csrf_token": "c" * 43,
        "name": "Scanned and texts",
        "match": "all",
        "kind_0": "has_consent",
        "channel_0": "sms",
        "kind_1": "scanned_qr",
        "id_1": "4",
        "days_1": "30",
        "kind_2": "",
    }
    async with await _page_client(app, db, owner_a) as c:
        assert (await c.get(base + "/new")).status_code == 200
        counted = await c.post(base, data=form | {"action": "count"})
        assert counted.status_code == 200
        assert "1 person matches now." in counted.text
        async with db.session() as s:
            assert await segments.listed(s, merchant_id=a.id, before=None, limit=5) == []
        wrong = await c.post(base, data=form | {"days_1": "", "action": "save"})
        assert wrong.status_code == 422
        assert "days is required" in wrong.text
        saved = await c.post(base, data=form | {"action": "save"})
        assert saved.status_code == 303
        page = await c.get(saved.headers["location"])
        assert page.status_code == 200
        assert fan.phone[3:6] + "****" + fan.phone[-4:] in page.text
        assert fan.phone[3:] not in page.text
        listing = await c.get(base)
        assert "Scanned and texts" in listing.text
        assert "1 person" in listing.text
        segment_id = int(saved.headers["location"].split("/")[-1].split("?")[0])
        gone = await c.post(f"{base}/{segment_id}/delete", data={"csrf_token": "c" * 43})
        assert gone.status_code == 303
        assert (await c.get(f"{base}/{segment_id}")).status_code == 404


async def test_consent_changes_move_has_consent_segments(db: Database, make_user: Any) -> None:
    person = await make_user()
    await _consent(db, person)
    async with db.session() as s:
        segment = await segments.create(s, merchant_id=None, name="T", match="all", conditions=SMS)
        scans = await segments.create(
            s,
            merchant_id=None,
            name="S",
            match="all",
            conditions=[{"kind": "scanned_qr", "days": 1}],
        )
    assert person.id in await _members(db, segment.id)
    before = await _count(db, segment.id)
    await _consent(db, person, granted=False)
    async with db.session() as s:
        # Only segments whose rules read consent are looked at.
        assert [seg.id for seg, _ in await segments._segments_reading(s, rules.CONSENT)] == [
            segment.id
        ]
        assert scans.id in [seg.id for seg, _ in await segments._segments_reading(s, "qr_scan")]
        assert await segments._segments_reading(s, "cart_abandoned") == []
        await segments.on_event(s, user_id=person.id, kind=rules.CONSENT)
        await s.commit()
    assert person.id not in await _members(db, segment.id)
    assert await _count(db, segment.id) == before - 1


async def test_brands_campaign_clicks_and_views_stay_within_the_merchant(
    db: Database, make_user: Any
) -> None:
    from mobimart.campaigns.models import Campaign
    from mobimart.catalog import brands
    from mobimart.catalog.models import BrandFollow

    a, b, _, _ = await _shops(db, make_user)
    fan = await make_user()
    async with db.session() as s:
        brand_a = await brands.create_brand(s, merchant=a, name="Acme Tea")
        brand_b = await brands.create_brand(s, merchant=b, name="Other Tea")
        s.add_all(
            [
                BrandFollow(user_id=fan.id, brand_id=brand_a.id),
                BrandFollow(user_id=fan.id, brand_id=brand_b.id),
            ]
        )
        mine = Campaign(merchant_id=a.id, name="a", channel="sms", template="x")
        theirs = Campaign(merchant_id=b.id, name="b", channel="sms", template="x")
        s.add_all([mine, theirs])
        await s.commit()
    await _event(db, fan, Kind.link_click, campaign_id=theirs.id, subject_id=1)
    await _event(db, fan, Kind.product_view, merchant_id=b.id, subject_id=77)
    # A scan at shop A makes the fan A's contact: a merchant's segments cover only those.
    await _event(db, fan, Kind.qr_scan, merchant_id=a.id, subject_id=2)

    async def count(merchant_id: int | None, spec: dict[str, Any]) -> int:
        async with db.session() as s:
            return await segments.preview(
                s, merchant_id=merchant_id, match="all", conditions=[spec]
            )

    assert await count(a.id, {"kind": "follows_brand", "brand_id": brand_a.id}) == 1
    assert await count(a.id, {"kind": "follows_brand", "brand_id": brand_b.id}) == 0
    assert await count(None, {"kind": "follows_brand", "brand_id": brand_b.id}) == 1
    assert await count(a.id, {"kind": "clicked_campaign", "days": 7}) == 0
    assert await count(b.id, {"kind": "clicked_campaign", "campaign_id": theirs.id, "days": 7}) == 1
    assert await count(None, {"kind": "clicked_campaign", "days": 7}) >= 1
    assert await count(a.id, {"kind": "viewed_product", "product_id": 77, "days": 7}) == 0
    assert await count(b.id, {"kind": "viewed_product", "product_id": 77, "days": 7}) == 1


async def test_sweep_re_evaluates_segments_people_enter_by_time_passing(
    db: Database, make_user: Any
) -> None:
    a, _, _, _ = await _shops(db, make_user)
    lapsed = await make_user()
    now = utcnow()
    await _event(db, lapsed, Kind.qr_scan, merchant_id=a.id, at=now - dt.timedelta(days=2))
    not_recent = [
        {"kind": "scanned_qr", "days": 3, "not": True},
        {"kind": "scanned_qr", "days": 30},
    ]
    async with db.session() as s:
        segment = await segments.create(
            s, merchant_id=a.id, name="Lapsed", match="all", conditions=not_recent
        )
    assert lapsed.id not in await _members(db, segment.id)
    async with db.session() as s:
        await segments.sweep(s, now=now + dt.timedelta(days=1, hours=1))
    # evaluate() counts from the real clock: a day later the scan is still recent.
    assert lapsed.id not in await _members(db, segment.id)
    async with db.session() as s:
        await s.execute(
            update(Segment)
            .where(Segment.id == segment.id)
            .values(evaluated_at=now - dt.timedelta(hours=2))
        )
        await s.execute(
            update(MarketingEvent)
            .where(MarketingEvent.user_id == lapsed.id)
            .values(at=now - dt.timedelta(days=4))
        )
        await s.commit()
        await segments.sweep(s)
    assert await _members(db, segment.id) == [lapsed.id]


# --- a merchant's segment covers its contacts only; events re-check their own merchant's ------


async def test_a_merchants_segment_covers_only_its_contacts(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    a, _, owner_a, _ = await _shops(db, make_user)
    admin = await make_user(admin=True)
    stranger, fan = await make_user(), await make_user()
    await _consent(db, stranger)
    await _consent(db, fan)
    owner = await auth_headers(owner_a)
    base = f"/api/v1/merchants/{a.id}/segments"
    made = await client.post(
        base, json={"name": "Texts", "match": "all", "rules": SMS}, headers=owner
    )
    assert made.status_code == 201, made.text
    assert made.json()["member_count"] == 0  # both agreed to texts; neither touched shop A
    no_push = {"match": "all", "rules": [{"kind": "has_consent", "channel": "push", "not": True}]}
    preview = await client.post(f"{base}/preview", json=no_push, headers=owner)
    assert preview.json()["count"] == 0  # a negation reaches no stranger either

    async with db.session() as s:
        shop_id = (await catalog.shop_for(s, merchant=a)).id
        await s.commit()
    followed = await client.put(f"/api/v1/shops/{shop_id}/follow", headers=await auth_headers(fan))
    assert followed.status_code == 200, followed.text
    url = f"{base}/{made.json()['id']}"
    # The follow made the fan A's contact: they joined at once, without a re-evaluation.
    assert (await client.get(url, headers=owner)).json()["member_count"] == 1
    people = (await client.get(f"{url}/members", headers=owner)).json()["items"]
    assert [p["user_id"] for p in people] == [fan.id]
    exported = (await client.get(f"{url}/export.csv", headers=owner)).text
    assert f"\n{fan.id}," in exported
    assert f"\n{stranger.id}," not in exported
    assert (await client.post(f"{base}/preview", json=no_push, headers=owner)).json()["count"] == 1

    # The platform's segment covers everyone who agreed.
    platform = await client.post(
        "/api/v1/admin/segments",
        json={"name": "All texts", "match": "all", "rules": SMS},
        headers=await auth_headers(admin),
    )
    assert platform.status_code == 201, platform.text
    async with db.session() as s:
        everyone = set(
            await segments.members(
                s, segment_id=platform.json()["id"], after_user_id=None, limit=100
            )
        )
    assert {stranger.id, fan.id} <= everyone


async def test_an_event_re_checks_only_its_merchants_and_the_platforms_segments(
    db: Database, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, _, _ = await _shops(db, make_user)
    person = await make_user()
    await _consent(db, person)
    scans = [{"kind": "scanned_qr", "days": 7}]
    async with db.session() as s:
        a_scans = await segments.create(
            s, merchant_id=a.id, name="A", match="all", conditions=scans
        )
        a_texts = await segments.create(s, merchant_id=a.id, name="T", match="all", conditions=SMS)
        b_scans = await segments.create(
            s, merchant_id=b.id, name="B", match="all", conditions=scans
        )
        b_texts = await segments.create(s, merchant_id=b.id, name="T", match="all", conditions=SMS)
        all_scans = await segments.create(
            s, merchant_id=None, name="P", match="all", conditions=scans
        )
    checked: list[int] = []
    recheck = segments._recheck_people

    async def spy(session: Any, *, segment: Segment, **kw: Any) -> None:
        checked.append(segment.id)
        await recheck(session, segment=segment, **kw)

    monkeypatch.setattr(segments, "_recheck_people", spy)
    # The first touch at B: the person may have just become B's contact, so all of B's
    # segments are re-checked (and the texts one gains them), A's none.
    await _event(db, person, Kind.qr_scan, merchant_id=b.id, subject_id=1)
    assert sorted(checked) == sorted([b_scans.id, b_texts.id, all_scans.id])
    assert await _members(db, b_texts.id) == [person.id]
    assert await _members(db, a_texts.id) == []
    # A regular at B: only the segments reading scans, of B and the platform.
    checked.clear()
    await _event(db, person, Kind.qr_scan, merchant_id=b.id, subject_id=1)
    assert sorted(checked) == sorted([b_scans.id, all_scans.id])
    # A consent change can move any merchant's segments.
    checked.clear()
    await _consent(db, person, granted=False)
    assert sorted(checked) == sorted([a_texts.id, b_texts.id])
    assert await _members(db, b_texts.id) == []
    assert a_scans.id not in checked


# PostgreSQL only: SQLite serialises writers, so there is no interleaving to test there.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_member_count_survives_an_event_during_an_evaluation(
    db: Database, make_user: Any, database_url: str
) -> None:
    """On PostgreSQL two transactions really interleave: an event adds a member (+1) and,
    before it commits, a full evaluation starts. Evaluate must not overwrite the +1 with a
    count taken before the event committed."""
    a, _, _, _ = await _shops(db, make_user)
    regular, newcomer = await make_user(), await make_user()
    await _consent(db, regular)
    await _consent(db, newcomer)
    await _event(db, regular, Kind.qr_scan, merchant_id=a.id, subject_id=1)
    async with db.session() as s:
        segment = await segments.create(
            s, merchant_id=a.id, name="Texts", match="all", conditions=SMS
        )
    assert await _count(db, segment.id) == 1
    async with db.session() as event_session:
        # The newcomer's first touch at A: they join A's segment (+1), not yet committed.
        await events.record(event_session, kind=Kind.qr_scan, user_id=newcomer.id, merchant_id=a.id)

        async def evaluate() -> int:
            async with db.session() as s:
                return await segments.evaluate(s, segment_id=segment.id)

        running = asyncio.create_task(evaluate())
        await asyncio.sleep(1)
        assert not running.done()  # waiting for the event's transaction
        await event_session.commit()
        assert await running == 2
    assert await _count(db, segment.id) == 2
    assert sorted(await _members(db, segment.id)) == sorted([regular.id, newcomer.id])


def test_every_text_cell_of_the_export_is_kept_from_spreadsheet_formulas() -> None:
    for risky in ("=1+1", "+1 415****0123", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert segments._cell(risky) == "'" + risky
    assert segments._cell("Ann") == "Ann"
    assert segments._cell("") == ""


async def test_a_product_view_puts_the_person_in_a_viewed_product_segment(
    app: Any, client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    from mobimart.web.visitor import VISITOR_COOKIE

    a, _, _, _ = await _shops(db, make_user)
    reader, api_reader = await make_user(), await make_user()
    async with db.session() as s:
        teapot = await catalog.create_product(
            s, merchant=a, name="Teapot", price_minor=3000, stock=5, publish=True
        )
        segment = await segments.create(
            s,
            merchant_id=a.id,
            name="Teapot lookers",
            match="all",
            conditions=[{"kind": "viewed_product", "product_id": teapot.id, "days": 7}],
        )
    assert await _members(db, segment.id) == []
    async with await _page_client(app, db, reader) as browser:
        for _ in range(2):  # a reload within the hour is not another view
            assert (await browser.get(f"/products/{teapot.id}")).status_code == 200
    api = await client.get(f"/api/v1/products/{teapot.id}", headers=await auth_headers(api_reader))
    assert api.status_code == 200
    assert sorted(await _members(db, segment.id)) == sorted([reader.id, api_reader.id])
    assert await _count(db, segment.id) == 2
    # A signed-out browser with the visitor cookie: kept for the visitor (claimed at sign-in);
    # one without it, or with a bad token, records nothing.
    visitor = "x" * 22
    cookie = {"Cookie": f"{VISITOR_COOKIE}={visitor}"}
    assert (await client.get(f"/products/{teapot.id}", headers=cookie)).status_code == 200
    assert (await client.get(f"/api/v1/products/{teapot.id}", headers=cookie)).status_code == 200
    assert (await client.get(f"/products/{teapot.id}")).status_code == 200
    bad = {"Authorization": "Bearer nonsense"}
    assert (await client.get(f"/api/v1/products/{teapot.id}", headers=bad)).status_code == 200
    async with db.session() as s:
        views = (
            await s.execute(
                select(MarketingEvent.user_id, MarketingEvent.visitor, MarketingEvent.merchant_id)
                .where(
                    MarketingEvent.kind == "product_view", MarketingEvent.subject_id == teapot.id
                )
                .order_by(MarketingEvent.id)
            )
        ).all()
    assert [tuple(v) for v in views] == [
        (reader.id, None, a.id),
        (api_reader.id, None, a.id),
        (None, visitor, a.id),
    ]
