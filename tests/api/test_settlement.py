"""Settlement: the platform's commission per merchant, the merchant's payout ledger and
payouts, over the API and the console's money page, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.audit.models import AuditEntry
from mobimart.db import Database
from mobimart.payments import domain
from mobimart.web.deps import SESSION_COOKIE
from tests.api.test_fulfilment import MUG_ORDER, _paid_order
from tests.api.test_pages import csrf_of


async def _complete(client: httpx.AsyncClient, w: dict[str, Any]) -> None:
    shipped = await client.post(
        f"{w['base']}/shipment",
        json={"carrier": "sf", "tracking_number": "SF1000000001"},
        headers=w["owner"],
    )
    assert shipped.status_code in (200, 201), shipped.text
    received = await client.post(f"/api/v1/orders/{w['order']}/receive", headers=w["buyer"])
    assert received.status_code == 200, received.text


async def test_commission_set_by_admin_applies_to_later_settlements_and_is_audited(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    admin = await auth_headers(w["admin"])
    url = f"/api/v1/admin/merchants/{w['merchant']}/commission"
    refused = await client.put(url, json={"commission_bps": 300}, headers=w["owner"])
    assert refused.status_code == 403
    too_much = await client.put(url, json={"commission_bps": 9000}, headers=admin)
    assert too_much.status_code == 422
    changed = await client.put(
        url, json={"commission_bps": 300, "reason": "strategic partner"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["commission_bps"] == 300
    async with db.session() as s:
        entry = await s.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "commission_changed",
                AuditEntry.merchant_id == w["merchant"],
            )
        )
        assert entry is not None
        assert entry.data == {"from_bps": 500, "to_bps": 300}

    await _complete(client, w)
    cut = domain.commission_of(MUG_ORDER, 300)
    balance = (
        await client.get(f"/api/v1/merchants/{w['merchant']}/balance", headers=w["owner"])
    ).json()
    assert balance["available_minor"] == MUG_ORDER - cut
    assert balance["pending_minor"] == 0


async def test_payout_ledger_lists_settlements_and_payouts_newest_first(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    ledger_url = f"/api/v1/merchants/{w['merchant']}/ledger"
    pending = (await client.get(f"{ledger_url}?account=pending", headers=w["owner"])).json()
    assert [(e["kind"], e["amount_minor"]) for e in pending["items"]] == [("payment", MUG_ORDER)]
    await _complete(client, w)
    available = MUG_ORDER - domain.commission_of(MUG_ORDER, 500)
    payout = await client.post(
        f"/api/v1/merchants/{w['merchant']}/payouts",
        json={"amount_minor": 1000},
        headers=w["owner"],
    )
    assert payout.status_code == 201, payout.text
    too_much = await client.post(
        f"/api/v1/merchants/{w['merchant']}/payouts",
        json={"amount_minor": available},
        headers=w["owner"],
    )
    assert too_much.status_code == 409, too_much.text

    page = (await client.get(f"{ledger_url}?limit=1", headers=w["owner"])).json()
    assert [(e["kind"], e["amount_minor"]) for e in page["items"]] == [("payout", -1000)]
    assert page["items"][0]["balance_after_minor"] == available - 1000
    rest = (
        await client.get(f"{ledger_url}?limit=5&cursor={page['next_cursor']}", headers=w["owner"])
    ).json()
    assert [(e["kind"], e["amount_minor"]) for e in rest["items"]] == [("settle", available)]
    assert rest["next_cursor"] is None

    payouts = (
        await client.get(f"/api/v1/merchants/{w['merchant']}/payouts", headers=w["owner"])
    ).json()
    assert [p["amount_minor"] for p in payouts["items"]] == [1000]
    other = await client.get(ledger_url, headers=w["other_owner"])
    assert other.status_code == 404


def test_daily_totals_fill_empty_days_and_ignore_money_out() -> None:
    today = dt.date(2026, 12, 1)
    at = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    rows = [
        (at, 500),  # 01:30 UTC on 1 December
        (dt.datetime(2026, 11, 29, 8, tzinfo=dt.UTC), 200),
        (dt.datetime(2026, 11, 29, 9, tzinfo=dt.UTC), -150),  # a payout
        (dt.datetime(2026, 11, 1, tzinfo=dt.UTC), 999),  # before the window
    ]
    totals = domain.daily_totals(rows, today=today, days=3)
    assert totals == [
        (dt.date(2026, 11, 29), 200),
        (dt.date(2026, 11, 30), 0),
        (dt.date(2026, 12, 1), 500),
    ]


async def _page_as(db: Database, user: User) -> str:
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="session")
    return token


async def test_money_page_charts_income_and_pays_out(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    w = await _paid_order(client, db, make_user, auth_headers)
    client.cookies.set(SESSION_COOKIE, await _page_as(db, w["owners"][0]))
    url = f"/console/{w['merchant']}/money"
    empty = await client.get(url)
    assert "Nothing settled in the last 14 days" in empty.text
    await _complete(client, w)
    available = MUG_ORDER - domain.commission_of(MUG_ORDER, 500)
    page = await client.get(url)
    assert page.text.count("<rect ") == 14
    assert f"¥{available // 100}.{available % 100:02d}" in page.text
    key = re.search(r'name="request_key" value="([^"]+)"', page.text)
    assert key
    form = {"csrf_token": csrf_of(page.text), "request_key": key.group(1)}
    bad = await client.post(f"/console/{w['merchant']}/payouts", data={**form, "amount": "lots"})
    assert bad.status_code == 422
    assert "Type an amount" in bad.text
    for _ in range(2):  # the same form sent twice pays out once
        done = await client.post(
            f"/console/{w['merchant']}/payouts", data={**form, "amount": "10.00"}
        )
        assert done.headers["location"] == f"{url}?notice=payout"
    after = await client.get(done.headers["location"])
    assert "Payout requested." in after.text
    assert after.text.count("−¥10.00") == 1
    payouts = (
        await client.get(f"/api/v1/merchants/{w['merchant']}/payouts", headers=w["owner"])
    ).json()
    assert [p["amount_minor"] for p in payouts["items"]] == [1000]
