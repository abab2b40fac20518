"""A phone on the venue's Wi-Fi: openNDS (simulated by intercepting the gateway's address)
sends it to the portal, the visitor signs in with the texted code and agrees to offers, and
the portal sends the browser to the gateway with the right return hash; the stand-in gateway
then sends it to the welcome page, where the visitor signs in to the site."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.e2e.conftest import Server, read_outbox_code, screenshot_dir
from tests.e2e.test_accounts_flow import no_sideways_scroll
from tests.e2e.test_nearby import _owner

VISITOR = "+8613655006001"
GATEWAY = "192.168.8.1:2050"


async def test_a_visitor_gets_online_through_the_portal(phone_context: Any, server: Server) -> None:
    with _owner(server) as api:
        merchant_id = api.get("/api/v1/merchants").json()[0]["id"]
        made = api.post(f"/api/v1/merchants/{merchant_id}/wifi-portals", json={"name": "Demo Cafe"})
        assert made.status_code == 201, made.text
        portal = made.json()

    hid = hashlib.sha256(b"5e6f7a8b").hexdigest()
    fields = (
        f"hid={hid}, clientip=192.168.8.23, clientmac=04:15:52:6a:e4:ad, "
        f"gatewayname=Demo%20Cafe, gatewayaddress={GATEWAY}, "
        "originurl=http%3A%2F%2Fconnectivitycheck.gstatic.com%2Fgenerate_204, clientif=br-lan"
    )
    fas = base64.b64encode(fields.encode()).decode()
    gateway_calls: list[str] = []

    async def opennds(route: Any) -> None:
        """Stand in for openNDS: Playwright calls route handlers only for a redirect's first
        request, so the portal's answer is read here; its Location must be the gateway's
        authentication directory with the return hash openNDS checks, and the "gateway" then
        sends the browser to `redir` (on this test server's port)."""
        answer = await route.fetch(max_redirects=0)
        location = answer.headers.get("location", "")
        gateway_calls.append(location)
        target = urlsplit(location)
        query = parse_qs(target.query)
        expected = hashlib.sha256((hid + portal["fas_key"]).encode()).hexdigest()
        if (target.netloc, target.path, query.get("tok")) != (
            GATEWAY,
            "/opennds_auth/",
            [expected],
        ):
            await route.fulfill(response=answer)
            return
        landing = urlsplit(query["redir"][0])
        await route.fulfill(
            response=answer, headers={**answer.headers, "location": server.url + landing.path}
        )

    context = await phone_context()
    await context.route(f"**/wifi/{portal['token']}/verify", opennds)
    page = await context.new_page()
    await page.goto(f"{portal['faspath']}?fas={fas.replace('+', '%2B')}")
    assert "Free Wi-Fi at Demo Cafe" in await page.locator("h1").inner_text()
    assert not await page.locator("input[name=marketing_sms]").is_checked()
    await page.fill("#phone", VISITOR)
    await page.locator("input[name=marketing_sms]").check()
    await page.get_by_role("button", name="Send code").tap()
    await page.wait_for_selector("#wifi-verify")

    outbox = await context.new_page()
    code = await read_outbox_code(outbox, VISITOR)
    await page.fill("#code", code)
    assert await page.locator("#wifi-verify input[name=marketing_sms]").is_checked()
    await page.get_by_role("button", name="Connect").tap()
    await page.wait_for_url(f"**/wifi/{portal['token']}/welcome")
    assert "You are online" in await page.locator("h1").inner_text()
    assert len(gateway_calls) == 1
    assert await no_sideways_scroll(page)
    await page.screenshot(path=str(screenshot_dir() / "wifi-online.png"), full_page=True)

    # The portal (plain http at a venue) set no session cookie; the welcome page offers the
    # site's own sign-in, which comes back here. (The consent the portal recorded is checked
    # in tests/api/test_wifi_portal.py: signing in again here would wait out the 60 s between
    # two codes to one number.)
    assert not [c for c in await context.cookies() if c["name"] == "mm_session"]
    await page.click("#wifi-signin")
    await page.wait_for_url("**/signin?next=*")
    assert await page.locator("#phone").count() == 1
    assert f"next=%2Fwifi%2F{portal['token']}%2Fwelcome" in page.url
