"""The campaign report and the marketing overview from a constructed set of messages,
events and order attributions: every figure exact."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import httpx
import pytest

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.campaigns import report
from mobimart.campaigns.models import MarketingEvent, OrderAttribution, QrCode
from mobimart.db import Database, utcnow
from mobimart.web.deps import SESSION_COOKIE
from tests import factories

MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)


async def _event(db: Database, merchant_id: int, user_id: int, kind: str, **kw: Any) -> int:
    async with db.session() as s:
        event = MarketingEvent(merchant_id=merchant_id, user_id=user_id, kind=kind, **kw)
        s.add(event)
        await s.commit()
        return event.id


async def _credit(
    db: Database, merchant_id: int, user_id: int, amount: int, at: dt.datetime, **kw: Any
) -> None:
    """An order of `amount` credited as attribution.py would credit it."""
    order_id = await factories.paid_order(db, user_id, merchant_id, amount)
    kind = "qr_scan" if kw.get("channel") == "qr" else "link_click"
    event_id = await _event(db, merchant_id, user_id, kind, at=at - MIN)
    async with db.session() as s:
        s.add(
            OrderAttribution(
                order_id=order_id,
                event_id=event_id,
                merchant_id=merchant_id,
                amount_minor=amount,
                currency="CNY",
                at=at,
                **({"channel": "sms"} | kw),
            )
        )
        await s.commit()


@pytest.fixture
async def world(db: Database, make_user: Any, auth_headers: Any) -> dict[str, Any]:
    """Merchant A's SMS campaign of 7 messages: 4 sent (2 delivered, 1 failed, 1 waiting for
    its report), 2 skipped, 1 still queued; 2 clicked; 2 orders (¥10 + ¥25) credited to it.
    Every SMS is 2 parts at ¥0.05: cost 4 × 2 × 5 = 40 minor."""
    owner, admin = await make_user(), await make_user(admin=True)
    a = await factories.merchant(db, owner, admin=admin, n=1)
    b = await factories.merchant(db, await make_user(), admin=admin, n=2)
    people = [await make_user() for _ in range(7)]
    t0 = (utcnow() - 5 * HOUR).replace(minute=10, second=0, microsecond=0)
    cid = await factories.sms_campaign(db, a.id, started_at=t0)
    sent = {"parts": 2, "sent_at": t0}
    rows = [
        {"status": "delivered", "delivered_at": t0 + MIN, "clicked_at": t0 + 10 * MIN} | sent,
        {"status": "delivered", "delivered_at": t0 + 2 * MIN} | sent,
        {"status": "failed", "reason": "dlr_2"} | sent,
        {"status": "accepted", "parts": 2, "sent_at": t0 + HOUR, "clicked_at": t0 + HOUR + MIN},
        {"status": "skipped", "reason": "no_consent"},
        {"status": "skipped", "reason": "capped"},
        {"status": "queued"},
    ]
    for person, row in zip(people, rows, strict=True):
        await factories.campaign_message(db, cid, person.id, **row)
    await _credit(db, a.id, people[0].id, 1000, t0 + 20 * MIN, campaign_id=cid)
    await _credit(db, a.id, people[3].id, 2500, t0 + 2 * HOUR, campaign_id=cid)
    # Elsewhere: another campaign's order, a QR code's order and scans, and merchant B.
    other = await factories.sms_campaign(db, a.id, name="Other", channel="push")
    await factories.campaign_message(
        db, other, people[1].id, status="delivered", sent_at=t0, delivered_at=t0
    )
    await _credit(db, a.id, people[1].id, 700, t0 + 3 * HOUR, campaign_id=other, channel="push")
    async with db.session() as s:
        code = QrCode(merchant_id=a.id, token="qrtoken0001", label="Counter", target_kind="shop")
        code.scans = 3
        s.add(code)
        await s.commit()
        qr_id = code.id
    for person in people[:3]:
        await _event(db, a.id, person.id, "qr_scan", subject_id=qr_id, at=t0)
    await _credit(db, a.id, people[2].id, 800, t0 + 4 * HOUR, qr_code_id=qr_id, channel="qr")
    b_campaign = await factories.sms_campaign(db, b.id)
    await factories.campaign_message(db, b_campaign, people[4].id, status="delivered", sent_at=t0)
    return {
        "a": a.id,
        "b": b.id,
        "campaign": cid,
        "qr": qr_id,
        "t0": t0,
        "owner": owner,
        "headers": await auth_headers(owner),
    }


async def test_campaign_figures_are_exact(db: Database, world: dict[str, Any]) -> None:
    async with db.session() as s:
        r = await report.campaign_report(s, merchant_id=world["a"], campaign_id=world["campaign"])
    assert (r.recipients, r.sent, r.delivered, r.failed, r.pending) == (7, 4, 2, 1, 1)
    assert r.skipped == {"capped": 1, "no_consent": 1}
    assert (r.clicked, r.converted, r.revenue_minor) == (2, 2, 3500)
    assert r.cost_minor == 4 * 2 * 5
    assert r.return_ratio == pytest.approx((3500 - 40) / 40)
    assert r.unit == "hour"
    t0 = world["t0"].replace(minute=0)
    by_hour = {p.at: (p.sent, p.delivered, p.clicked, p.converted) for p in r.series}
    assert list(by_hour) == [t0 + i * HOUR for i in range(3)]  # t0 .. the last order
    assert by_hour[t0] == (3, 2, 1, 1)
    assert by_hour[t0 + HOUR] == (1, 0, 1, 0)
    assert by_hour[t0 + 2 * HOUR] == (0, 0, 0, 1)


async def test_a_campaign_over_days_is_counted_per_day(
    db: Database, world: dict[str, Any], make_user: Any
) -> None:
    start = world["t0"] - dt.timedelta(days=6)
    cid = await factories.sms_campaign(db, world["a"], name="Long", cost_per_part_minor=0)
    for days in (0, 0, 5):
        person = await make_user()
        await factories.campaign_message(
            db, cid, person.id, status="accepted", parts=1, sent_at=start + dt.timedelta(days=days)
        )
    async with db.session() as s:
        r = await report.campaign_report(s, merchant_id=world["a"], campaign_id=cid)
    assert r.unit == "day"
    assert [p.sent for p in r.series] == [2, 0, 0, 0, 0, 1]
    assert (r.cost_minor, r.return_ratio) == (0, None)


async def test_an_unsent_campaign_has_an_empty_report(db: Database, world: dict[str, Any]) -> None:
    cid = await factories.sms_campaign(db, world["a"], status="draft")
    async with db.session() as s:
        r = await report.campaign_report(s, merchant_id=world["a"], campaign_id=cid)
    assert (r.recipients, r.sent, r.converted, r.series, r.return_ratio) == (0, 0, 0, [], None)


async def test_channel_totals_and_qr_figures(db: Database, world: dict[str, Any]) -> None:
    async with db.session() as s:
        totals = {c.channel: c for c in await report.channel_totals(s, merchant_id=world["a"])}
        codes = await report.qr_figures(s, merchant_id=world["a"])
        b_totals = await report.channel_totals(s, merchant_id=world["b"])
    sms = totals["sms"]
    assert (sms.campaigns, sms.sent, sms.delivered, sms.touches) == (1, 4, 2, 2)
    assert (sms.converted, sms.revenue_minor, sms.cost_minor) == (2, 3500, 40)
    push = totals["push"]
    assert (push.campaigns, push.sent, push.converted, push.revenue_minor) == (1, 1, 1, 700)
    assert push.return_ratio is None
    qr = totals["qr"]
    # Three scans, and the scan the credited order came from.
    assert (qr.touches, qr.converted, qr.revenue_minor) == (4, 1, 800)
    assert (totals["inbox"].sent, totals["wifi"].touches) == (0, 0)
    assert [(c.label, c.scans, c.converted, c.revenue_minor) for c in codes] == [
        ("Counter", 3, 1, 800)
    ]
    b_sms = next(c for c in b_totals if c.channel == "sms")
    assert (b_sms.sent, b_sms.converted) == (1, 0)


async def test_report_and_overview_over_the_api(
    client: httpx.AsyncClient, world: dict[str, Any], make_user: Any, auth_headers: Any
) -> None:
    url = f"/api/v1/merchants/{world['a']}/campaigns/{world['campaign']}/report"
    body = (await client.get(url, headers=world["headers"])).json()
    assert (body["sent"], body["delivered"], body["clicked"], body["converted"]) == (4, 2, 2, 2)
    assert (body["revenue_minor"], body["cost_minor"]) == (3500, 40)
    assert body["return_ratio"] == pytest.approx(86.5)
    assert body["skipped"] == {"capped": 1, "no_consent": 1}
    assert len(body["series"]) == 3
    stranger = await auth_headers(await make_user())
    assert (await client.get(url, headers=stranger)).status_code == 404
    overview = await client.get(
        f"/api/v1/merchants/{world['a']}/marketing", headers=world["headers"]
    )
    assert overview.status_code == 200
    doc = overview.json()
    assert {c["channel"]: c["converted"] for c in doc["channels"]}["qr"] == 1
    assert len(doc["series"]) == report.OVERVIEW_DAYS
    total = {k: sum(p[k] for p in doc["series"]) for k in ("sent", "clicked", "converted")}
    # A's two campaigns sent 5; touches are the credited orders' 3 link clicks and 4 scans.
    assert total == {"sent": 5, "clicked": 3 + 4, "converted": 4}


async def _cookies(db: Database, user: User) -> dict[str, str]:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return {SESSION_COOKIE: token}


async def test_report_page_has_the_figures_a_chart_and_its_table(
    app: Any, db: Database, world: dict[str, Any]
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", cookies=await _cookies(db, world["owner"])
    ) as c:
        page = await c.get(f"/console/{world['a']}/campaigns/{world['campaign']}")
        assert page.status_code == 200
        assert re.search(r'id="fig-sent">4<', page.text)
        assert re.search(r'id="fig-converted">2<', page.text)
        assert "¥35.00" in page.text
        assert "¥0.40" in page.text
        assert "+8650%" in page.text
        data = json.loads(
            re.search(r'id="report-data">(.*?)</script>', page.text, re.S).group(1)  # type: ignore[union-attr]
        )
        assert data["sent"] == [3, 1, 0]
        assert data["converted"] == [1, 0, 1]
        assert "campaign-report.js" in page.text
        assert 'id="report-table" open' in page.text
        listing = await c.get(f"/console/{world['a']}/campaigns")
        assert "4 sent" in listing.text
        assert "2 orders" in listing.text
        overview = await c.get(f"/console/{world['a']}/marketing")
        assert overview.status_code == 200
        for tool in ("segments", "campaigns", "qr", "draws", "places", "wifi", "automations"):
            assert f'href="/console/{world["a"]}/{tool}"' in overview.text
        assert 'id="channel-qr"' in overview.text
        assert "Counter" in overview.text
