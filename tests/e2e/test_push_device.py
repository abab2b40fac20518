"""A phone turns notifications on from the Me page: push.js asks for permission, registers
the service worker at the site root, subscribes with the server's key and posts the
subscription; "Send me a test" then reaches a real push service (the test double), which
verifies the VAPID signature and decrypts the exact payload.

The browser's own subscribe is replaced by one returning the double's subscriber: headless
Chromium's would need its vendor's push service on the internet."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.e2e.conftest import PHONE, Server, screenshot_dir
from tests.e2e.test_accounts_flow import no_sideways_scroll, sign_in
from tests.pushservice import PushService

NEW_PHONE = "+8613612345691"

FAKE_SUBSCRIBE = """
(() => {
  const made = %s;
  const subscription = (options) =>
    ({ endpoint: made.endpoint, options: options, toJSON: () => made });
  PushManager.prototype.getSubscription = function () {
    return Promise.resolve(sessionStorage.getItem("subscribedWith") ? subscription({}) : null);
  };
  PushManager.prototype.subscribe = function (options) {
    sessionStorage.setItem("subscribedWith",
      JSON.stringify(Array.from(new Uint8Array(options.applicationServerKey))));
    sessionStorage.setItem("userVisibleOnly", String(options.userVisibleOnly));
    return Promise.resolve(subscription(options));
  };
})();
"""


async def test_turn_on_test_and_remove_a_device(browser: Any, server: Server) -> None:
    key = httpx.get(server.url + "/api/v1/push/key").json()["application_server_key"]
    with PushService() as service:
        phone = service.subscriber(server_key=key)
        context = await browser.new_context(**PHONE, base_url=server.url)
        try:
            await context.grant_permissions(["notifications"], origin=server.url)
            await context.add_init_script(FAKE_SUBSCRIBE % json.dumps(phone.json()))
            page = await context.new_page()
            await sign_in(page, NEW_PHONE)
            await page.wait_for_url("**/me")
            section = page.locator("#push")
            assert "No device gets notifications yet." in await section.inner_text()
            assert await no_sideways_scroll(page)

            await page.click("#push-enable")
            await page.wait_for_url("**/me?push=on#push")
            assert "Notifications are on for this device." in await section.inner_text()
            assert "Chrome on Android" in await page.locator("#push-devices").inner_text()
            await page.wait_for_function(
                "document.getElementById('push-status').textContent.length > 0"
            )
            assert await page.locator("#push-status").inner_text() == (
                "This device gets notifications."
            )
            used = json.loads(await page.evaluate("sessionStorage.getItem('subscribedWith')"))
            assert bytes(used) == base64.urlsafe_b64decode(key + "=")
            assert await page.evaluate("sessionStorage.getItem('userVisibleOnly')") == "true"
            scope = await page.evaluate(
                "navigator.serviceWorker.getRegistration().then(r => r && r.scope)"
            )
            assert scope == server.url + "/"
            await section.screenshot(path=str(screenshot_dir() / "push-device-on.png"))

            await page.click("#push-test")
            await page.wait_for_url("**/me?push=sent#push")
            (got,) = service.received(phone.endpoint)
            assert got.json() == {
                "title": "Mobimart",
                "body": "Notifications work on this device.",
                "link": "/me#push",
            }

            await page.locator("#push-devices button", has_text="Remove").click()
            await page.wait_for_url("**/me?push=removed#push")
            assert "No device gets notifications yet." in await section.inner_text()
        finally:
            await context.close()
