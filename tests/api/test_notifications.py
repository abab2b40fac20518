"""The in-app inbox: listing, unread count, marking read, the tab bar's badge, and order
updates landing in the buyer's inbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.db import Database
from mobimart.notifications import service as notifications
from mobimart.web.deps import SESSION_COOKIE
from tests.api.test_fulfilment import _paid_order

CSRF = "c" * 43


async def _notes(db: Database, user: User, count: int, kind: str = "system") -> list[int]:
    async with db.session() as s:
        ids = []
        for i in range(count):
            note = await notifications.notify(
                s, user_id=user.id, kind=kind, title=f"Note {i}", link=f"/products/{i + 1}"
            )
            ids.append(note.id)
        await s.commit()
    return ids


async def _cookies(db: Database, user: User) -> dict[str, str]:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return {SESSION_COOKIE: token, "mm_csrf": CSRF}


async def test_list_is_newest_first_in_pages_and_filters_unread(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    user = await make_user()
    ids = await _notes(db, user, 5)
    headers = await auth_headers(user)
    first = (await client.get("/api/v1/me/notifications?limit=3", headers=headers)).json()
    assert [n["id"] for n in first["items"]] == ids[::-1][:3]
    assert first["items"][0] | {"created_at": None} == {
        "id": ids[4],
        "kind": "system",
        "title": "Note 4",
        "body": "",
        "link": "/products/5",
        "read": False,
        "created_at": None,
    }
    rest = (
        await client.get(
            "/api/v1/me/notifications",
            params={"limit": 3, "cursor": first["next_cursor"]},
            headers=headers,
        )
    ).json()
    assert [n["id"] for n in rest["items"]] == ids[::-1][3:]
    assert rest["next_cursor"] is None

    marked = await client.post(
        "/api/v1/me/notifications/read", json={"ids": ids[:2]}, headers=headers
    )
    assert marked.json() == {"marked": 2, "unread": 3}
    unread = (await client.get("/api/v1/me/notifications?unread=true", headers=headers)).json()
    assert [n["id"] for n in unread["items"]] == ids[::-1][:3]
    count = await client.get("/api/v1/me/notifications/unread-count", headers=headers)
    assert count.json() == {"unread": 3}


async def test_mark_all_read_and_others_ids_change_nothing(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    me, other = await make_user(), await make_user()
    mine = await _notes(db, me, 2)
    theirs = await _notes(db, other, 2)
    headers = await auth_headers(me)
    # Someone else's ids: a no-op, not an error that would tell they exist.
    response = await client.post(
        "/api/v1/me/notifications/read", json={"ids": theirs}, headers=headers
    )
    assert response.status_code == 200
    assert response.json() == {"marked": 0, "unread": 2}
    other_headers = await auth_headers(other)
    other_count = await client.get("/api/v1/me/notifications/unread-count", headers=other_headers)
    assert other_count.json() == {"unread": 2}
    listed = (await client.get("/api/v1/me/notifications", headers=headers)).json()
    assert {n["id"] for n in listed["items"]} == set(mine)

    everything = await client.post("/api/v1/me/notifications/read", json={}, headers=headers)
    assert everything.json() == {"marked": 2, "unread": 0}
    assert (
        await client.get("/api/v1/me/notifications/unread-count", headers=other_headers)
    ).json() == {"unread": 2}


async def test_mark_read_refuses_a_malformed_list(
    client: httpx.AsyncClient, make_user: Any, auth_headers: Any
) -> None:
    headers = await auth_headers(await make_user())
    for body in ({"ids": [0]}, {"ids": list(range(1, 102))}, {"all": True}):
        response = await client.post("/api/v1/me/notifications/read", json=body, headers=headers)
        assert response.status_code == 422, body


async def test_tab_bar_badge_is_in_the_page_html(app: Any, db: Database, make_user: Any) -> None:
    user = await make_user()
    await _notes(db, user, 3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", cookies=await _cookies(db, user)
    ) as c:
        page = await c.get("/cart")
        assert '<span class="tab-count" id="unread-badge"' in page.text
        assert ">3</span>" in page.text.split('id="unread-badge"')[1][:80]
        # A script fetching a fragment has no tab bar, so nothing is counted for it.
        fetched = await c.get("/cart", headers={"Sec-Fetch-Dest": "empty"})
        assert 'id="unread-badge"' not in fetched.text

        read = await c.post("/me/notifications/read", data={"csrf_token": CSRF})
        assert read.status_code == 303
        page = await c.get(read.headers["location"])
        assert page.status_code == 200
        assert 'id="tab-inbox"' in page.text
        assert 'id="unread-badge"' not in page.text
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as anonymous:
        assert 'id="tab-inbox"' not in (await anonymous.get("/cart")).text


async def test_inbox_page_highlights_unread_and_opening_one_reads_it(
    app: Any, db: Database, make_user: Any
) -> None:
    user, other = await make_user(), await make_user()
    first, second = await _notes(db, user, 2)
    (theirs,) = await _notes(db, other, 1)
    async with db.session() as s:
        await notifications.notify(
            s, user_id=user.id, kind="system", title="<script>alert(1)</script>"
        )
        await s.commit()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", cookies=await _cookies(db, user)
    ) as c:
        page = (await c.get("/me/notifications")).text
        assert page.count('class="note unread"') == 3
        assert "<script>alert(1)" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert page.index("Note 1") < page.index("Note 0")  # newest first

        opened = await c.post(f"/me/notifications/{first}/open", data={"csrf_token": CSRF})
        assert opened.status_code == 303
        assert opened.headers["location"] == "/products/1"
        page = (await c.get("/me/notifications")).text
        assert page.count('class="note unread"') == 2
        assert 'id="mark-all-read"' in page

        # Someone else's notification is not there for this person.
        stolen = await c.post(f"/me/notifications/{theirs}/open", data={"csrf_token": CSRF})
        assert stolen.status_code == 404
        forged = await c.post(f"/me/notifications/{second}/open", data={"csrf_token": "x" * 43})
        assert forged.status_code == 403
    async with db.session() as s:
        assert await notifications.unread_count(s, user_id=other.id) == 1
        assert await notifications.unread_count(s, user_id=user.id) == 2


async def test_order_updates_raise_one_line_per_order(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _paid_order(client, db, make_user, auth_headers)
    listed = (await client.get("/api/v1/me/notifications", headers=world["buyer"])).json()
    (paid,) = listed["items"]
    assert paid["kind"] == "order"
    assert paid["link"] == f"/orders/{world['order']}"
    assert paid["title"] == notifications.ORDER_TITLES["paid"]
    await client.post("/api/v1/me/notifications/read", json={}, headers=world["buyer"])

    shipped = await client.post(
        world["base"] + "/shipment",
        json={"carrier": "sf", "tracking_number": "SF1234567890"},
        headers=world["owner"],
    )
    assert shipped.status_code == 201, shipped.text
    listed = (await client.get("/api/v1/me/notifications", headers=world["buyer"])).json()
    (update,) = listed["items"]  # the same order's line, replaced and unread again
    assert update["title"] == notifications.ORDER_TITLES["shipped"]
    assert update["read"] is False

    await client.post(
        world["base"] + "/tracking-events", json={"status": "delivered"}, headers=world["owner"]
    )
    listed = (await client.get("/api/v1/me/notifications", headers=world["buyer"])).json()
    assert [n["title"] for n in listed["items"]] == [notifications.ORDER_TITLES["delivered"]]
    # The shop's staff are not told about their own order updates.
    staff = (await client.get("/api/v1/me/notifications", headers=world["owner"])).json()
    assert staff["items"] == []


async def test_a_refund_tells_the_buyer(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    world = await _paid_order(client, db, make_user, auth_headers)
    refunded = await client.post(
        world["base"] + "/refunds", json={"reason": "out of stock"}, headers=world["owner"]
    )
    assert refunded.status_code == 201, refunded.text
    (note,) = (await client.get("/api/v1/me/notifications", headers=world["buyer"])).json()["items"]
    # Refunding all of an unshipped order also cancels it: one line says what happened.
    assert note["title"] == notifications.ORDER_TITLES["refunded"]
    assert note["link"] == f"/orders/{world['order']}"
