"""Sign up with a texted code, in Chromium at a 360 px phone viewport."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Server, read_outbox_code, screenshot_dir

NEW_PHONE = "+8613612345001"


async def sign_in(page: Any, phone: str, *, already_there: bool = False) -> None:
    """Sign in with a texted code, from /signin (or the sign-in page the test is on)."""
    if not already_there:
        await page.goto("/signin")
    await page.fill("#phone", phone)
    await page.click("form[action='/signin'] button[type=submit]")
    await page.wait_for_selector("#code")
    outbox = await page.context.new_page()
    code = await read_outbox_code(outbox, phone)
    await outbox.close()
    await page.fill("#code", code)
    await page.click("form[action='/signin/verify'] button[type=submit]")


async def no_sideways_scroll(page: Any) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth") <= 360  # type: ignore[no-any-return]


async def test_sign_up_reads_code_from_outbox_and_lands_on_me(
    phone_context: Any, server: Server
) -> None:
    page = await (await phone_context()).new_page()
    await sign_in(page, NEW_PHONE)
    await page.wait_for_url("**/me")
    assert await page.locator("dl.kv dd").first.inner_text() == "136****5001"
    assert NEW_PHONE[3:] not in await page.content()
    assert await no_sideways_scroll(page)
    tab = await page.locator("nav.tabbar a[aria-current=page]").inner_text()
    assert tab.strip().endswith("Me")
    await page.screenshot(path=str(screenshot_dir() / "me.png"), full_page=True)


async def test_consent_switch_and_data_download(phone_context: Any, server: Server) -> None:
    page = await (await phone_context()).new_page()
    await sign_in(page, "+8613612345002")
    await page.wait_for_url("**/me")
    await page.click("button[data-channel=sms]")
    await page.wait_for_url("**/me#consents")
    assert await page.locator("button[data-channel=sms]").get_attribute("data-on") == "1"
    async with page.expect_download() as info:
        await page.click("text=Download my data")
    download = await info.value
    data = json.loads(Path(await download.path()).read_text())
    assert data["account"]["phone"] == "+8613612345002"
    assert data["consents"][-1]["channel"] == "sms"
    assert data["consents"][-1]["granted"] is True


async def test_home_lists_demo_products_in_chinese(phone_context: Any, server: Server) -> None:
    page = await (await phone_context(locale="zh-CN")).new_page()
    await page.goto("/")
    assert await page.locator("#products .product").count() == 20
    assert (await page.locator("nav.tabbar").inner_text()).startswith("⌂\n首页")
    assert await no_sideways_scroll(page)
    await page.screenshot(path=str(screenshot_dir() / "home-zh.png"))
    await page.click("text=更多")
    await page.wait_for_url("**cursor=*")
    assert await page.locator("#products .product").count() == 20
