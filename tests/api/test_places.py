"""Stores, geofences and offers over the API and the console; "near me" sorted by distance;
entering a geofence recorded once per person and fence per hour."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.campaigns import geo, segments
from mobimart.campaigns.models import MarketingEvent, SegmentMember
from mobimart.db import Database, utcnow
from mobimart.infra import throttle
from mobimart.promotions import service as promotions
from mobimart.promotions.domain import Kind, Scope
from mobimart.web.deps import SESSION_COOKIE
from tests import factories

HERE = (31.2304, 121.4737)  # People's Square, Shanghai
CSRF = "x" * 43


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point `north_m` north and `east_m` east (small distances, flat-earth is plenty)."""
    dlat = math.degrees(north_m / geo.EARTH_RADIUS_M)
    dlng = math.degrees(east_m / (geo.EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lng + dlng


async def _shop(
    db: Database, make_user: Any, n: int = 1, status: str = "approved"
) -> tuple[Any, User]:
    owner = await make_user()
    admin = await make_user(admin=True) if status == "approved" else None
    return await factories.merchant(db, owner, admin=admin, status=status, n=n), owner


async def _events(db: Database, user: User) -> list[MarketingEvent]:
    async with db.session() as s:
        rows = await s.scalars(
            select(MarketingEvent)
            .where(MarketingEvent.user_id == user.id)
            .order_by(MarketingEvent.id)
        )
        return list(rows)


async def test_nearby_lists_stores_by_distance_within_the_radius(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop, owner = await _shop(db, make_user)
    pending, pending_owner = await _shop(db, make_user, n=2, status="pending")
    headers = await auth_headers(owner)
    url = f"/api/v1/merchants/{shop.id}/stores"
    spots = {"far": (3_000, 1_000), "near": (150, 0), "middle": (0, -1_200), "out": (7_000, 0)}
    for name, (north, east) in spots.items():
        lat, lng = offset(*HERE, north, east)
        made = await client.post(url, json={"name": name, "lat": lat, "lng": lng}, headers=headers)
        assert made.status_code == 201, made.text
        assert made.json()["h3"] == geo.cell(lat, lng)
    hidden = await client.post(
        f"/api/v1/merchants/{pending.id}/stores",
        json={"name": "unapproved", "lat": HERE[0], "lng": HERE[1]},
        headers=await auth_headers(pending_owner),
    )
    assert hidden.status_code == 201

    found = await client.get("/api/v1/nearby", params={"lat": HERE[0], "lng": HERE[1]})
    assert found.status_code == 200
    stores = found.json()["stores"]
    assert [s["name"] for s in stores] == ["near", "middle", "far"]  # 7 km is beyond 5 km
    assert [s["distance_m"] for s in stores] == pytest.approx([150, 1_200, 3_162], abs=3)
    assert stores[0]["merchant_name"] == shop.name
    wider = await client.get(
        "/api/v1/nearby", params={"lat": HERE[0], "lng": HERE[1], "radius_m": 10_000}
    )
    assert [s["name"] for s in wider.json()["stores"]][-1] == "out"

    page = await client.get("/nearby", params={"lat": f"{HERE[0]}", "lng": f"{HERE[1]}"})
    assert page.status_code == 200
    listed = re.findall(r'<li data-distance="(\d+)"><strong>([^<]+)</strong>', page.text)
    assert [name for _d, name in listed] == ["near", "middle", "far"]
    typed = await client.get("/nearby", params={"place": f"{HERE[0]}, {HERE[1]}"})
    assert re.findall(r'<li data-distance="\d+"><strong>([^<]+)</strong>', typed.text) == [
        "near",
        "middle",
        "far",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "lat": 90.5, "lng": 0}, "lat"),
        ({"name": "x", "lat": 0, "lng": -180.5}, "lng"),
        ({"name": "", "lat": 0, "lng": 0}, "name"),
    ],
)
async def test_store_coordinates_are_validated(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    body: dict[str, Any],
    field: str,
) -> None:
    shop, owner = await _shop(db, make_user)
    refused = await client.post(
        f"/api/v1/merchants/{shop.id}/stores", json=body, headers=await auth_headers(owner)
    )
    assert refused.status_code == 422
    assert field in refused.text


async def test_geofences_are_validated(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop, owner = await _shop(db, make_user)
    other, other_owner = await _shop(db, make_user, n=2)
    headers = await auth_headers(owner)
    url = f"/api/v1/merchants/{shop.id}/geofences"
    centre = {"lat": HERE[0], "lng": HERE[1]}
    for bad in (
        {"name": "tiny", **centre, "radius_m": 19},
        {"name": "huge", **centre, "radius_m": 50_001},
        {"name": "no centre", "radius_m": 100},
        {"name": "bad cells", "cells": ["nope"]},
        {"name": "both", "cells": [geo.cell(*HERE)], "radius_m": 100},
        {"name": "coarse", "cells": [geo.cell(*HERE, 2)]},
    ):
        refused = await client.post(url, json=bad, headers=headers)
        assert refused.status_code == 422, (bad, refused.text)
    edge = await client.post(url, json={"name": "edge", **centre, "radius_m": 20}, headers=headers)
    assert edge.status_code == 201
    # Another merchant's store cannot centre this merchant's fence.
    store = await client.post(
        f"/api/v1/merchants/{other.id}/stores",
        json={"name": "theirs", **centre},
        headers=await auth_headers(other_owner),
    )
    theirs = await client.post(
        url, json={"name": "x", "store_id": store.json()["id"], "radius_m": 100}, headers=headers
    )
    assert theirs.status_code == 404


async def test_entering_a_geofence_is_recorded_once_an_hour(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop, owner = await _shop(db, make_user)
    headers = await auth_headers(owner)
    store = await client.post(
        f"/api/v1/merchants/{shop.id}/stores",
        json={"name": "Flagship", "lat": HERE[0], "lng": HERE[1]},
        headers=headers,
    )
    fence = await client.post(
        f"/api/v1/merchants/{shop.id}/geofences",
        json={"name": "Around the flagship", "store_id": store.json()["id"], "radius_m": 200},
        headers=headers,
    )
    assert fence.status_code == 201, fence.text
    fence_id = fence.json()["id"]
    cells = await client.post(
        f"/api/v1/merchants/{shop.id}/geofences",
        json={"name": "The block", "cells": [geo.cell(*HERE, 10)]},
        headers=headers,
    )
    assert cells.status_code == 201, cells.text
    offer = await client.post(
        f"/api/v1/merchants/{shop.id}/offers",
        json={"geofence_id": fence_id, "title": "Free coffee inside"},
        headers=headers,
    )
    assert offer.status_code == 201
    ended = await client.post(
        f"/api/v1/merchants/{shop.id}/offers",
        json={
            "geofence_id": fence_id,
            "title": "Old offer",
            "ends_at": (utcnow() - dt.timedelta(days=1)).isoformat(),
        },
        headers=headers,
    )
    assert ended.status_code == 201

    async with db.session() as s:
        inside_segment = await segments.create(
            s,
            merchant_id=shop.id,
            name="In the flagship zone",
            match="all",
            conditions=[{"kind": "in_geofence", "geofence_id": fence_id, "days": 1}],
        )
    shopper = await make_user()
    shopper_headers = await auth_headers(shopper)
    inside = offset(*HERE, 120, 0)  # in the 200 m circle, outside the one res-10 cell
    outside = offset(*HERE, 350, 0)

    anonymous = await client.get("/api/v1/nearby", params={"lat": inside[0], "lng": inside[1]})
    assert "entered_geofences" not in anonymous.json()
    assert [o["title"] for o in anonymous.json()["offers"]] == ["Free coffee inside"]
    assert anonymous.json()["offers"][0]["distance_m"] == 0
    # A search, even signed in, is read-only: only a posted position records an entry.
    browsing = await client.get(
        "/api/v1/nearby", params={"lat": inside[0], "lng": inside[1]}, headers=shopper_headers
    )
    assert browsing.status_code == 200
    assert await _events(db, shopper) == []

    def here(point: tuple[float, float]) -> Any:
        return client.post(
            "/api/v1/me/position",
            json={"lat": point[0], "lng": point[1]},
            headers=shopper_headers,
        )

    away = await here(outside)
    assert away.status_code == 200, away.text
    assert away.json()["entered_geofences"] == []

    first = await here(inside)
    assert first.json()["entered_geofences"] == [fence_id]
    again = await here(inside)
    assert again.json()["entered_geofences"] == []
    centre = await here(HERE)
    assert centre.json()["entered_geofences"] == [cells.json()["id"]]  # the circle: already counted
    assert (await client.post("/api/v1/me/position", json={"lat": 1, "lng": 2})).status_code == 401
    assert (await here((95.0, 0.0))).status_code == 422

    events = await _events(db, shopper)
    assert [(e.kind, e.subject_id) for e in events] == [
        ("geofence_enter", fence_id),
        ("geofence_enter", cells.json()["id"]),
    ]
    assert events[0].merchant_id == shop.id
    assert (events[0].lat, events[0].lng) == (round(inside[0], 5), round(inside[1], 5))
    async with db.session() as s:  # segments see the entry as it happens
        assert await s.get(SegmentMember, (inside_segment.id, shopper.id)) is not None

    later = utcnow() + dt.timedelta(minutes=61)
    monkeypatch.setattr(throttle, "utcnow", lambda: later)
    next_hour = await here(inside)
    assert next_hour.json()["entered_geofences"] == [fence_id]
    assert len(await _events(db, shopper)) == 3


async def test_the_nearby_page_is_read_only_and_the_posted_position_records(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    """A GET of /nearby (a link from another site, a prefetch, a typed place) records
    nothing; nearby.js posts the browser's own fix, with the CSRF token, to record it."""
    shop, owner = await _shop(db, make_user)
    fence = await client.post(
        f"/api/v1/merchants/{shop.id}/geofences",
        json={"name": "Plaza", "lat": HERE[0], "lng": HERE[1], "radius_m": 500},
        headers=await auth_headers(owner),
    )
    shopper = await make_user()
    async with db.session() as s:
        fresh = await s.get(User, shopper.id)
        assert fresh is not None
        token, _row = await accounts.issue_token(s, user=fresh, kind="session")
    client.cookies.set(SESSION_COOKIE, token)
    client.cookies.set("mm_csrf", CSRF)
    page = await client.get("/nearby", params={"lat": str(HERE[0]), "lng": str(HERE[1])})
    assert page.status_code == 200
    assert f'data-csrf="{CSRF}"' in page.text  # for nearby.js's post
    typed = await client.get("/nearby", params={"place": f"{HERE[0]}, {HERE[1]}"})
    assert typed.status_code == 200
    assert await _events(db, shopper) == []

    position = {"lat": str(HERE[0]), "lng": str(HERE[1])}
    forged = await client.post("/nearby/position", data={**position, "csrf_token": "y" * 43})
    assert forged.status_code == 403
    assert await _events(db, shopper) == []
    for _ in range(2):
        posted = await client.post("/nearby/position", data={**position, "csrf_token": CSRF})
        assert posted.status_code == 204
    assert [(e.kind, e.subject_id) for e in await _events(db, shopper)] == [
        ("geofence_enter", fence.json()["id"])
    ]
    client.cookies.delete(SESSION_COOKIE)
    anonymous = await client.get("/nearby")
    assert "data-csrf" not in anonymous.text
    signed_out = await client.post("/nearby/position", data={**position, "csrf_token": CSRF})
    assert signed_out.status_code == 303

    bad = await client.get("/nearby", params={"lat": "95", "lng": "0"})
    assert bad.status_code == 422
    assert "Latitude must be between -90 and 90." in bad.text
    garbled = await client.get("/nearby", params={"place": "somewhere nice"})
    assert garbled.status_code == 422


async def test_offers_link_only_the_merchants_own_coupons(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop, owner = await _shop(db, make_user)
    other, _other_owner = await _shop(db, make_user, n=2)
    headers = await auth_headers(owner)
    fence = await client.post(
        f"/api/v1/merchants/{shop.id}/geofences",
        json={"name": "F", "lat": HERE[0], "lng": HERE[1], "radius_m": 100},
        headers=headers,
    )
    async with db.session() as s:
        mine = await promotions.create(
            s,
            merchant_id=shop.id,
            spec=promotions.Spec(
                name="C", kind=Kind.fixed, scope=Scope.order, value=100, code="NEAR10"
            ),
        )
        theirs = await promotions.create(
            s,
            merchant_id=other.id,
            spec=promotions.Spec(
                name="T", kind=Kind.fixed, scope=Scope.order, value=100, code="THEIRS"
            ),
        )
    url = f"/api/v1/merchants/{shop.id}/offers"
    base = {"geofence_id": fence.json()["id"], "title": "Coupon nearby"}
    ok = await client.post(url, json={**base, "promotion_id": mine.id}, headers=headers)
    assert ok.status_code == 201
    assert ok.json()["promotion_id"] == mine.id
    assert (
        await client.post(url, json={**base, "promotion_id": theirs.id}, headers=headers)
    ).status_code == 404
    backwards = {**base, "starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}
    assert (await client.post(url, json=backwards, headers=headers)).status_code == 422
    listed = await client.get(url, headers=headers)
    assert [o["title"] for o in listed.json()["items"]] == ["Coupon nearby"]
    gone = await client.delete(f"{url}/{ok.json()['id']}", headers=headers)
    assert gone.status_code == 204
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(MarketingEvent)) == 0


async def test_the_console_manages_stores_fences_and_offers(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    shop, owner = await _shop(db, make_user)
    async with db.session() as s:
        fresh = await s.get(User, owner.id)
        assert fresh is not None
        token, _row = await accounts.issue_token(s, user=fresh, kind="session")
    client.cookies.set(SESSION_COOKIE, token)
    client.cookies.set("mm_csrf", CSRF)
    base = f"/console/{shop.id}/places"
    assert (await client.get(base)).status_code == 200
    bad = await client.post(
        f"{base}/stores", data={"csrf_token": CSRF, "name": "Kiosk", "location": "91, 10"}
    )
    assert bad.status_code == 422
    assert "Latitude must be between -90 and 90." in bad.text
    assert 'value="Kiosk"' in bad.text  # what was typed stays
    made = await client.post(
        f"{base}/stores",
        data={"csrf_token": CSRF, "name": "Kiosk", "location": f"{HERE[0]}, {HERE[1]}"},
    )
    assert made.status_code == 303
    page = await client.get(base)
    store_id = re.search(r"/places/stores/(\d+)/delete", page.text)
    assert store_id
    tiny = await client.post(
        f"{base}/geofences",
        data={"csrf_token": CSRF, "name": "Tiny", "store_id": store_id.group(1), "radius_m": "5"},
    )
    assert tiny.status_code == 422
    fence = await client.post(
        f"{base}/geofences",
        data={
            "csrf_token": CSRF,
            "name": "Kiosk zone",
            "store_id": store_id.group(1),
            "radius_m": "80",
        },
    )
    assert fence.status_code == 303
    page = await client.get(base)
    fence_id = re.search(r"/places/geofences/(\d+)/delete", page.text)
    assert fence_id
    offer = await client.post(
        f"{base}/offers",
        data={
            "csrf_token": CSRF,
            "geofence_id": fence_id.group(1),
            "title": "2 for 1",
            "ends_on": "2099-01-01",
        },
    )
    assert offer.status_code == 303
    assert "2 for 1" in (await client.get(base)).text
    deleted = await client.post(
        f"{base}/geofences/{fence_id.group(1)}/delete", data={"csrf_token": CSRF}
    )
    assert deleted.status_code == 303
    after = (await client.get(base)).text
    assert "2 for 1" not in after  # offers go with their fence
    assert "Kiosk zone" not in after
