"""Automations: each trigger starts a run once per person, the wait and the condition hold,
each action has its effect (texts only with consent and outside quiet hours, pushes through a
real push service double, coupons, points once), and parallel workers run a run once."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from mobimart.accounts import privacy
from mobimart.accounts.domain import Channel
from mobimart.accounts.models import User
from mobimart.campaigns import automations, events
from mobimart.campaigns.events import Kind
from mobimart.campaigns.limits import Skip
from mobimart.campaigns.models import Automation, AutomationRun, MarketingEvent, QrCode
from mobimart.catalog import service as catalog
from mobimart.catalog.models import Shop
from mobimart.checkout import service as checkout
from mobimart.checkout.models import Cart
from mobimart.db import Database, utcnow
from mobimart.engagement import points
from mobimart.infra.pii import get_vault
from mobimart.infra.sms.models import SmsMessage
from mobimart.notifications import push
from mobimart.notifications.models import Notification
from mobimart.promotions.models import Promotion
from mobimart.web.deps import SESSION_COOKIE
from tests import factories
from tests.pushservice import PushService

# Noon and 22:00 in Shanghai (UTC+8), a day from now: runs are taken at these moments.
TOMORROW = (utcnow() + dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
DAY = TOMORROW.replace(hour=4)
NIGHT = TOMORROW.replace(hour=14)


@pytest.fixture
async def shop(db: Database, make_user: Callable[..., Any]) -> dict[str, Any]:
    owner, admin = await make_user(), await make_user(admin=True)
    merchant = await factories.merchant(db, owner, admin=admin)
    return {"owner": owner, "merchant": merchant, "id": merchant.id}


async def _flow(db: Database, merchant_id: int | None, **kw: Any) -> int:
    spec = automations.Spec(
        name=kw.pop("name", "Flow"),
        trigger=kw.pop("trigger", "qr_scan"),
        action=kw.pop("action", "points"),
        action_config=kw.pop("action_config", {"points": 10}),
        **kw,
    )
    async with db.session() as s:
        return (await automations.create(s, merchant_id=merchant_id, spec=spec)).id


async def _event(
    db: Database, kind: Kind, user_id: int, merchant_id: int | None, subject_id: int | None = None
) -> int:
    async with db.session() as s:
        event = await events.record(
            s, kind=kind, user_id=user_id, merchant_id=merchant_id, subject_id=subject_id
        )
        await s.commit()
        return event.id


async def _runs(db: Database, automation_id: int) -> list[AutomationRun]:
    async with db.session() as s:
        rows = await s.scalars(
            select(AutomationRun)
            .where(AutomationRun.automation_id == automation_id)
            .order_by(AutomationRun.id)
        )
        return list(rows)


async def _run_due(db: Database, now: dt.datetime) -> int:
    async with db.session() as s:
        return await automations.run_due(s, now)


async def _consent(db: Database, user: User, channel: Channel, granted: bool = True) -> None:
    async with db.session() as s:
        await privacy.set_consent(
            s, user_id=user.id, channel=channel, granted=granted, source="test"
        )


async def _texts_to(db: Database, user: User) -> list[str]:
    async with db.session() as s:
        rows = await s.scalars(
            select(SmsMessage.text)
            .where(SmsMessage.to_hash == get_vault().lookup_hash(user.phone or ""))
            .order_by(SmsMessage.id)
        )
        return list(rows)


async def _qr(db: Database, merchant_id: int, label: str) -> int:
    async with db.session() as s:
        code = QrCode(
            merchant_id=merchant_id,
            token=label.lower()[:16],
            label=label,
            target_kind="url",
            target_url="/",
        )
        s.add(code)
        await s.commit()
        return code.id


# --- triggers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.qr_scan, Kind.geofence_enter, Kind.wifi_signup])
async def test_trigger_starts_one_run_per_person(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any], kind: Kind
) -> None:
    flow = await _flow(db, shop["id"], trigger=kind.value)
    other = await _flow(db, shop["id"], trigger="cart_abandoned")
    ann, bo = await make_user(), await make_user()
    first = await _event(db, kind, ann.id, shop["id"], subject_id=5)
    await _event(db, kind, ann.id, shop["id"], subject_id=6)  # again: no second run
    await _event(db, kind, bo.id, shop["id"])
    await _event(db, Kind.product_view, bo.id, shop["id"])  # triggers nothing
    runs = await _runs(db, flow)
    assert [(r.user_id, r.status) for r in runs] == [(ann.id, "waiting"), (bo.id, "waiting")]
    assert runs[0].event_id == first
    assert runs[0].run_key == f"{flow}:{ann.id}"
    assert await _runs(db, other) == []


async def test_each_event_a_run_when_not_once_per_person(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(db, shop["id"], once_per_person=False)
    ann = await make_user()
    first = await _event(db, Kind.qr_scan, ann.id, shop["id"])
    second = await _event(db, Kind.qr_scan, ann.id, shop["id"])
    keys = [r.run_key for r in await _runs(db, flow)]
    assert keys == [f"{flow}:{ann.id}:{first}", f"{flow}:{ann.id}:{second}"]


async def test_subject_merchant_and_pause_narrow_the_trigger(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    poster, flyer = await _qr(db, shop["id"], "Poster"), await _qr(db, shop["id"], "Flyer")
    narrowed = await _flow(db, shop["id"], trigger_subject_id=poster)
    paused = await _flow(db, shop["id"], active=False)
    platform = await _flow(db, None)  # the mall's own flow sees every shop's events
    ann, bo = await make_user(), await make_user()
    other = await factories.merchant(db, bo, admin=await make_user(admin=True), n=2)
    await _event(db, Kind.qr_scan, ann.id, shop["id"], subject_id=flyer)
    await _event(db, Kind.qr_scan, bo.id, shop["id"], subject_id=poster)
    await _event(db, Kind.qr_scan, ann.id, other.id)  # another merchant's scan
    assert [r.user_id for r in await _runs(db, narrowed)] == [bo.id]
    assert await _runs(db, paused) == []
    assert sorted(r.user_id for r in await _runs(db, platform)) == [ann.id, bo.id]
    assert len(await _runs(db, platform)) == 2  # Ann once, though she scanned at two shops


async def test_first_order_triggers_on_the_first_paid_order_only(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    # Not once per person: only the paid-order count stops the second order starting a run.
    flow = await _flow(db, shop["id"], trigger="first_order", once_per_person=False)
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=shop["merchant"], name="Mug", price_minor=1000, stock=10, publish=True
        )
    buyer = await make_user()
    for _ in range(2):
        await factories.buy(
            db, buyer, [product], owner=shop["owner"], merchant_id=shop["id"], until="paid"
        )
    runs = await _runs(db, flow)
    assert [r.user_id for r in runs] == [buyer.id]


async def test_abandoned_cart_is_reported_once_per_change(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(db, shop["id"], trigger="cart_abandoned", once_per_person=False)
    buyer = await make_user()
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=shop["merchant"], name="Tea", price_minor=1000, stock=10, publish=True
        )
        variant = (await catalog.variants_of(s, product_id=product.id))[0]
        cart = await checkout.cart_of(s, user_id=buyer.id)
        await checkout.put(s, cart=cart, variant_id=variant.id, quantity=1)
        await s.commit()
        cart_id = cart.id
    empty = await make_user()
    async with db.session() as s:
        await checkout.cart_of(s, user_id=empty.id)  # a cart without lines is not abandoned
        await s.commit()

    async def sweep(now: dt.datetime) -> int:
        async with db.session() as s:
            return await automations.find_abandoned_carts(s, now)

    start = utcnow()
    assert await sweep(start + dt.timedelta(hours=1)) == 0  # too fresh
    assert await sweep(start + dt.timedelta(hours=5)) == 1
    assert await sweep(start + dt.timedelta(hours=6)) == 0  # already reported
    async with db.session() as s:  # the person comes back and changes the cart
        await s.execute(
            update(Cart).where(Cart.id == cart_id).values(updated_at=start + dt.timedelta(hours=7))
        )
        await s.commit()
    assert await sweep(start + dt.timedelta(hours=8)) == 0
    assert await sweep(start + dt.timedelta(hours=12)) == 1
    async with db.session() as s:
        reported = await s.scalars(
            select(MarketingEvent).where(MarketingEvent.kind == "cart_abandoned")
        )
        assert {(e.user_id, e.merchant_id, e.subject_id) for e in reported} == {
            (buyer.id, shop["id"], cart_id)
        }
    assert len(await _runs(db, flow)) == 2


async def test_abandoned_cart_run_skipped_once_the_cart_moved(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(db, shop["id"], trigger="cart_abandoned", wait_minutes=60)
    buyer = await make_user()
    async with db.session() as s:
        cart = await checkout.cart_of(s, user_id=buyer.id)
        await s.commit()
    event_id = await _event(db, Kind.cart_abandoned, buyer.id, shop["id"], subject_id=cart.id)
    async with db.session() as s:
        event = await s.get(MarketingEvent, event_id)
        assert event is not None
        await s.execute(
            update(Cart)
            .where(Cart.id == cart.id)
            .values(updated_at=event.at + dt.timedelta(minutes=5))
        )
        await s.commit()
    assert await _run_due(db, DAY) == 1
    (run,) = await _runs(db, flow)
    assert (run.status, run.result) == ("skipped", "cart_recovered")


# --- wait and condition ------------------------------------------------------------------------


async def test_wait_is_respected(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(db, shop["id"], wait_minutes=90)
    ann = await make_user()
    await _event(db, Kind.qr_scan, ann.id, shop["id"])
    (run,) = await _runs(db, flow)
    assert await _run_due(db, run.due_at - dt.timedelta(minutes=1)) == 0
    assert (await _runs(db, flow))[0].status == "waiting"
    assert run.due_at - run.created_at >= dt.timedelta(minutes=89)
    assert await _run_due(db, run.due_at) == 1
    assert (await _runs(db, flow))[0].status == "done"
    assert await _run_due(db, run.due_at + dt.timedelta(hours=1)) == 0


async def test_condition_false_skips(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(db, shop["id"], condition=[{"kind": "has_consent", "channel": "push"}])
    agreed, silent = await make_user(), await make_user()
    await _consent(db, agreed, Channel.push)
    for person in (agreed, silent):
        await _event(db, Kind.qr_scan, person.id, shop["id"])
    assert await _run_due(db, DAY) == 2
    by_user = {r.user_id: (r.status, r.result) for r in await _runs(db, flow)}
    assert by_user == {agreed.id: ("done", "points:10"), silent.id: ("skipped", "condition")}
    async with db.session() as s:
        assert await points.balance(s, user_id=silent.id) == 0
        assert await points.balance(s, user_id=agreed.id, merchant_id=shop["id"]) == 10


async def test_paused_before_due_skips(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(db, shop["id"])
    ann = await make_user()
    await _event(db, Kind.qr_scan, ann.id, shop["id"])
    async with db.session() as s:
        await automations.set_active(s, merchant_id=shop["id"], automation_id=flow, active=False)
    assert await _run_due(db, DAY) == 1
    assert [(r.status, r.result) for r in await _runs(db, flow)] == [("skipped", "paused")]


# --- actions -----------------------------------------------------------------------------------


async def test_sms_only_with_consent_and_outside_quiet_hours(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(
        db,
        shop["id"],
        action="sms",
        action_config={"text": "Hi {name}, 10% off at {shop}: {link}", "link": "/shops/1"},
    )
    async with db.session() as s:  # {shop} is the shop's name, as campaigns sign
        s.add(Shop(merchant_id=shop["id"], name="Tea Corner"))  # not the merchant's name
        await s.commit()
    agreed = await make_user(name="Ann")
    silent, withdrawn = await make_user(), await make_user()
    await _consent(db, agreed, Channel.sms)
    await _consent(db, withdrawn, Channel.sms)
    await _consent(db, withdrawn, Channel.sms, granted=False)
    for person in (agreed, silent, withdrawn):
        await _event(db, Kind.qr_scan, person.id, shop["id"])

    assert await _run_due(db, NIGHT) == 3  # 22:00 in Shanghai: Ann's text waits till 08:00
    by_user = {r.user_id: r for r in await _runs(db, flow)}
    assert (by_user[agreed.id].status, by_user[agreed.id].result) == ("waiting", "quiet_hours")
    assert by_user[agreed.id].due_at == TOMORROW.replace(hour=0) + dt.timedelta(days=1)  # 08:00
    assert await _texts_to(db, agreed) == []
    assert by_user[silent.id].result == "no_consent"
    assert by_user[withdrawn.id].result == "no_consent"

    morning = TOMORROW.replace(hour=0) + dt.timedelta(days=1)  # 08:00 in Shanghai
    assert await _run_due(db, morning - dt.timedelta(minutes=1)) == 0
    assert await _run_due(db, morning) == 1
    texts = await _texts_to(db, agreed)
    assert texts == [
        "Hi Ann, 10% off at Tea Corner: http://127.0.0.1:8000/shops/1 Reply STOP to opt out"
    ]
    run = next(r for r in await _runs(db, flow) if r.user_id == agreed.id)
    assert (run.status, run.result) == ("done", "sms_sent")
    assert await _texts_to(db, silent) == []
    assert await _texts_to(db, withdrawn) == []


@pytest.fixture
def service() -> Iterator[PushService]:
    with PushService() as running:
        yield running


async def test_push_through_the_push_service(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any], service: PushService
) -> None:
    flow = await _flow(
        db,
        shop["id"],
        trigger="geofence_enter",
        action="push",
        action_config={"title": "Welcome to {shop}", "body": "Hi {name}", "link": "/shops/1"},
    )
    ann, bo = await make_user(name="Ann"), await make_user()
    browsers = {}
    for person in (ann, bo):
        browser = service.subscriber(server_key=push.application_server_key())
        async with db.session() as s:
            await push.subscribe(
                s,
                user_id=person.id,
                endpoint=browser.endpoint,
                p256dh=browser.p256dh,
                auth=browser.auth,
                label="Phone",
            )
            await s.commit()
        browsers[person.id] = browser
        await _event(db, Kind.geofence_enter, person.id, shop["id"])
    await _consent(db, ann, Channel.push)  # Bo has a device but never agreed to marketing

    assert await _run_due(db, NIGHT) == 2  # quiet hours are for texts, not for pushes
    (got,) = service.received(browsers[ann.id].endpoint)
    assert got.json() == {
        "title": f"Welcome to {shop['merchant'].name}",
        "body": "Hi Ann",
        "link": "/shops/1",
    }
    assert service.received(browsers[bo.id].endpoint) == []
    by_user = {r.user_id: (r.status, r.result) for r in await _runs(db, flow)}
    assert by_user == {ann.id: ("done", "push_sent"), bo.id: ("skipped", "no_consent")}


async def test_coupon_issued_with_a_notice(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    coupon = await factories.draw_coupon(db, shop["id"], code="WELCOME5")
    flow = await _flow(
        db,
        shop["id"],
        trigger="wifi_signup",
        action="coupon",
        action_config={"promotion_id": coupon, "link": "/shops/1"},
    )
    ann = await make_user()
    await _event(db, Kind.wifi_signup, ann.id, shop["id"])
    assert await _run_due(db, DAY) == 1
    (run,) = await _runs(db, flow)
    code = run.result.removeprefix("coupon:")
    assert run.status == "done"
    async with db.session() as s:
        copy = await s.scalar(select(Promotion).where(Promotion.code == code))
        assert copy is not None
        assert (copy.merchant_id, copy.total_uses, copy.per_person) == (shop["id"], 1, 1)
        note = await s.scalar(select(Notification).where(Notification.user_id == ann.id))
        assert note is not None
        assert code in note.body
        assert note.link == "/shops/1"


async def test_points_awarded_once(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(db, shop["id"], action_config={"points": 25})
    ann = await make_user()
    await _event(db, Kind.qr_scan, ann.id, shop["id"])
    assert await _run_due(db, DAY) == 1
    assert await _run_due(db, DAY) == 0
    (run,) = await _runs(db, flow)
    async with db.session() as s:
        assert await points.balance(s, user_id=ann.id) == 25
        # Even a run put back to waiting by hand cannot award twice: the key is the run's.
        await s.execute(
            update(AutomationRun).where(AutomationRun.id == run.id).values(status="waiting")
        )
        await s.commit()
    assert await _run_due(db, DAY) == 1
    async with db.session() as s:
        assert await points.balance(s, user_id=ann.id) == 25


async def test_two_workers_run_each_run_once(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    coupon = await factories.draw_coupon(db, shop["id"], code="TWICE5")
    flows = [
        await _flow(db, shop["id"], action_config={"points": 7}),
        await _flow(db, shop["id"], action="coupon", action_config={"promotion_id": coupon}),
    ]
    people = [await make_user() for _ in range(12)]
    for person in people:
        await _event(db, Kind.qr_scan, person.id, shop["id"])

    async def worker() -> int:
        async with db.session() as s:
            return await automations.run_due(s, DAY)

    taken = await asyncio.gather(worker(), worker())
    assert sum(taken) == 2 * len(people)
    async with db.session() as s:
        statuses = await s.scalars(
            select(AutomationRun.status).where(AutomationRun.automation_id.in_(flows))
        )
        assert set(statuses) == {"done"}
        for person in people:
            assert await points.balance(s, user_id=person.id) == 7
        copies = await s.scalar(
            select(func.count()).select_from(Promotion).where(Promotion.total_uses == 1)
        )
        notes = await s.scalar(select(func.count()).select_from(Notification))
    assert (copies, notes) == (len(people), len(people))


async def test_worker_jobs(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    from mobimart.campaigns import tasks

    flow = await _flow(db, shop["id"])
    for _ in range(3):
        await _event(db, Kind.qr_scan, (await make_user()).id, shop["id"])
    assert await tasks.automations_tick(db) == 3
    assert {r.status for r in await _runs(db, flow)} == {"done"}
    assert await tasks.abandoned_carts_tick(db) == 0


async def test_spec_is_checked(db: Database, shop: dict[str, Any], make_user: Any) -> None:
    other_owner, admin = await make_user(), await make_user(admin=True)
    other = await factories.merchant(db, other_owner, admin=admin, n=2)
    theirs = await _qr(db, other.id, "Theirs")
    their_coupon = await factories.draw_coupon(db, other.id, code="THEIRS5")
    bad = [
        {"trigger": "sunrise"},
        {"action": "fax", "action_config": {}},
        {"action_config": {"points": 0}},
        {"action_config": {"points": 10, "extra": 1}},
        {"action": "sms", "action_config": {"text": "Hi {nmae}"}},
        {"action": "sms", "action_config": {"text": "Hi", "link": "javascript:alert(1)"}},
        {"action": "coupon", "action_config": {"promotion_id": their_coupon}},
        {"trigger_subject_id": theirs},
        {"trigger": "first_order", "trigger_subject_id": 1},
        {"wait_minutes": automations.MAX_WAIT_MINUTES + 1},
        {"condition": [{"kind": "has_consent", "channel": "fax"}]},
        {"name": "  "},
    ]
    for change in bad:
        with pytest.raises(automations.DomainError):
            await _flow(db, shop["id"], **change)
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Automation)) == 0


# --- API and console ---------------------------------------------------------------------------


async def test_api_lifecycle(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    shop: dict[str, Any],
) -> None:
    headers = await auth_headers(shop["owner"])
    base = f"/api/v1/merchants/{shop['id']}/automations"
    body = {
        "name": "Scan thanks",
        "trigger": "qr_scan",
        "wait_minutes": 0,
        "condition": [{"kind": "has_consent", "channel": "sms", "not": True}],
        "action": "points",
        "action_config": {"points": 5},
    }
    created = await client.post(base, json=body, headers=headers)
    assert created.status_code == 201, created.text
    flow = created.json()
    assert flow["runs"] == {"waiting": 0, "running": 0, "done": 0, "skipped": 0}
    assert flow["once_per_person"] is True

    ann = await make_user()
    await _event(db, Kind.qr_scan, ann.id, shop["id"])
    listed = (await client.get(base, headers=headers)).json()
    assert [(f["id"], f["runs"]["waiting"]) for f in listed["items"]] == [(flow["id"], 1)]
    await _run_due(db, DAY)
    runs = (await client.get(f"{base}/{flow['id']}/runs", headers=headers)).json()
    assert [(r["user_id"], r["status"]) for r in runs["items"]] == [(ann.id, "done")]
    done = await client.get(f"{base}/{flow['id']}/runs?status=waiting", headers=headers)
    assert done.json()["items"] == []

    paused = await client.patch(f"{base}/{flow['id']}", json={"active": False}, headers=headers)
    assert paused.json()["active"] is False
    assert (await client.get(f"{base}/{flow['id']}", headers=headers)).json()["runs"]["done"] == 1

    bad = await client.post(base, json=body | {"action_config": {"text": "x"}}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_automation"

    stranger = await auth_headers(await make_user())
    assert (await client.get(f"{base}/{flow['id']}", headers=stranger)).status_code == 404
    assert (await client.delete(f"{base}/{flow['id']}", headers=headers)).status_code == 204
    assert (await client.get(f"{base}/{flow['id']}", headers=headers)).status_code == 404


async def test_console_create_pause_and_runs(
    app: Any, db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    from mobimart.accounts import service as accounts

    poster = await _qr(db, shop["id"], "Poster")
    async with db.session() as s:
        owner = await s.get(User, shop["owner"].id)
        assert owner is not None
        token, _ = await accounts.issue_token(s, user=owner, kind="session")
    csrf = "c" * 43
    base = f"/console/{shop['id']}/automations"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        cookies={SESSION_COOKIE: token, "mm_csrf": csrf},
    ) as c:
        page = await c.get(base)
        assert page.status_code == 200
        assert "No automations yet." in page.text
        assert f'value="qr_scan:{poster}"' in page.text

        form = {
            "csrf_token": csrf,
            "name": "Poster welcome",
            "trigger": "qr_scan",
            "subject": f"geofence_enter:{poster}",
            "wait": "2",
            "wait_unit": "hours",
            "cond_kind": "has_consent",
            "cond_channel": "sms",
            "action": "sms",
            "sms_text": "Welcome to {shop}",
            "once_per_person": "on",
        }
        refused = await c.post(base, data=form)
        assert refused.status_code == 422
        assert "does not go with the trigger" in refused.text
        assert 'value="Poster welcome"' in refused.text  # what was typed stays

        created = await c.post(base, data=form | {"subject": f"qr_scan:{poster}"})
        assert created.status_code == 303
        async with db.session() as s:
            flow = await s.scalar(select(Automation))
            assert flow is not None
        assert (flow.trigger_subject_id, flow.wait_minutes) == (poster, 120)
        assert flow.condition == [{"kind": "has_consent", "channel": "sms"}]
        assert flow.action_config == {"text": "Welcome to {shop}", "link": "/"}

        page = await c.get(base)
        assert "Poster welcome" in page.text
        assert "0 done · 0 waiting · 0 skipped" in page.text
        response = await c.post(
            f"{base}/{flow.id}/active", data={"csrf_token": csrf, "active": "0"}
        )
        assert response.headers["location"] == f"{base}?notice=paused"
        runs = await c.get(f"{base}/{flow.id}")
        assert runs.status_code == 200
        assert "No runs yet" in runs.text
        response = await c.post(f"{base}/{flow.id}/delete", data={"csrf_token": csrf})
        assert response.status_code == 303
        assert (await c.get(f"{base}/{flow.id}")).status_code == 404


async def test_platform_flows_for_admins(
    client: httpx.AsyncClient,
    app: Any,
    db: Database,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    shop: dict[str, Any],
) -> None:
    """The mall's own flows: made by an admin, triggered by any shop's events."""
    from mobimart.accounts import service as accounts
    from mobimart.campaigns import wifi

    admin = await make_user(admin=True)
    async with db.session() as s:
        portal = await wifi.create(s, merchant_id=None, name="Atrium")
        token, _ = await accounts.issue_token(s, user=await s.merge(admin), kind="session")
    body = {
        "name": "Mall Wi-Fi welcome",
        "trigger": "wifi_signup",
        "trigger_subject_id": portal.id,
        "action": "points",
        "action_config": {"points": 3},
    }
    headers = await auth_headers(admin)
    created = await client.post("/api/v1/admin/automations", json=body, headers=headers)
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    ann = await make_user()
    await _event(db, Kind.wifi_signup, ann.id, None, subject_id=portal.id)
    await _run_due(db, DAY)
    runs = await client.get(f"/api/v1/admin/automations/{flow_id}/runs", headers=headers)
    assert [(r["user_id"], r["result"]) for r in runs.json()["items"]] == [(ann.id, "points:3")]
    # A merchant's API does not see the platform's flow, nor may a merchant subject be used.
    owner = await auth_headers(shop["owner"])
    mine = await client.get(f"/api/v1/merchants/{shop['id']}/automations/{flow_id}", headers=owner)
    assert mine.status_code == 404
    theirs = await client.post(
        f"/api/v1/merchants/{shop['id']}/automations", json=body, headers=owner
    )
    assert theirs.status_code == 422

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        cookies={SESSION_COOKIE: token, "mm_csrf": "c" * 43},
    ) as c:
        page = await c.get("/admin/automations")
        assert "Mall Wi-Fi welcome" in page.text
        assert f'value="wifi_signup:{portal.id}"' in page.text
        assert "1 done · 0 waiting · 0 skipped" in page.text
        runs_page = await c.get(f"/admin/automations/{flow_id}")
        assert "points:3" in runs_page.text
        deleted = await c.post(
            f"/admin/automations/{flow_id}/delete", data={"csrf_token": "c" * 43}
        )
        assert deleted.headers["location"] == "/admin/automations?notice=deleted"


# --- who starts what, visitors, the cap, stuck runs ---------------------------------------------


async def test_staff_start_only_flows_that_spend_nothing(
    app: Any,
    client: httpx.AsyncClient,
    db: Database,
    make_user: Callable[..., Any],
    auth_headers: Callable[..., Any],
    shop: dict[str, Any],
) -> None:
    """Texts cost money and coupons and points give value away: staff save such a flow
    paused and may pause it; the owner starts it. A push flow staff start themselves."""
    from mobimart.accounts import service as accounts

    staff = await make_user()
    await factories.add_staff(db, shop["merchant"], shop["owner"], staff)
    headers, owner = await auth_headers(staff), await auth_headers(shop["owner"])
    base = f"/api/v1/merchants/{shop['id']}/automations"
    coupon = await factories.draw_coupon(db, shop["id"], code="STAFF5")
    spending = {
        "points": {"points": 5},
        "sms": {"text": "Hi {name}"},
        "coupon": {"promotion_id": coupon},
    }
    for action, config in spending.items():
        body = {"name": "Thanks", "trigger": "qr_scan", "action": action, "action_config": config}
        refused = await client.post(base, json=body, headers=headers)
        assert refused.status_code == 403, (action, refused.text)
        assert refused.json()["code"] == "forbidden"
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Automation)) == 0

    body = {
        "name": "Thanks",
        "trigger": "qr_scan",
        "action": "sms",
        "action_config": {"text": "Hi"},
    }
    saved = await client.post(base, json=body | {"active": False}, headers=headers)
    assert saved.status_code == 201, saved.text
    flow = f"{base}/{saved.json()['id']}"
    assert (await client.patch(flow, json={"active": True}, headers=headers)).status_code == 403
    started = await client.patch(flow, json={"active": True}, headers=owner)
    assert started.json()["active"] is True
    paused = await client.patch(flow, json={"active": False}, headers=headers)
    assert paused.status_code == 200
    assert paused.json()["active"] is False

    push_flow = body | {"action": "push", "action_config": {"title": "Hi {name}"}}
    pushed = await client.post(base, json=push_flow, headers=headers)
    assert pushed.status_code == 201
    assert pushed.json()["active"] is True

    async with db.session() as s:
        person = await s.get(User, staff.id)
        assert person is not None
        token, _ = await accounts.issue_token(s, user=person, kind="session")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        cookies={SESSION_COOKIE: token, "mm_csrf": "c" * 43},
    ) as c:
        form = {
            "csrf_token": "c" * 43,
            "name": "Console points",
            "trigger": "qr_scan",
            "wait": "0",
            "wait_unit": "minutes",
            "action": "points",
            "points": "5",
            "once_per_person": "on",
        }
        refused_page = await c.post(f"/console/{shop['id']}/automations", data=form)
        assert refused_page.status_code == 403
        assert "Only the merchant&#39;s owner can start a flow" in refused_page.text


async def test_events_claimed_at_sign_in_start_automations(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    once = await _flow(db, shop["id"])
    each = await _flow(db, shop["id"], once_per_person=False)
    ann, bo = await make_user(), await make_user()
    async with db.session() as s:
        for _ in range(2):  # a poster scanned twice, signed out
            await events.record(s, kind=Kind.qr_scan, visitor="browser-1", merchant_id=shop["id"])
        await events.record(  # two days ago on another browser: history, not a reaction
            s,
            kind=Kind.qr_scan,
            visitor="browser-2",
            merchant_id=shop["id"],
            at=utcnow() - dt.timedelta(days=2),
        )
        await s.commit()
    assert await _runs(db, once) == []

    async with db.session() as s:
        await events.claim_visitor(s, visitor="browser-1", user_id=ann.id)
        await s.commit()
    assert [(r.user_id, r.status) for r in await _runs(db, once)] == [(ann.id, "waiting")]
    assert [r.user_id for r in await _runs(db, each)] == [ann.id, ann.id]

    async with db.session() as s:  # scanned signed out again, and signed in: in one session
        await events.record(s, kind=Kind.qr_scan, visitor="browser-1", merchant_id=shop["id"])
        await events.claim_visitor(s, visitor="browser-1", user_id=ann.id)
        await s.commit()
    assert len(await _runs(db, once)) == 1  # the run key: once per person
    assert len(await _runs(db, each)) == 3  # one per event, the old ones not again

    async with db.session() as s:
        await events.claim_visitor(s, visitor="browser-2", user_id=bo.id)
        await s.commit()
    assert bo.id not in {r.user_id for r in await _runs(db, once) + await _runs(db, each)}


async def test_automation_texts_count_toward_the_weekly_cap(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    from mobimart.campaigns import audience
    from mobimart.campaigns.models import Campaign, CampaignMessage
    from mobimart.settings import get_settings

    cap = get_settings().marketing_cap_per_week
    ann = await make_user()
    await _consent(db, ann, Channel.sms)
    async with db.session() as s:
        for _ in range(cap - 1):  # one text short of the cap
            campaign = Campaign(name="c", channel="sms", template="hi", status="sent")
            s.add(campaign)
            await s.flush()
            s.add(
                CampaignMessage(
                    campaign_id=campaign.id,
                    user_id=ann.id,
                    status="delivered",
                    sent_at=utcnow() - dt.timedelta(hours=1),
                )
            )
        await s.commit()
    first = await _flow(db, shop["id"], action="sms", action_config={"text": "Hi {name}"})
    await _event(db, Kind.qr_scan, ann.id, shop["id"])
    assert await _run_due(db, DAY) == 1
    assert [(r.status, r.result) for r in await _runs(db, first)] == [("done", "sms_sent")]
    assert len(await _texts_to(db, ann)) == 1

    # The automation's text was the cap-th: a campaign now skips Ann, and so does a flow.
    async with db.session() as s:
        screened = await audience.screen(s, channel="sms", user_ids=[ann.id], now=DAY)
    assert screened == {ann.id: Skip.capped}
    second = await _flow(db, shop["id"], action="sms", action_config={"text": "Again"})
    await _event(db, Kind.qr_scan, ann.id, shop["id"])
    assert await _run_due(db, DAY) == 1
    assert [(r.status, r.result) for r in await _runs(db, second)] == [("skipped", "capped")]
    assert len(await _texts_to(db, ann)) == 1
    async with db.session() as s:  # a week later the window has moved on
        later = DAY + audience.CAP_WINDOW + dt.timedelta(hours=2)
        assert await audience.screen(s, channel="sms", user_ids=[ann.id], now=later) == {
            ann.id: None
        }


async def test_runs_stuck_running_are_swept(
    db: Database, make_user: Callable[..., Any], shop: dict[str, Any]
) -> None:
    flow = await _flow(db, shop["id"])
    ann, bo = await make_user(), await make_user()
    await _event(db, Kind.qr_scan, ann.id, shop["id"])
    await _event(db, Kind.qr_scan, bo.id, shop["id"])
    now = utcnow()
    taken = {ann.id: now - dt.timedelta(minutes=11), bo.id: now - dt.timedelta(minutes=9)}
    async with db.session() as s:
        for user_id, at in taken.items():  # as a worker that stopped after its claim left them
            await s.execute(
                update(AutomationRun)
                .where(AutomationRun.user_id == user_id)
                .values(status="running", due_at=at)
            )
        await s.commit()
        assert await automations.sweep_stuck(s, now) == 1
    by_user = {r.user_id: (r.status, r.result) for r in await _runs(db, flow)}
    assert by_user == {ann.id: ("done", "unknown"), bo.id: ("running", "")}
    assert await _run_due(db, DAY) == 0  # never run again: at most once
    async with db.session() as s:
        assert await automations.sweep_stuck(s, now + dt.timedelta(minutes=2)) == 1
    assert {r.status for r in await _runs(db, flow)} == {"done"}
