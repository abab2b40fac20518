"""The Wi-Fi portal over HTTP: the gateway's redirect, number, code and consent, then back to
the gateway; the visitor is a contact with the consent they gave and a wifi_signup event."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.accounts.models import Consent, User
from mobimart.campaigns import wifi, wifi_fas
from mobimart.campaigns.models import MarketingEvent, Segment, SegmentMember, WifiPortal
from mobimart.db import Database, utcnow
from mobimart.promotions import service as promotions
from mobimart.promotions.domain import Kind, Scope
from mobimart.promotions.models import Promotion
from mobimart.settings import get_settings
from mobimart.web.deps import SESSION_COOKIE
from tests import factories

CSRF = "x" * 43
HID = hashlib.sha256(b"1a2b3c4d").hexdigest()


def gateway_query(**override: str) -> dict[str, str]:
    fields = {
        "hid": HID,
        "clientip": "192.168.8.23",
        "clientmac": "04:15:52:6a:e4:ad",
        "gatewayname": "Mall%20Wi-Fi",
        "gatewayaddress": "192.168.8.1:2050",
        "originurl": "http%3A%2F%2Fconnectivitycheck.gstatic.com%2Fgenerate_204",
        "clientif": "br-lan",
        **override,
    }
    text = ", ".join(f"{k}={v}" for k, v in fields.items())
    return {"fas": base64.b64encode(text.encode()).decode()}


async def _platform_portal(db: Database, name: str = "Grand Mall") -> WifiPortal:
    async with db.session() as s:
        portal = await wifi.create(s, merchant_id=None, name=name)
        await promotions.create(
            s,
            merchant_id=None,
            spec=promotions.Spec(
                name="Mall-wide 20 off 200",
                kind=Kind.spend_save,
                scope=Scope.order,
                value=2000,
                threshold_minor=20000,
            ),
        )
        return portal


async def _sign_up(
    client: httpx.AsyncClient, read_code: Any, portal: WifiPortal, phone: str, *, consent: bool
) -> httpx.Response:
    client.cookies.set("mm_csrf", CSRF)
    page = await client.get(f"/wifi/{portal.token}", params=gateway_query())
    assert page.status_code == 200
    assert "Free Wi-Fi at Grand Mall" in page.text
    assert "Mall-wide 20 off 200" in page.text  # the mall's current promotion
    assert 'name="marketing_sms" value="1">' in page.text  # the box starts unticked
    form = {"csrf_token": CSRF, "phone": phone, **gateway_query()}
    if consent:
        form["marketing_sms"] = "1"
    sent = await client.post(f"/wifi/{portal.token}/code", data=form)
    assert sent.status_code == 200, sent.text
    assert "Enter your code" in sent.text
    form["code"] = await read_code(phone)
    return await client.post(f"/wifi/{portal.token}/verify", data=form)


async def test_a_visitor_signs_in_and_goes_back_to_the_gateway(
    client: httpx.AsyncClient, db: Database, read_code: Any, new_phone: Any
) -> None:
    portal = await _platform_portal(db)
    phone = new_phone()
    done = await _sign_up(client, read_code, portal, phone, consent=True)

    assert done.status_code == 303
    target = urlsplit(done.headers["location"])
    assert (target.scheme, target.netloc, target.path) == (
        "http",
        "192.168.8.1:2050",
        "/opennds_auth/",
    )
    query = parse_qs(target.query)
    assert query["tok"] == [hashlib.sha256((HID + portal.fas_key).encode()).hexdigest()]
    assert query["redir"] == [wifi.landing_url(portal)]
    # Plain http on an open network: no session cookie anyone nearby could read.
    assert not any(c.startswith(f"{SESSION_COOKIE}=") for c in done.headers.get_list("set-cookie"))
    assert SESSION_COOKIE not in client.cookies

    async with db.session() as s:
        user = await accounts.find_user_by_phone(s, phone=phone)
        assert user is not None  # a new account: the visitor is now a contact
        consents = list(await s.scalars(select(Consent).where(Consent.user_id == user.id)))
        assert [(c.channel, c.granted, c.source) for c in consents] == [
            ("sms", True, f"wifi:{portal.id}")
        ]
        event = await s.scalar(select(MarketingEvent).where(MarketingEvent.user_id == user.id))
        assert event is not None
        assert (event.kind, event.subject_id, event.merchant_id) == ("wifi_signup", portal.id, None)
        segment = await s.get(Segment, portal.segment_id)
        assert segment is not None
        assert segment.name == "Wi-Fi: Grand Mall"
        assert segment.rules == [{"kind": "joined_wifi", "portal_id": portal.id}]
        # The sign-up event moved the segment: the visitor is a member, counted.
        member = await s.get(SegmentMember, (segment.id, user.id))
        assert member is not None
        assert segment.member_count == 1

    welcome = await client.get(f"/wifi/{portal.token}/welcome")
    assert welcome.status_code == 200
    assert "You are online" in welcome.text
    # The welcome page, on the site's https address, is where one signs in.
    assert f'href="/signin?next=%2Fwifi%2F{portal.token}%2Fwelcome"' in welcome.text


async def test_no_step_of_the_portal_sets_a_session_cookie(
    client: httpx.AsyncClient, db: Database, read_code: Any, new_phone: Any
) -> None:
    portal = await _platform_portal(db)
    phone = new_phone()
    client.cookies.set("mm_csrf", CSRF)
    form = {"csrf_token": CSRF, "phone": phone, "marketing_sms": "1", **gateway_query()}
    answers = [
        await client.get(f"/wifi/{portal.token}", params=gateway_query()),
        await client.post(f"/wifi/{portal.token}/code", data=form),
    ]
    form["code"] = await read_code(phone)
    answers.append(await client.post(f"/wifi/{portal.token}/verify", data=form))
    assert [a.status_code for a in answers] == [200, 200, 303]
    for answer in answers:
        assert "mm_session" not in " ".join(answer.headers.get_list("set-cookie"))
    # Over https too: the portal never signs in (the welcome page does).
    secure = httpx.AsyncClient(transport=client._transport, base_url="https://t")
    async with secure:
        secure.cookies.set("mm_csrf", CSRF)
        other = new_phone()
        form = {"csrf_token": CSRF, "phone": other, **gateway_query()}
        assert (await secure.post(f"/wifi/{portal.token}/code", data=form)).status_code == 200
        form["code"] = await read_code(other)
        done = await secure.post(f"/wifi/{portal.token}/verify", data=form)
        assert done.status_code == 303
        assert "mm_session" not in " ".join(done.headers.get_list("set-cookie"))


async def test_31_visitors_behind_the_venues_one_address_all_get_codes(
    client: httpx.AsyncClient,
    db: Database,
    new_phone: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every visitor reaches us from the gateway's one public address; the per-address
    limit (30 an hour) is kept per client there, and the portal has a larger budget."""
    portal = await _platform_portal(db)
    client.cookies.set("mm_csrf", CSRF)
    assert get_settings().otp_per_ip_per_hour == 30

    async def ask(hid: str) -> httpx.Response:
        form = {"csrf_token": CSRF, "phone": new_phone(), **gateway_query(hid=hid)}
        return await client.post(f"/wifi/{portal.token}/code", data=form)

    for n in range(31):
        sent = await ask(hashlib.sha256(f"visitor {n}".encode()).hexdigest())
        assert sent.status_code == 200, (n, sent.text)
        assert "Too many codes" not in sent.text

    # One client asking for many numbers still meets the per-address limit.
    one = hashlib.sha256(b"one phone").hexdigest()
    answers = [(await ask(one)).status_code for _ in range(31)]
    assert answers == [200] * 30 + [429]

    # And the portal as a whole meets its own.
    monkeypatch.setattr(wifi, "OTP_PER_PORTAL_PER_HOUR", 61)  # 31 + 30 so far
    assert (await ask(hashlib.sha256(b"late").hexdigest())).status_code == 429


async def test_the_portal_shows_current_offers_past_many_single_use_copies(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Draw prizes and automation gifts are single-use copies with the owner's id: a window
    of the newest rows once held only those."""
    portal = await _platform_portal(db)
    async with db.session() as s:
        past = utcnow() - dt.timedelta(days=1)
        for name, extra in (
            ("Ended sale", {"ends_at": past}),
            ("Not yet", {"starts_at": utcnow() + dt.timedelta(days=1)}),
            ("All used", {"total_uses": 2}),
        ):
            await promotions.create(
                s,
                merchant_id=None,
                spec=promotions.Spec(
                    name=name, kind=Kind.fixed, scope=Scope.order, value=100, **extra
                ),
            )
        used_up = await s.scalar(select(Promotion).where(Promotion.name == "All used"))
        assert used_up is not None
        used_up.used = 2
        base = await promotions.create(
            s,
            merchant_id=None,
            spec=promotions.Spec(
                name="Prize coupon", kind=Kind.fixed, scope=Scope.order, value=100, code="PRIZE1"
            ),
        )
        for _ in range(60):
            await promotions.issue_single_use(s, promotion_id=base.id)
        await s.commit()
        shown = await wifi.current_promotions(s, portal=portal)
    assert "Mall-wide 20 off 200" in [p.name for p in shown]
    assert not {"Ended sale", "Not yet", "All used"} & {p.name for p in shown}
    assert all(p.total_uses != 1 for p in shown)  # nobody's personal code
    page = await client.get(f"/wifi/{portal.token}", params=gateway_query())
    assert "Mall-wide 20 off 200" in page.text
    assert "Ended sale" not in page.text


async def test_no_consent_is_recorded_when_the_box_is_left_unticked(
    client: httpx.AsyncClient, db: Database, read_code: Any, new_phone: Any, make_user: Any
) -> None:
    portal = await _platform_portal(db)
    existing = await make_user()  # a known number signs in to its own account
    done = await _sign_up(client, read_code, portal, existing.phone, consent=False)
    assert done.status_code == 303
    async with db.session() as s:
        assert await s.scalar(select(Consent).where(Consent.user_id == existing.id)) is None
        events = list(
            await s.scalars(select(MarketingEvent).where(MarketingEvent.user_id == existing.id))
        )
        assert [e.kind for e in events] == ["wifi_signup"]
        users = await s.scalars(select(User).where(User.phone_hash == existing.phone_hash))
        assert len(list(users)) == 1


async def test_a_wrong_code_keeps_the_visitor_on_the_portal(
    client: httpx.AsyncClient, db: Database, read_code: Any, new_phone: Any
) -> None:
    portal = await _platform_portal(db)
    phone = new_phone()
    client.cookies.set("mm_csrf", CSRF)
    form = {"csrf_token": CSRF, "phone": phone, **gateway_query()}
    assert (await client.post(f"/wifi/{portal.token}/code", data=form)).status_code == 200
    right = await read_code(phone)
    wrong = await client.post(
        f"/wifi/{portal.token}/verify",
        data={**form, "code": "000000" if right != "000000" else "111111"},
    )
    assert wrong.status_code == 400
    assert "Wrong code" in wrong.text
    assert "location" not in wrong.headers
    async with db.session() as s:
        assert await s.scalar(select(MarketingEvent)) is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "Open this page through the Wi-Fi"),
        (gateway_query(gatewayaddress="203.0.113.9:2050"), "not on a private network"),
        (gateway_query(gatewayaddress="evil.example"), "not an IPv4 address"),
        ({"fas": "%%%"}, "not base64"),
        ({"tok": "1a2b3c4d", "clientip": "10.0.0.2"}, "fas_secure_enabled"),
    ],
)
async def test_missing_or_bad_gateway_parameters_get_a_readable_page(
    client: httpx.AsyncClient, db: Database, query: dict[str, str], message: str
) -> None:
    portal = await _platform_portal(db)
    page = await client.get(f"/wifi/{portal.token}", params=query)
    assert page.status_code == 400
    assert "This Wi-Fi sign-in cannot continue" in page.text
    assert message in page.text


async def test_a_forged_gateway_in_the_verify_form_is_refused(
    client: httpx.AsyncClient, db: Database, read_code: Any, new_phone: Any
) -> None:
    """The parameters are checked at every step, not only when the page is first shown."""
    portal = await _platform_portal(db)
    phone = new_phone()
    client.cookies.set("mm_csrf", CSRF)
    form = {"csrf_token": CSRF, "phone": phone, **gateway_query()}
    assert (await client.post(f"/wifi/{portal.token}/code", data=form)).status_code == 200
    forged = {
        **form,
        **gateway_query(gatewayaddress="198.51.100.1:80"),
        "code": await read_code(phone),
    }
    refused = await client.post(f"/wifi/{portal.token}/verify", data=forged)
    assert refused.status_code == 400
    assert "location" not in refused.headers


async def test_unknown_portals_and_online_clients(client: httpx.AsyncClient, db: Database) -> None:
    portal = await _platform_portal(db)
    missing = await client.get("/wifi/nosuchportal00", params=gateway_query())
    assert missing.status_code == 404
    assert "does not exist" in missing.text
    online = await client.get(
        f"/wifi/{portal.token}",
        params={"clientip": "192.168.8.23", "gatewayname": "Mall", "status": "authenticated"},
    )
    assert online.status_code == 200
    assert "You are already online" in online.text


async def test_merchant_owners_manage_portals_and_see_their_promotions(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    owner, admin, staff = await make_user(), await make_user(admin=True), await make_user()
    shop = await factories.merchant(db, owner, admin=admin)
    await factories.add_staff(db, shop, owner, staff)
    async with db.session() as s:
        await promotions.create(
            s,
            merchant_id=shop.id,
            spec=promotions.Spec(
                name="Shop 10 off", kind=Kind.fixed, scope=Scope.order, value=1000
            ),
        )
        await promotions.create(
            s,
            merchant_id=None,
            spec=promotions.Spec(
                name="Platform only", kind=Kind.fixed, scope=Scope.order, value=500
            ),
        )

    url = f"/api/v1/merchants/{shop.id}/wifi-portals"
    created = await client.post(url, json={"name": "Shop Cafe"}, headers=await auth_headers(owner))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["faspath"] == f"/wifi/{body['token']}"
    assert len(body["token"]) == 16
    assert len(body["fas_key"]) == 32
    assert body["session_minutes"] == 240

    assert (
        await client.post(url, json={"name": "x"}, headers=await auth_headers(staff))
    ).status_code == 403
    assert (await client.get(url, headers=await auth_headers(admin))).status_code == 404
    listed = await client.get(url, headers=await auth_headers(owner))
    assert [p["id"] for p in listed.json()["items"]] == [body["id"]]
    bad = await client.post(
        url, json={"name": "x", "session_minutes": 1}, headers=await auth_headers(owner)
    )
    assert bad.status_code == 422

    page = await client.get(f"/wifi/{body['token']}", params=gateway_query())
    assert "Shop 10 off" in page.text
    assert "Platform only" not in page.text

    admin_url = "/api/v1/admin/wifi-portals"
    assert (await client.get(admin_url, headers=await auth_headers(owner))).status_code == 403
    platform = await client.post(
        admin_url, json={"name": "Atrium"}, headers=await auth_headers(admin)
    )
    assert platform.status_code == 201
    assert platform.json()["merchant_id"] is None
    gone = await client.delete(f"{url}/{body['id']}", headers=await auth_headers(owner))
    assert gone.status_code == 204
    assert (await client.get(f"/wifi/{body['token']}", params=gateway_query())).status_code == 404


async def test_level_2_encrypted_parameters_work_with_the_portals_key(
    client: httpx.AsyncClient, db: Database
) -> None:
    portal = await _platform_portal(db)
    text = f"hid={HID}, clientip=10.0.0.9, gatewayaddress=10.0.0.1:2050, authdir=opennds_auth"
    iv = "abcdef0123456789"
    fas = wifi_fas.encrypt(text, iv, portal.fas_key)
    page = await client.get(f"/wifi/{portal.token}", params={"fas": fas, "iv": iv})
    assert page.status_code == 200
    assert f'name="iv" value="{iv}"' in page.text  # carried to the next step
    other_key = wifi_fas.encrypt(text, iv, "0" * 32)
    refused = await client.get(f"/wifi/{portal.token}", params={"fas": other_key, "iv": iv})
    assert refused.status_code == 400


async def test_the_api_rotates_a_portals_key(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    owner, admin = await make_user(), await make_user(admin=True)
    shop = await factories.merchant(db, owner, admin=admin)
    url = f"/api/v1/merchants/{shop.id}/wifi-portals"
    made = (await client.post(url, json={"name": "Cafe"}, headers=await auth_headers(owner))).json()
    rotated = await client.post(f"{url}/{made['id']}/rotate-key", headers=await auth_headers(owner))
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["token"] == made["token"]
    assert len(rotated.json()["fas_key"]) == 32
    assert rotated.json()["fas_key"] != made["fas_key"]
    async with db.session() as s:
        portal = await wifi.by_token(s, token=made["token"])
        assert portal.fas_key == rotated.json()["fas_key"]

    platform = (
        await client.post(
            "/api/v1/admin/wifi-portals", json={"name": "Atrium"}, headers=await auth_headers(admin)
        )
    ).json()
    again = await client.post(
        f"/api/v1/admin/wifi-portals/{platform['id']}/rotate-key",
        headers=await auth_headers(admin),
    )
    assert again.status_code == 200
    assert again.json()["fas_key"] != platform["fas_key"]
