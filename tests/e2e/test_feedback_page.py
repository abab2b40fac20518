"""The merchant feedback page in Chromium at a phone viewport: the rating trend drawn by the
vendored Chart.js under the page's CSP, and the same numbers as a table without script."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.catalog.models import Product, Variant
from mobimart.db import Database
from mobimart.demo.load import CONSUMER_PHONE, MERCHANTS
from mobimart.merchants import service as merchants
from tests.api.test_feedback import Shop, _question, _review
from tests.e2e.conftest import PHONE, Server, screenshot_dir, start_server
from tests.e2e.test_accounts_flow import no_sideways_scroll, sign_in

OWNER = MERCHANTS[2][0]
COMPLAINTS = ["尺码偏小，质量一般", "尺码不准，物流太慢", "包装破损，质量差", "Size runs small"]


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: the reviews written here change no other test's shop."""
    proc, srv = start_server(tmp_path_factory.mktemp("feedback-var"))
    yield srv
    proc.terminate()
    proc.wait(10)


async def _reviews_over_weeks(server: Server) -> int:
    """Three months of reviews for the demo's third shop, getting worse lately."""
    db = Database(server.env["MOBIMART_DATABASE_URL"])
    try:
        async with db.session() as s:
            owner = await accounts.find_user_by_phone(s, phone=OWNER)
            buyer = await accounts.find_user_by_phone(s, phone=CONSUMER_PHONE)
            assert owner is not None
            assert buyer is not None
            merchant = (await merchants.my_merchants(s, user_id=owner.id))[0][0]
            product = await s.scalar(select(Product).where(Product.merchant_id == merchant.id))
            assert product is not None
            variant = await s.scalar(select(Variant.id).where(Variant.product_id == product.id))
            assert variant is not None
        shop = Shop(merchant, owner, product.shop_id, [product.id], [variant])
        for week in range(11, -1, -1):
            for n in range(week % 3 + 1):
                stars = 5 - (11 - week) // 3 - n % 2  # four-and-a-half down to two
                body = COMPLAINTS[(week + n) % len(COMPLAINTS)] if stars <= 3 else "很好"
                ago = dt.timedelta(weeks=week, hours=n + 1)
                await _review(db, shop, buyer, max(1, stars), body, ago=ago)
        await _question(db, shop, buyer, "能机洗吗？", dt.timedelta(days=4))
        return merchant.id
    finally:
        await db.dispose()


async def test_feedback_page_draws_the_trend(browser: Any, own_server: Server) -> None:
    merchant_id = await _reviews_over_weeks(own_server)
    context = await browser.new_context(**PHONE, base_url=own_server.url)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await sign_in(page, OWNER)
    await page.wait_for_url("**/me")
    await page.goto(f"/console/{merchant_id}")
    await page.click("#feedback")
    await page.wait_for_url(f"**/console/{merchant_id}/feedback")
    await page.wait_for_selector("#trend-chart[data-drawn='12']")
    # Painted: the canvas holds more than one colour, and its box is the phone's width.
    colours = await page.evaluate(
        """() => {
          const c = document.getElementById('trend-chart');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          const seen = new Set();
          for (let i = 0; i < d.length; i += 4 * 97) seen.add(d.slice(i, i + 4).join());
          return seen.size;
        }"""
    )
    assert colours > 3
    box = await page.locator("#trend-chart").bounding_box()
    assert box is not None
    assert 250 < box["width"] <= 360
    assert await page.locator("#trend-table").get_attribute("open") is None
    assert "low reviews mention “尺码”" in await page.locator("#fixes").inner_text()
    assert await no_sideways_scroll(page)
    assert problems == []  # no CSP refusal, no script error
    await page.screenshot(path=str(screenshot_dir() / "feedback.png"), full_page=True)

    await page.click("#fixes a:has-text('尺码')")
    await page.wait_for_url("**/feedback/reviews?term=*")
    assert await page.locator("#term-reviews li mark").count() >= 2

    plain = await browser.new_context(**PHONE, base_url=own_server.url, java_script_enabled=False)
    await plain.add_cookies(await context.cookies())
    bare = await plain.new_page()
    await bare.goto(f"/console/{merchant_id}/feedback")
    assert await bare.locator("#trend-table").get_attribute("open") is not None
    assert await bare.locator("#trend-table tbody tr").count() == 12
    assert not await bare.locator(".chart").is_visible()
    await plain.close()
    await context.close()
