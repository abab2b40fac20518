"""Sign up with a texted code, in Chromium at a 360 px phone viewport."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Server, read_outbox_code, screenshot_dir

NEW_PHONE = "+8613612345001"


def sign_in(page: Any, phone: str) -> None:
    page.goto("/signin")
    page.fill("#phone", phone)
    page.click("text=Send code")
    page.wait_for_selector("#code")
    outbox = page.context.new_page()
    code = read_outbox_code(outbox, phone)
    outbox.close()
    page.fill("#code", code)
    page.click("form[action='/signin/verify'] button[type=submit]")


def test_sign_up_reads_code_from_outbox_and_lands_on_me(phone_context: Any, server: Server) -> None:
    page = phone_context().new_page()
    sign_in(page, NEW_PHONE)
    page.wait_for_url("**/me")
    assert page.locator("dl.kv dd").first.inner_text() == "136****5001"
    assert NEW_PHONE[3:] not in page.content()
    # The shell fits a 360 px screen: nothing scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.locator("nav.tabbar a[aria-current=page]").inner_text().strip().endswith("Me")
    page.screenshot(path=str(screenshot_dir() / "me.png"), full_page=True)


def test_consent_switch_and_data_download(phone_context: Any, server: Server) -> None:
    page = phone_context().new_page()
    sign_in(page, "+8613612345002")
    page.wait_for_url("**/me")
    page.click("button[data-channel=sms]")
    page.wait_for_url("**/me#consents")
    assert page.locator("button[data-channel=sms]").get_attribute("data-on") == "1"
    with page.expect_download() as info:
        page.click("text=Download my data")
    download = info.value
    import json
    from pathlib import Path

    data = json.loads(Path(download.path()).read_text())
    assert data["account"]["phone"] == "+8613612345002"
    assert data["consents"][-1] == {**data["consents"][-1], "channel": "sms", "granted": True}


def test_home_lists_demo_products_in_chinese(phone_context: Any, server: Server) -> None:
    page = phone_context(locale="zh-CN").new_page()
    page.goto("/")
    assert page.locator("#products .product").count() == 20
    assert page.locator("nav.tabbar").inner_text().startswith("⌂\n首页")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path=str(screenshot_dir() / "home-zh.png"))
    page.click("text=更多")
    assert page.locator("#products .product").count() == 20
