"""Campaign authoring over HTTP: drafts checked as written (segment of this merchant, known
variables, links), the estimate, scheduling, sending now, cancelling, the list and the
console pages."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mobimart.accounts.models import User
from mobimart.campaigns import campaigns, sending, tasks
from mobimart.campaigns.models import Campaign, CampaignMessage, Segment, SegmentMember
from mobimart.db import Database, utcnow
from mobimart.merchants.models import Merchant
from mobimart.web.deps import SESSION_COOKIE
from tests import factories


@dataclass
class Side:
    merchant: Merchant
    owner: User
    headers: dict[str, str]
    segment_id: int
    base: str


async def _segment(db: Database, merchant_id: int | None, *, members: int) -> int:
    async with db.session() as s:
        segment = Segment(merchant_id=merchant_id, name="Tea lovers", member_count=members)
        s.add(segment)
        await s.commit()
        return segment.id


async def _side(db: Database, make_user: Any, auth_headers: Any, admin: User, n: int) -> Side:
    owner = await make_user(name=f"owner{n}")
    merchant = await factories.merchant(db, owner, admin=admin, n=n)
    segment_id = await _segment(db, merchant.id, members=1000)
    return Side(
        merchant,
        owner,
        await auth_headers(owner),
        segment_id,
        f"/api/v1/merchants/{merchant.id}/campaigns",
    )


@pytest.fixture
async def sides(db: Database, make_user: Any, auth_headers: Any) -> tuple[Side, Side]:
    admin = await make_user(admin=True)
    return (
        await _side(db, make_user, auth_headers, admin, 1),
        await _side(db, make_user, auth_headers, admin, 2),
    )


def _draft(side: Side, **over: Any) -> dict[str, Any]:
    return {
        "name": "Double 12",
        "channel": "sms",
        "segment_id": side.segment_id,
        "template": "{name}, 20% off at {shop}: {link}",
        "link_url": "/shops/1",
    } | over


async def test_create_checks_and_stores_the_sms_with_the_opt_out_hint(
    client: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    a, _b = sides
    response = await client.post(a.base, json=_draft(a), headers=a.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "draft"
    assert body["merchant_id"] == a.merchant.id
    assert body["template"] == "{name}, 20% off at {shop}: {link} Reply STOP to opt out"
    assert body["cost_per_part_minor"] == 5
    # Push and inbox carry no hint and cost nothing.
    inbox = await client.post(
        a.base, json=_draft(a, channel="inbox", template="{name}, 新品到了"), headers=a.headers
    )
    assert inbox.status_code == 201
    assert inbox.json()["template"] == "{name}, 新品到了"
    assert inbox.json()["cost_per_part_minor"] == 0


@pytest.mark.parametrize(
    ("over", "detail"),
    [
        ({"template": "Hi {nmae}"}, "Unknown variable {nmae}"),
        ({"template": "Hi {name"}, "brace without its partner"),
        ({"template": "{link}", "link_url": None}, "{link} needs a link address"),
        ({"link_url": "javascript:alert(1)"}, "path on this site"),
        ({"link_url": "http://example.com/x"}, "path on this site"),
        ({"link_url": "//evil.example/x"}, "path on this site"),
        ({"link_url": "https://user@evil.example/"}, "path on this site"),
        ({"template": "优" * 500}, "SMS parts"),
        ({"channel": "inbox", "template": "a" * 501}, "at most 500"),
    ],
)
async def test_invalid_drafts_are_refused_with_a_reason(
    client: httpx.AsyncClient, sides: tuple[Side, Side], over: dict[str, Any], detail: str
) -> None:
    a, _b = sides
    response = await client.post(a.base, json=_draft(a, **over), headers=a.headers)
    assert response.status_code == 422, response.text
    assert detail in response.json()["detail"]


async def test_unknown_channel_is_a_validation_error(
    client: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    a, _b = sides
    response = await client.post(a.base, json=_draft(a, channel="fax"), headers=a.headers)
    assert response.status_code == 422


async def test_https_and_site_links_are_accepted(
    client: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    a, _b = sides
    for url in ("/products/3?src=sms", "https://shop.example.cn/sale"):
        response = await client.post(a.base, json=_draft(a, link_url=url), headers=a.headers)
        assert response.status_code == 201, response.text
        assert response.json()["link_url"] == url


async def test_another_merchants_segment_and_campaigns_are_not_found(
    client: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    a, b = sides
    stolen = await client.post(b.base, json=_draft(b, segment_id=a.segment_id), headers=b.headers)
    assert stolen.status_code == 404
    created = await client.post(a.base, json=_draft(a), headers=a.headers)
    campaign_id = created.json()["id"]
    # B's staff ask for A's campaign through their own merchant: not found either.
    assert (await client.get(f"{b.base}/{campaign_id}", headers=b.headers)).status_code == 404
    assert (await client.get(f"{a.base}/{campaign_id}", headers=b.headers)).status_code == 404
    patch = await client.patch(
        f"{a.base}/{campaign_id}", json={"segment_id": b.segment_id}, headers=a.headers
    )
    assert patch.status_code == 404
    listed = await client.get(b.base, headers=b.headers)
    assert listed.json()["items"] == []


async def test_estimate_is_members_times_parts_times_price(
    client: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    a, _b = sides
    # 60 Chinese characters + "{name}" + " 回T退订": over 70, so two parts of 67.
    created = await client.post(
        a.base, json=_draft(a, template="{name}" + "优" * 60, link_url=None), headers=a.headers
    )
    est = (await client.get(f"{a.base}/{created.json()['id']}/estimate", headers=a.headers)).json()
    assert est["encoding"] == "UCS-2"
    assert est["characters"] == 2 + 60 + 5  # "李华" is the sample name
    assert est["text"].startswith("李华优")
    assert est["parts"] == 1
    assert (est["recipients"], est["cost_minor"]) == (1000, 1000 * 1 * 5)
    longer = await client.patch(
        f"{a.base}/{created.json()['id']}",
        json={"template": "{name}" + "优" * 70},
        headers=a.headers,
    )
    assert longer.status_code == 200, longer.text
    est = (await client.get(f"{a.base}/{created.json()['id']}/estimate", headers=a.headers)).json()
    assert (est["characters"], est["parts"], est["cost_minor"]) == (77, 2, 1000 * 2 * 5)
    # Switched to push, the draft loses the SMS opt-out hint it was given.
    switched = await client.patch(
        f"{a.base}/{created.json()['id']}", json={"channel": "inbox"}, headers=a.headers
    )
    assert switched.json()["template"] == "{name}" + "优" * 70
    push = await client.post(a.base, json=_draft(a, channel="push"), headers=a.headers)
    est = (await client.get(f"{a.base}/{push.json()['id']}/estimate", headers=a.headers)).json()
    assert (est["parts"], est["cost_minor"], est["recipients"]) == (0, 0, 1000)


async def test_schedule_in_the_past_is_refused_and_the_future_is_kept(
    client: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    a, _b = sides
    campaign_id = (await client.post(a.base, json=_draft(a), headers=a.headers)).json()["id"]
    url = f"{a.base}/{campaign_id}/schedule"
    past = (utcnow() - dt.timedelta(minutes=1)).isoformat()
    refused = await client.post(url, json={"at": past}, headers=a.headers)
    assert refused.status_code == 422
    assert "past" in refused.json()["detail"]
    naive = await client.post(url, json={"at": "2030-01-01T09:00:00"}, headers=a.headers)
    assert naive.status_code == 422
    at = (utcnow() + dt.timedelta(days=1)).replace(microsecond=0)
    local = at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    scheduled = await client.post(url, json={"at": local}, headers=a.headers)
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    assert dt.datetime.fromisoformat(scheduled.json()["scheduled_at"]) == at
    # A scheduled campaign is no longer a draft...
    patch = await client.patch(f"{a.base}/{campaign_id}", json={"name": "x"}, headers=a.headers)
    assert patch.status_code == 409
    # ...until cancelled, after which nothing moves it.
    cancelled = await client.post(f"{a.base}/{campaign_id}/cancel", headers=a.headers)
    assert cancelled.json()["status"] == "cancelled"
    again = await client.post(f"{a.base}/{campaign_id}/cancel", headers=a.headers)
    assert again.status_code == 409
    assert (await client.post(url, json={"at": local}, headers=a.headers)).status_code == 409


async def test_send_needs_a_segment(client: httpx.AsyncClient, sides: tuple[Side, Side]) -> None:
    a, _b = sides
    created = await client.post(a.base, json=_draft(a, segment_id=None), headers=a.headers)
    response = await client.post(f"{a.base}/{created.json()['id']}/send", headers=a.headers)
    assert response.status_code == 422
    assert "segment" in response.json()["detail"]


async def test_send_now_enqueues_once_per_key_and_the_worker_makes_the_messages(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    sides: tuple[Side, Side],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _b = sides
    enqueued: list[int] = []
    monkeypatch.setattr(tasks, "enqueue_send", enqueued.append)
    people = [await make_user() for _ in range(3)]
    async with db.session() as s:
        s.add_all(SegmentMember(segment_id=a.segment_id, user_id=p.id) for p in people)
        await s.commit()
    campaign_id = (await client.post(a.base, json=_draft(a), headers=a.headers)).json()["id"]
    headers = a.headers | {"Idempotency-Key": "send-1"}
    first = await client.post(f"{a.base}/{campaign_id}/send", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "sending"
    replay = await client.post(f"{a.base}/{campaign_id}/send", headers=headers)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert enqueued == [campaign_id]
    # Without the key a second send is refused: it is already sending.
    assert (await client.post(f"{a.base}/{campaign_id}/send", headers=a.headers)).status_code == 409
    paused = await client.post(f"{a.base}/{campaign_id}/pause", headers=a.headers)
    assert paused.json()["status"] == "paused"
    resumed = await client.post(f"{a.base}/{campaign_id}/resume", headers=a.headers)
    assert resumed.json()["status"] == "sending"
    assert enqueued == [campaign_id, campaign_id]
    async with db.session() as s:  # not in the request: a million members take minutes
        assert not await sending.has_messages(s, campaign_id)
    await sending.run(db, campaign_id=campaign_id)
    async with db.session() as s:
        tokens = list(
            await s.scalars(
                select(CampaignMessage.link_token).where(CampaignMessage.campaign_id == campaign_id)
            )
        )
    assert len(tokens) == 3
    assert all(t and len(t) == 11 for t in tokens)


async def test_list_is_newest_first_with_a_cursor(
    client: httpx.AsyncClient, sides: tuple[Side, Side]
) -> None:
    a, _b = sides
    ids = [
        (await client.post(a.base, json=_draft(a, name=f"c{i}"), headers=a.headers)).json()["id"]
        for i in range(3)
    ]
    first = (await client.get(a.base, params={"limit": 2}, headers=a.headers)).json()
    assert [c["id"] for c in first["items"]] == ids[:0:-1]
    second = (
        await client.get(
            a.base, params={"limit": 2, "cursor": first["next_cursor"]}, headers=a.headers
        )
    ).json()
    assert [c["id"] for c in second["items"]] == [ids[0]]
    assert second["next_cursor"] is None


async def test_platform_campaigns_use_platform_segments(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    sides: tuple[Side, Side],
) -> None:
    a, _b = sides
    admin = await auth_headers(await make_user(admin=True))
    platform_segment = await _segment(db, None, members=10)
    merchant_segment = await client.post("/api/v1/admin/campaigns", json=_draft(a), headers=admin)
    assert merchant_segment.status_code == 404
    created = await client.post(
        "/api/v1/admin/campaigns", json=_draft(a, segment_id=platform_segment), headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["merchant_id"] is None
    est = await client.get(
        f"/api/v1/admin/campaigns/{created.json()['id']}/estimate", headers=admin
    )
    assert est.json()["text"].startswith("Li Hua, 20% off at Mobimart: http")
    # A merchant cannot reach the platform's campaign through their own path.
    assert (
        await client.get(f"{a.base}/{created.json()['id']}", headers=a.headers)
    ).status_code == 404


# --- the console ------------------------------------------------------------------------------


async def _console(app: Any, db: Database, user: User) -> httpx.AsyncClient:
    from mobimart.accounts import service as accounts

    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        cookies={SESSION_COOKIE: token, "mm_csrf": "c" * 43},
    )


async def test_composer_previews_saves_and_schedules_in_china_time(
    app: Any, db: Database, sides: tuple[Side, Side]
) -> None:
    a, _b = sides
    base = f"/console/{a.merchant.id}/campaigns"
    form = {
        "csrf_token": "c" * 43,
        "name": "Spring",
        "channel": "sms",
        "segment_id": str(a.segment_id),
        "template": "{name}, new tea at {shop}: {link}",
        "link_url": "/shops/1",
    }
    async with await _console(app, db, a.owner) as c:
        page = await c.get(base + "/new")
        assert page.status_code == 200
        assert f'name="csrf_token" value="{"c" * 43}"' in page.text  # the page's own token
        preview = await c.post(base, data=form | {"action": "preview"})
        assert preview.status_code == 200
        assert "Li Hua, new tea at" in preview.text
        assert "Reply STOP to opt out" in preview.text
        assert re.search(r'id="preview-parts">1<', preview.text)
        fragment = await c.post(base + "/preview", data=form | {"template": "{nope}"})
        assert "Unknown variable {nope}" in fragment.text
        assert "<html" not in fragment.text
        bad = await c.post(base, data=form | {"template": "{nope}"})
        assert bad.status_code == 422
        assert "Unknown variable" in bad.text
        saved = await c.post(base, data=form)
        assert saved.status_code == 303
        campaign_url = saved.headers["location"].split("?")[0]
        draft = await c.get(campaign_url)
        assert "Send now" in draft.text
        scheduled = await c.post(
            campaign_url + "/schedule", data={"csrf_token": "c" * 43, "at": "2099-01-01T09:30"}
        )
        assert scheduled.status_code == 422  # over 180 days ahead
        when = (utcnow() + dt.timedelta(days=2)).astimezone(campaigns.CONSOLE_ZONE)
        scheduled = await c.post(
            campaign_url + "/schedule",
            data={"csrf_token": "c" * 43, "at": when.strftime("%Y-%m-%dT%H:%M")},
        )
        assert scheduled.status_code == 303
        listing = await c.get(base)
        assert "Spring" in listing.text
        assert "Scheduled" in listing.text
    async with db.session() as s:
        campaign = await s.scalar(select(Campaign).where(Campaign.name == "Spring"))
        assert campaign is not None
        assert campaign.scheduled_at is not None
        # 09:30 China time is 01:30 UTC: the form's wall time is UTC+8.
        assert campaign.scheduled_at == when.replace(second=0, microsecond=0).astimezone(dt.UTC)


async def test_a_date_out_of_range_is_a_readable_error(
    app: Any, db: Database, sides: tuple[Side, Side]
) -> None:
    a, _b = sides
    async with db.session() as s:
        draft = Campaign(merchant_id=a.merchant.id, name="Old", channel="inbox", template="Hi")
        s.add(draft)
        await s.commit()
    url = f"/console/{a.merchant.id}/campaigns/{draft.id}/schedule"
    async with await _console(app, db, a.owner) as c:
        # 0001-01-01 00:00 in UTC+8 is before year 1 in UTC: OverflowError, not a 500.
        for at in ("0001-01-01T00:00", "not a date"):
            refused = await c.post(url, data={"csrf_token": "c" * 43, "at": at})
            assert refused.status_code == 422, refused.text
            assert "Pick the date and time to send" in refused.text


async def test_only_the_owner_starts_an_sms_campaign(
    app: Any,
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    sides: tuple[Side, Side],
) -> None:
    """SMS is paid per part: staff draft and estimate it, the owner sends, schedules and
    resumes it. Push and inbox cost nothing, and staff start them."""
    a, _b = sides
    staff = await make_user(name="staff")
    await factories.add_staff(db, a.merchant, a.owner, staff)
    headers = await auth_headers(staff)
    sms = await client.post(a.base, json=_draft(a), headers=headers)
    assert sms.status_code == 201, sms.text
    sms_url = f"{a.base}/{sms.json()['id']}"
    assert (await client.get(sms_url + "/estimate", headers=headers)).status_code == 200
    tomorrow = {"at": (utcnow() + dt.timedelta(days=1)).isoformat()}
    for step, body in (("send", None), ("schedule", tomorrow), ("resume", None)):
        refused = await client.post(f"{sms_url}/{step}", json=body, headers=headers)
        assert refused.status_code == 403, (step, refused.text)
        assert refused.json()["code"] == "forbidden"
    async with db.session() as s:
        assert (await s.get(Campaign, sms.json()["id"])).status == "draft"  # type: ignore[union-attr]
    inbox = await client.post(
        a.base, json=_draft(a, channel="inbox", template="Hi {name}"), headers=headers
    )
    scheduled = await client.post(
        f"{a.base}/{inbox.json()['id']}/schedule", json=tomorrow, headers=headers
    )
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json()["status"] == "scheduled"
    owner = await client.post(f"{sms_url}/schedule", json=tomorrow, headers=a.headers)
    assert owner.status_code == 200, owner.text

    # The console says why.
    async with await _console(app, db, staff) as c:
        page = await c.post(
            f"/console/{a.merchant.id}/campaigns/{inbox.json()['id']}/cancel",
            data={"csrf_token": "c" * 43},
        )
        assert page.status_code == 303  # cancelling spends nothing: staff may
        second = await client.post(a.base, json=_draft(a, name="Second"), headers=headers)
        draft = await c.get(f"/console/{a.merchant.id}/campaigns/{second.json()['id']}")
        assert 'id="owner-only"' in draft.text
        assert 'id="send-now"' not in draft.text
        refused = await c.post(
            f"/console/{a.merchant.id}/campaigns/{second.json()['id']}/send",
            data={"csrf_token": "c" * 43},
        )
        assert refused.status_code == 403
        assert "Only the merchant&#39;s owner can send text messages" in refused.text


async def test_a_merchant_not_yet_verified_cannot_send(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    owner = await make_user()
    pending = await factories.merchant(db, owner, status="pending", n=3)
    headers = await auth_headers(owner)
    segment_id = await _segment(db, pending.id, members=5)
    base = f"/api/v1/merchants/{pending.id}/campaigns"
    created = await client.post(
        base,
        json={"name": "Early", "channel": "inbox", "template": "Hi", "segment_id": segment_id},
        headers=headers,
    )
    assert created.status_code == 201  # drafting is fine
    tomorrow = (utcnow() + dt.timedelta(days=1)).isoformat()
    for step, body in (("send", None), ("schedule", {"at": tomorrow})):
        response = await client.post(
            f"{base}/{created.json()['id']}/{step}", json=body, headers=headers
        )
        assert response.status_code == 403
        assert response.json()["code"] == "merchant_not_approved"
