"""Pages over HTTP (the browser tests in tests/e2e cover the same flows in Chromium)."""

import re
from typing import Any

import httpx
import pytest

from mobimart.db import Database
from mobimart.web.deps import SESSION_COOKIE
from tests import factories


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def page_sign_in(client: httpx.AsyncClient, read_code: Any, phone: str) -> None:
    form = await client.get("/signin")
    token = csrf_of(form.text)
    verify = await client.post("/signin", data={"phone": phone, "csrf_token": token, "next": "/me"})
    assert verify.status_code == 200
    assert "Enter your code" in verify.text
    done = await client.post(
        "/signin/verify",
        data={"phone": phone, "code": await read_code(phone), "csrf_token": token, "next": "/me"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/me"
    assert SESSION_COOKIE in client.cookies


async def test_sign_in_with_code_on_pages(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    phone = new_phone()
    await page_sign_in(client, read_code, phone)
    me = await client.get("/me")
    assert me.status_code == 200
    assert f"{phone[3:6]}****{phone[-4:]}" in me.text
    assert phone[3:] not in me.text


async def test_session_cookie_is_http_only(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    form = await client.get("/signin")
    token = csrf_of(form.text)
    phone = new_phone()
    await client.post("/signin", data={"phone": phone, "csrf_token": token})
    done = await client.post(
        "/signin/verify", data={"phone": phone, "code": await read_code(phone), "csrf_token": token}
    )
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie


async def test_post_without_csrf_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, new_phone: Any
) -> None:
    response = await client.post("/signin", data={"phone": new_phone(), "csrf_token": "forged"})
    assert response.status_code == 403
    assert "reload the page" in response.text
    from sqlalchemy import func, select

    from mobimart.infra.sms.models import SmsMessage

    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(SmsMessage)) == 0


async def test_wrong_code_on_page_keeps_the_number(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    phone = new_phone()
    token = csrf_of((await client.get("/signin")).text)
    await client.post("/signin", data={"phone": phone, "csrf_token": token})
    code = await read_code(phone)
    response = await client.post(
        "/signin/verify",
        data={"phone": phone, "code": f"{(int(code) + 1) % 10**6:06d}", "csrf_token": token},
    )
    assert response.status_code == 400
    assert "Wrong code; 4 tries left." in response.text
    assert f'value="{phone}"' in response.text


async def test_signed_out_visitor_is_sent_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/console"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "/\\evil.example"])
async def test_next_cannot_redirect_off_site(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any, target: str
) -> None:
    phone = new_phone()
    token = csrf_of((await client.get("/signin")).text)
    await client.post("/signin", data={"phone": phone, "csrf_token": token})
    done = await client.post(
        "/signin/verify",
        data={"phone": phone, "code": await read_code(phone), "csrf_token": token, "next": target},
    )
    assert done.headers["location"] == "/me"


async def test_language_from_header_and_switch(client: httpx.AsyncClient) -> None:
    zh = await client.get("/signin", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "登录或注册" in zh.text
    assert zh.headers["content-language"] == "zh-Hans"
    en = await client.get("/signin", headers={"Accept-Language": "en-GB"})
    assert "Sign in or sign up" in en.text
    switched = await client.get("/lang/zh_Hans?next=/signin")
    assert switched.status_code == 303
    assert switched.headers["location"] == "/signin"
    assert "登录或注册" in (await client.get("/signin", headers={"Accept-Language": "en"})).text
    assert (await client.get("/lang/fr")).status_code == 404


async def test_pages_carry_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_user_text_is_escaped(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    await page_sign_in(client, read_code, new_phone())
    token = csrf_of((await client.get("/me")).text)
    await client.post(
        "/me/profile", data={"display_name": "<script>alert(1)</script>", "csrf_token": token}
    )
    page = (await client.get("/me")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_consent_switch_records_source(
    client: httpx.AsyncClient, read_code: Any, new_phone: Any
) -> None:
    await page_sign_in(client, read_code, new_phone())
    token = csrf_of((await client.get("/me")).text)
    response = await client.post(
        "/me/consents", data={"channel": "push", "granted": "1", "csrf_token": token}
    )
    assert response.status_code == 303
    assert "me_page" in (await client.get("/me")).text


async def test_console_masks_team_numbers_and_admin_pages_need_admin(
    client: httpx.AsyncClient, db: Database, make_user: Any, read_code: Any
) -> None:
    owner_phone = "+8613512345678"
    owner, admin, clerk = (
        await make_user(phone=owner_phone),
        await make_user(admin=True),
        await make_user(),
    )
    merchant = await factories.merchant(db, owner, admin=admin)
    await factories.add_staff(db, merchant, owner, clerk)
    await page_sign_in(client, read_code, owner_phone)
    console = await client.get(f"/console/{merchant.id}")
    assert console.status_code == 200
    assert "135****5678" in console.text
    assert "13512345678" not in console.text
    assert clerk.phone[3:] not in console.text
    assert "137****0001" in console.text  # the contact number, masked
    assert (await client.get("/admin/kyc")).status_code == 403
    assert (await client.get(f"/console/{merchant.id + 1}")).status_code == 404


async def test_console_action_errors_show_on_the_merchant_page(
    client: httpx.AsyncClient, db: Database, make_user: Any, read_code: Any
) -> None:
    owner_phone = "+8613512340000"
    owner = await make_user(phone=owner_phone)
    merchant = await factories.merchant(db, owner, status="draft")
    await page_sign_in(client, read_code, owner_phone)
    token = csrf_of((await client.get(f"/console/{merchant.id}")).text)

    submit = await client.post(f"/console/{merchant.id}/submit", data={"csrf_token": token})
    assert submit.status_code == 422
    assert "Upload these documents first" in submit.text

    bad = await client.post(
        f"/console/{merchant.id}/documents",
        data={"csrf_token": token, "kind": "business_licence"},
        files={"file": ("licence.gif", b"GIF89a" + b"\x00" * 10, "image/gif")},
    )
    assert bad.status_code == 415
    assert "are accepted" in bad.text

    invited = await client.post(
        f"/console/{merchant.id}/invitations",
        data={"csrf_token": token, "phone": "+8613599990000"},
    )
    assert invited.status_code == 303
    again = await client.post(
        f"/console/{merchant.id}/invitations",
        data={"csrf_token": token, "phone": "135 9999 0000"},
    )
    assert again.status_code == 409
    assert "already invited" in again.text
    page = (await client.get(f"/console/{merchant.id}")).text
    assert "135****0000" in page
    assert "13599990000" not in page

    good = await client.post(
        f"/console/{merchant.id}/documents",
        data={"csrf_token": token, "kind": "business_licence"},
        files={"file": ("licence.png", factories.PNG, "image/png")},
    )
    assert good.status_code == 303
    done = await client.post(f"/console/{merchant.id}/submit", data={"csrf_token": token})
    assert done.status_code == 303
    assert done.headers["location"].endswith("notice=submitted")


async def test_review_queue_pages_through_every_application(
    client: httpx.AsyncClient, db: Database, make_user: Any, read_code: Any
) -> None:
    admin_phone = "+8613512349999"
    await make_user(admin=True, phone=admin_phone)
    for n in range(21):
        owner = await make_user()
        await factories.merchant(db, owner, status="pending", n=n)
    await page_sign_in(client, read_code, admin_phone)
    first = await client.get("/admin/kyc")
    names = re.findall(r'href="/admin/kyc/\d+">([^<]+)</a>', first.text)
    more = re.search(r'href="(/admin/kyc\?status=pending&amp;cursor=[^"]+)"', first.text)
    assert len(names) == 20
    assert more
    second = await client.get(more.group(1).replace("&amp;", "&"))
    rest = re.findall(r'href="/admin/kyc/\d+">([^<]+)</a>', second.text)
    assert len(rest) == 1
    assert "cursor=" not in second.text
    assert sorted(names + rest) == sorted(f"Test shop {n}" for n in range(21))


async def test_invitee_accepts_on_the_console(
    client: httpx.AsyncClient, db: Database, make_user: Any, read_code: Any
) -> None:
    owner, clerk_phone = await make_user(), "+8613512341111"
    clerk = await make_user(phone=clerk_phone)
    merchant = await factories.merchant(db, owner, status="draft")
    from mobimart.merchants import service as merchants

    async with db.session() as s:
        await merchants.invite_staff(s, merchant=merchant, actor=owner, phone=clerk.phone)
    await page_sign_in(client, read_code, clerk_phone)
    console = await client.get("/console")
    assert "Test shop 1 invites you to its team" in console.text
    accept = re.search(r'action="(/console/invitations/\d+/accept)"', console.text)
    assert accept
    joined = await client.post(accept.group(1), data={"csrf_token": csrf_of(console.text)})
    assert joined.status_code == 303
    assert joined.headers["location"] == f"/console/{merchant.id}?notice=joined"
    team = (await client.get(joined.headers["location"])).text
    assert "You joined the team." in team
    assert "Invite staff" not in team  # staff do not invite


async def test_real_name_already_used_is_a_message_not_a_crash(
    client: httpx.AsyncClient, db: Database, make_user: Any, read_code: Any
) -> None:
    from mobimart.accounts import privacy

    other = await make_user()
    async with db.session() as s:
        await privacy.verify_real_name(
            s, user=await s.merge(other), name="李雷", id_number=factories.resident_id(77)
        )
    phone = "+8613512342222"
    await make_user(phone=phone)
    await page_sign_in(client, read_code, phone)
    token = csrf_of((await client.get("/me")).text)
    response = await client.post(
        "/me/real-name",
        data={"name": "韩梅梅", "id_number": factories.resident_id(77), "csrf_token": token},
    )
    assert response.status_code == 409
    assert "verified on another account" in response.text


async def test_refused_upload_leaves_no_file(
    client: httpx.AsyncClient, db: Database, make_user: Any, read_code: Any
) -> None:
    from mobimart.merchants import service as merchants

    owner_phone = "+8613512343333"
    owner = await make_user(phone=owner_phone)
    merchant = await factories.merchant(db, owner, status="pending")  # no longer editable
    files = merchants.document_store().root
    before = sorted(p for p in files.rglob("*") if p.is_file())
    await page_sign_in(client, read_code, owner_phone)
    token = csrf_of((await client.get(f"/console/{merchant.id}")).text)
    response = await client.post(
        f"/console/{merchant.id}/documents",
        data={"csrf_token": token, "kind": "other"},
        files={"file": ("late.png", factories.PNG, "image/png")},
    )
    assert response.status_code == 409
    assert sorted(p for p in files.rglob("*") if p.is_file()) == before


async def test_search_page_and_api_find_products(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    from mobimart.catalog import service as catalog

    owner, admin = await make_user(), await make_user(admin=True)
    merchant = await factories.merchant(db, owner, admin=admin)
    async with db.session() as s:
        await catalog.create_product(
            s, merchant=merchant, name="Ceramic Tea Mug", price_minor=2500, stock=9, publish=True
        )
    page = await client.get("/search", params={"q": "ceramik mug"})
    assert page.status_code == 200
    assert "Ceramic Tea Mug" in page.text
    assert "¥25.00" in page.text
    empty = await client.get("/search", params={"q": "<b>zebra</b>"})
    assert "Nothing matches" in empty.text
    assert "<b>zebra</b>" not in empty.text
    api = (await client.get("/api/v1/products", params={"q": "tea mug"})).json()
    assert [p["name"] for p in api["items"]] == ["Ceramic Tea Mug"]
    assert (await client.get("/api/v1/search/suggest", params={"q": "cer"})).json() == ["ceramic"]
    assert (await client.get("/api/v1/search/suggest", params={"q": ""})).status_code == 422
