"""Buying on a phone in Chromium, end to end against the real server: add to cart, apply a
coupon, pay from the wallet, the shop ships from its console, the shopper follows the parcel."""

from __future__ import annotations

import re
from typing import Any

from mobimart.demo.load import CONSUMER_PHONE, DEMO_COUPON, MERCHANTS
from tests.e2e.conftest import Server, screenshot_dir
from tests.e2e.test_accounts_flow import no_sideways_scroll, sign_in

PRODUCT = "White Hanging Heart T-Light Holder"  # demo: Retrospot Home's, from ¥22.95


def _yuan(text: str) -> int:
    """'¥1,234.50' -> 123450 minor units."""
    return int(re.sub(r"[^\d]", "", text))


async def test_cart_coupon_wallet_ship_and_track(phone_context: Any, server: Server) -> None:
    shopper = await (await phone_context()).new_page()
    await sign_in(shopper, CONSUMER_PHONE)
    await shopper.wait_for_url("**/me")
    await shopper.goto("/search?q=" + PRODUCT.replace(" ", "+"))
    await shopper.click(f"#products a:has-text('{PRODUCT}')")
    await shopper.wait_for_url("**/products/*")
    await shopper.fill("#quantity", "2")
    await shopper.click("#add-to-cart button")
    await shopper.wait_for_url("**/cart?notice=added")
    before = _yuan(await shopper.locator("#cart-total").inner_text())

    await shopper.fill("#code", DEMO_COUPON.lower())
    await shopper.click("#coupon button")
    await shopper.wait_for_url(f"**/cart?code={DEMO_COUPON.lower()}")
    assert "Spend ¥30, save ¥5" in await shopper.locator(".cart-lines").inner_text()
    assert _yuan(await shopper.locator("#cart-total").inner_text()) == before - 500
    assert await no_sideways_scroll(shopper)
    await shopper.screenshot(path=str(screenshot_dir() / "cart.png"), full_page=True)

    await shopper.click("#checkout")
    await shopper.wait_for_url("**/checkout?code=*")
    if not await shopper.locator("input[name=address_id]").count():
        await shopper.fill("#recipient", "韩梅梅")
        await shopper.fill("#a-phone", "13912345678")
        await shopper.fill("#region", "上海市 徐汇区")
        await shopper.fill("#detail", "漕溪北路 1 号")
        await shopper.click("#new-address button")
        await shopper.wait_for_url("**/checkout?notice=address*")
    assert _yuan(await shopper.locator("#checkout-total").inner_text()) == before - 500
    await shopper.click("#place button[type=submit]")
    await shopper.wait_for_url("**/pay?order=*")
    await shopper.click("#pay-wallet")
    await shopper.wait_for_url("**/orders/*?notice=paid")
    assert await shopper.locator("main .badge-order-paid").count() == 1
    order_number = await shopper.locator("#order-number").inner_text()
    order_url = shopper.url.split("?")[0]

    merchant = await (await phone_context()).new_page()
    await sign_in(merchant, MERCHANTS[0][0])
    await merchant.wait_for_url("**/me")
    await merchant.goto("/console")
    await merchant.click("main .list a >> nth=0")
    await merchant.click("#manage-orders")
    await merchant.click(f"#order-list a:has-text('{order_number}')")
    assert "139****5678" in await merchant.content()
    await merchant.select_option("#carrier", "sf")
    await merchant.fill("#tracking_number", "SF1400000001")
    await merchant.click("#ship button")
    await merchant.wait_for_url("**notice=shipped")
    await merchant.select_option("#status", "in_transit")
    await merchant.fill("#description", "Left the Shanghai hub")
    await merchant.fill("#location", "Shanghai")
    await merchant.click("#tracking button")
    await merchant.wait_for_url("**notice=event")

    await shopper.goto(order_url)
    assert await shopper.locator("#tracking-number").inner_text() == "SF1400000001"
    latest = await shopper.locator("#timeline li.latest").inner_text()
    assert "In transit" in latest
    assert "Left the Shanghai hub" in latest
    assert await shopper.locator("#receive").is_visible()
    assert await no_sideways_scroll(shopper)
    await shopper.screenshot(path=str(screenshot_dir() / "tracking.png"), full_page=True)
