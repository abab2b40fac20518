"""Last-touch attribution of paid orders, on SQLite and PostgreSQL: a QR scan made before
signing in credits the order placed after it; nothing outside the window, nothing of another
shop's, and each order once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mobimart.accounts import privacy
from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.campaigns import attribution, events, qr, report
from mobimart.campaigns.events import Kind
from mobimart.campaigns.models import Campaign, OrderAttribution
from mobimart.catalog import service as catalog
from mobimart.checkout.models import Order, OrderLine
from mobimart.db import Database, utcnow
from mobimart.settings import get_settings
from mobimart.web.visitor import VISITOR_COOKIE
from tests import factories
from tests.api.test_pages import page_sign_in
from tests.api.test_qr import PHONE_UA

WINDOW = dt.timedelta(days=get_settings().attribution_window_days)


async def _shop(db: Database, make_user: Any, n: int) -> tuple[Any, User, Any]:
    admin = await make_user(admin=True)
    owner = await make_user()
    merchant = await factories.merchant(db, owner, admin=admin, n=n)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=merchant, name=f"Kettle {n}", price_minor=3900, stock=20, publish=True
        )
    return merchant, owner, product


async def _buy(db: Database, buyer: User, merchant: Any, owner: User, product: Any) -> Order:
    (line_id,) = await factories.buy(
        db, buyer, [product], owner=owner, merchant_id=merchant.id, until="paid"
    )
    async with db.session() as s:
        line = await s.get(OrderLine, line_id)
        assert line is not None
        order = await s.get(Order, line.order_id)
        assert order is not None
        return order


async def _credited(db: Database, order_id: int) -> OrderAttribution | None:
    async with db.session() as s:
        return await s.get(OrderAttribution, order_id)


async def _touch(
    db: Database, user: User, merchant_id: int | None, *, ago: dt.timedelta, **extra: Any
) -> int:
    async with db.session() as s:
        event = await events.record(
            s,
            kind=extra.pop("kind", Kind.qr_scan),
            user_id=user.id,
            merchant_id=merchant_id,
            at=utcnow() - ago,
            **extra,
        )
        await s.commit()
        return event.id


async def test_a_scan_before_signing_in_credits_the_order_after(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    read_code: Any,
    new_phone: Any,
) -> None:
    merchant, owner, product = await _shop(db, make_user, 1)
    made = await client.post(
        f"/api/v1/merchants/{merchant.id}/qr-codes",
        json={"label": "Window", "target": {"kind": "product", "id": product.id}},
        headers=await auth_headers(owner),
    )
    code = made.json()
    landing = await client.get(f"/q/{code['token']}", headers={"user-agent": PHONE_UA})
    assert landing.status_code == 200
    assert VISITOR_COOKIE in client.cookies

    phone = new_phone()
    await page_sign_in(client, read_code, phone)  # the same browser signs in
    async with db.session() as s:
        buyer = await s.scalar(select(User).where(User.phone_hash == accounts.phone_hash(phone)))
    assert buyer is not None
    order = await _buy(db, buyer, merchant, owner, product)

    credited = await _credited(db, order.id)
    assert credited is not None
    assert credited.qr_code_id == code["id"]
    assert credited.channel == "qr"
    assert credited.merchant_id == merchant.id
    assert (credited.amount_minor, credited.currency) == (order.total_minor, order.currency)
    assert credited.amount_minor == 3900

    stats = await client.get(
        f"/api/v1/merchants/{merchant.id}/qr-codes/{code['id']}/stats",
        headers=await auth_headers(owner),
    )
    assert stats.json()["orders"] == 1
    assert stats.json()["revenue"] == [{"currency": "CNY", "amount_minor": 3900}]


async def test_no_touch_no_credit(db: Database, make_user: Any) -> None:
    merchant, owner, product = await _shop(db, make_user, 1)
    buyer = await make_user()
    order = await _buy(db, buyer, merchant, owner, product)
    assert await _credited(db, order.id) is None


async def test_a_touch_older_than_the_window_credits_nothing(db: Database, make_user: Any) -> None:
    merchant, owner, product = await _shop(db, make_user, 1)
    buyer = await make_user()
    await _touch(db, buyer, merchant.id, ago=WINDOW + dt.timedelta(hours=1), subject_id=1)
    order = await _buy(db, buyer, merchant, owner, product)
    assert await _credited(db, order.id) is None


async def test_another_shops_scan_does_not_credit_this_shops_order(
    db: Database, make_user: Any
) -> None:
    merchant, owner, product = await _shop(db, make_user, 1)
    other, _, _ = await _shop(db, make_user, 2)
    buyer = await make_user()
    await _touch(db, buyer, other.id, ago=dt.timedelta(minutes=5), subject_id=1)
    order = await _buy(db, buyer, merchant, owner, product)
    assert await _credited(db, order.id) is None


async def test_the_last_touch_wins_and_platform_touches_count(db: Database, make_user: Any) -> None:
    merchant, owner, product = await _shop(db, make_user, 1)
    buyer = await make_user()
    async with db.session() as s:
        campaign = Campaign(merchant_id=None, name="Mall week", channel="push", template="Hi")
        s.add(campaign)
        await s.commit()
    await _touch(db, buyer, merchant.id, ago=dt.timedelta(days=2), subject_id=1)
    last = await _touch(
        db,
        buyer,
        None,
        ago=dt.timedelta(hours=1),
        kind=Kind.link_click,
        campaign_id=campaign.id,
        subject_id=99,
    )
    await _touch(db, buyer, merchant.id, ago=dt.timedelta(minutes=1), kind=Kind.product_view)
    order = await _buy(db, buyer, merchant, owner, product)
    credited = await _credited(db, order.id)
    assert credited is not None
    assert (credited.event_id, credited.channel) == (last, "push")
    assert credited.campaign_id == campaign.id
    assert credited.qr_code_id is None

    # Credited once: a second call (a replayed notification) changes nothing.
    async with db.session() as s:
        fresh = await s.get(Order, order.id)
        assert fresh is not None
        await attribution.credit(s, order=fresh)
        await s.commit()
        rows = (
            await s.scalars(select(OrderAttribution).where(OrderAttribution.order_id == order.id))
        ).all()
    assert len(rows) == 1
    assert rows[0].event_id == last


async def test_an_erased_account_leaves_the_credit_and_the_figures(
    db: Database, make_user: Any
) -> None:
    """Erasing a buyer deletes their marketing events, not the shop's credited revenue: the
    credit holds no personal data, and a report must not change after the fact."""
    merchant, owner, product = await _shop(db, make_user, 1)
    buyer = await make_user()
    async with db.session() as s:
        campaign = Campaign(merchant_id=merchant.id, name="Posters", channel="sms", template="x")
        s.add(campaign)
        await s.commit()
        code = await qr.create(
            s,
            merchant_id=merchant.id,
            spec=qr.Spec("Door", qr.Target(qr.TargetKind.shop), campaign_id=campaign.id),
        )
        campaign_id, qr_id = campaign.id, code.id
    scan = await _touch(
        db, buyer, merchant.id, ago=dt.timedelta(hours=1), subject_id=qr_id, campaign_id=campaign_id
    )
    order = await _buy(db, buyer, merchant, owner, product)

    async def figures() -> tuple[Any, ...]:
        async with db.session() as s:
            stats = await qr.stats(s, merchant_id=merchant.id, qr_id=qr_id)
            made = await report.campaign_report(s, merchant_id=merchant.id, campaign_id=campaign_id)
            return stats.orders, stats.revenue, made.converted, made.revenue_minor

    before = await figures()
    assert before == (1, [qr.Revenue("CNY", 3900)], 1, 3900)
    assert (await _credited(db, order.id)).event_id == scan  # type: ignore[union-attr]

    async with db.session() as s:
        person = await s.get(User, buyer.id)
        assert person is not None
        await privacy.delete_account(s, user=person)
    assert await figures() == before
    credited = await _credited(db, order.id)
    assert credited is not None
    assert credited.event_id is None  # the scan itself is gone
    assert (credited.qr_code_id, credited.campaign_id) == (qr_id, campaign_id)


async def test_a_replayed_order_paid_credits_once(db: Database, make_user: Any) -> None:
    """Payments call `events.order_paid` again when a gateway notification is replayed."""
    merchant, owner, product = await _shop(db, make_user, 1)
    buyer = await make_user()
    await _touch(db, buyer, merchant.id, ago=dt.timedelta(minutes=5), kind=Kind.wifi_signup)
    order = await _buy(db, buyer, merchant, owner, product)  # paid: order_paid ran once
    async with db.session() as s:
        fresh = await s.get(Order, order.id)
        assert fresh is not None
        await events.order_paid(s, order=fresh)
        await s.commit()
        rows = (
            await s.scalars(select(OrderAttribution).where(OrderAttribution.order_id == order.id))
        ).all()
    assert len(rows) == 1
    assert (rows[0].amount_minor, rows[0].channel) == (3900, "wifi")


@pytest.mark.parametrize("channel", ["push", "inbox", "sms"])
async def test_a_link_click_credits_its_campaigns_channel(
    db: Database, make_user: Any, channel: str
) -> None:
    merchant, owner, product = await _shop(db, make_user, 1)
    buyer = await make_user()
    async with db.session() as s:
        campaign = Campaign(merchant_id=merchant.id, name="News", channel=channel, template="Hi")
        s.add(campaign)
        await s.commit()
    await _touch(
        db,
        buyer,
        merchant.id,
        ago=dt.timedelta(minutes=30),
        kind=Kind.link_click,
        campaign_id=campaign.id,
        subject_id=7,
    )
    order = await _buy(db, buyer, merchant, owner, product)
    credited = await _credited(db, order.id)
    assert credited is not None
    assert (credited.channel, credited.campaign_id) == (channel, campaign.id)
