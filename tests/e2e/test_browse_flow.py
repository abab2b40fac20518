"""Shopping on a phone in Chromium: a misspelt search, a price filter, a product with
variants and a video, and following its brand."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.conftest import Server, screenshot_dir
from tests.e2e.test_accounts_flow import sign_in

PRODUCT = "White Hanging Heart T-Light Holder"  # demo: three colours, a video, brand Retrospot


def _price(text: str) -> float:
    return float(re.sub(r"[^\d.]", "", text))


async def test_search_filter_variant_video_and_follow(phone_context: Any, server: Server) -> None:
    page = await (await phone_context()).new_page()
    await page.goto("/")
    await page.type("input[name=q]", "white hang", delay=30)
    suggestions = page.locator("#suggestions option")
    await suggestions.first.wait_for(state="attached")
    assert "white hanging" in await suggestions.evaluate_all("os => os.map(o => o.value)")
    await page.fill("input[name=q]", "white hangng heart")  # one letter missing
    await page.press("input[name=q]", "Enter")
    await page.wait_for_url("**/search?q=*")
    assert PRODUCT in await page.locator("#products").inner_text()
    total_before = await page.locator("#total").inner_text()

    await page.click("details summary")
    await page.fill("#price_max", "30")
    await page.click("#filters button[type=submit]")
    await page.wait_for_url("**price_max=30*")
    prices = [_price(t) for t in await page.locator("#products .price").all_inner_texts()]
    assert prices, "the filter left nothing"
    assert max(prices) <= 30
    assert await page.locator("#total").inner_text() != total_before
    assert await page.input_value("#price_max") == "30.00"

    await page.click(f"#products a:has-text('{PRODUCT}')")
    await page.wait_for_url("**/products/*")
    first_price = await page.locator("#price").inner_text()
    await page.click(".variants a:has-text('blue')")
    await page.wait_for_url("**sku=*")
    assert await page.locator(".variants a[aria-current]").inner_text() == "blue"
    assert await page.locator("#price").inner_text() != first_price

    playing = await page.eval_on_selector(
        "video",
        """v => { v.muted = true; return v.play().then(() => new Promise(
            r => setTimeout(() => r(v.currentTime), 800))); }""",
    )
    assert playing > 0, "the video did not advance"
    await page.screenshot(path=str(screenshot_dir() / "product.png"), full_page=True)

    await page.click("#brand-link")
    await page.wait_for_url("**/brands/*")
    followers = await page.locator("#followers").inner_text()
    await page.click("#follow")  # signed out: sign in first, then come back
    await page.wait_for_url("**/signin?next=**")
    await sign_in(page, "+8613612345090", already_there=True)
    await page.wait_for_url("**/brands/*")
    async with page.expect_navigation():
        await page.click("#follow")
    assert await page.locator("#follow").inner_text() == "Following"
    assert _price(await page.locator("#followers").inner_text()) == _price(followers) + 1
