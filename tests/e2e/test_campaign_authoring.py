"""Writing a campaign in Chromium at a phone viewport: the live preview counts SMS parts as
the merchant types (Chinese turns it UCS-2, the opt-out hint included), the Preview button
works without script, and a sent campaign's report draws its chart under the page's CSP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from mobimart.accounts import service as accounts
from mobimart.campaigns.models import Campaign, CampaignMessage, Segment
from mobimart.db import Database
from mobimart.demo.load import CONSUMER_PHONE, MERCHANTS
from mobimart.merchants import service as merchants
from tests.e2e.conftest import PHONE, Server, screenshot_dir, start_server
from tests.e2e.test_accounts_flow import no_sideways_scroll, sign_in

OWNER = MERCHANTS[1][0]


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    proc, srv = start_server(tmp_path_factory.mktemp("authoring-var"))
    yield srv
    proc.terminate()
    proc.wait(10)


async def _sent_campaign(server: Server) -> tuple[int, int, int]:
    """A segment of the second demo shop, and a campaign of it sent to the demo consumer
    three hours ago, delivered and clicked."""
    db = Database(server.env["MOBIMART_DATABASE_URL"])
    try:
        async with db.session() as s:
            owner = await accounts.find_user_by_phone(s, phone=OWNER)
            buyer = await accounts.find_user_by_phone(s, phone=CONSUMER_PHONE)
            assert owner is not None
            assert buyer is not None
            merchant = (await merchants.my_merchants(s, user_id=owner.id))[0][0]
            segment = Segment(merchant_id=merchant.id, name="Lantern fans", member_count=1200)
            at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
            campaign = Campaign(
                merchant_id=merchant.id,
                name="Lantern festival",
                channel="sms",
                template="{name}, lanterns 20% off: {link} 回T退订",
                link_url="/",
                status="sent",
                cost_per_part_minor=5,
                started_at=at,
            )
            s.add_all([segment, campaign])
            await s.flush()
            s.add(
                CampaignMessage(
                    campaign_id=campaign.id,
                    user_id=buyer.id,
                    status="delivered",
                    parts=1,
                    sent_at=at,
                    delivered_at=at + dt.timedelta(seconds=5),
                    clicked_at=at + dt.timedelta(hours=1),
                )
            )
            await s.commit()
            return merchant.id, segment.id, campaign.id
    finally:
        await db.dispose()


async def test_composer_preview_and_report_chart(browser: Any, own_server: Server) -> None:
    merchant_id, segment_id, sent_id = await _sent_campaign(own_server)
    context = await browser.new_context(**PHONE, base_url=own_server.url)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await sign_in(page, OWNER)
    await page.wait_for_url("**/me")
    await page.goto(f"/console/{merchant_id}")
    await page.click("#marketing")
    await page.wait_for_url(f"**/console/{merchant_id}/marketing")
    assert await page.locator("#tools a").count() == 7
    assert await no_sideways_scroll(page)
    await page.wait_for_selector("#report-chart[data-drawn='30']")
    await page.screenshot(path=str(screenshot_dir() / "marketing.png"), full_page=True)

    await page.click("#tool-campaigns")
    await page.click("#new-campaign")
    await page.fill("#name", "Mid-autumn")
    await page.select_option("#segment_id", str(segment_id))
    # 60 Chinese characters + " 回T退订": 65 UTF-16 units, one part of UCS-2...
    await page.fill("#template", "月" * 60)
    await page.wait_for_selector("#preview-parts:has-text('1')")
    size = await page.locator("#preview-size").inner_text()
    assert "UCS-2" in size
    assert "65" in size
    # ...and six more make 71: two parts, and the cost doubles (1,200 × 2 × ¥0.05).
    await page.fill("#template", "月" * 66)
    await page.wait_for_selector("#preview-parts:has-text('2')")
    assert "¥120.00" in await page.locator("#preview-cost").inner_text()
    await page.fill("#template", "{nmae}")
    await page.wait_for_selector("#preview-problem")
    assert "{nmae}" in await page.locator("#preview-problem").inner_text()
    await page.fill("#template", "{name}, mooncakes at {shop}")
    await page.wait_for_selector("#preview-text:has-text('Reply STOP to opt out')")
    assert await no_sideways_scroll(page)
    await page.screenshot(path=str(screenshot_dir() / "campaign-composer.png"), full_page=True)
    await page.click("button[value=save]")
    await page.wait_for_url("**/campaigns/*?notice=created")
    assert await page.locator("#send-now").is_visible()

    await page.goto(f"/console/{merchant_id}/campaigns/{sent_id}")
    await page.wait_for_selector("#report-chart[data-drawn]")
    assert await page.locator("#fig-clicked").inner_text() == "1 (100.0%)"
    assert await page.locator("#report-table").get_attribute("open") is None
    assert await no_sideways_scroll(page)
    await page.screenshot(path=str(screenshot_dir() / "campaign-report.png"), full_page=True)
    assert problems == []  # no CSP refusal, no script error

    plain = await browser.new_context(**PHONE, base_url=own_server.url, java_script_enabled=False)
    await plain.add_cookies(await context.cookies())
    bare = await plain.new_page()
    await bare.goto(f"/console/{merchant_id}/campaigns/new")
    await bare.fill("#name", "No script")
    await bare.fill("#template", "{name}: hello")
    await bare.click("button[value=preview]")
    assert "Li Hua: hello Reply STOP to opt out" in await bare.locator("#preview-text").inner_text()
    await bare.goto(f"/console/{merchant_id}/campaigns/{sent_id}")
    assert await bare.locator("#report-table").get_attribute("open") is not None
    await plain.close()
    await context.close()


async def _merchant_id(server: Server) -> int:
    db = Database(server.env["MOBIMART_DATABASE_URL"])
    try:
        async with db.session() as s:
            owner = await accounts.find_user_by_phone(s, phone=OWNER)
            assert owner is not None
            return (await merchants.my_merchants(s, user_id=owner.id))[0][0].id
    finally:
        await db.dispose()


@pytest.fixture
def fresh_server(tmp_path: Any) -> Iterator[Server]:
    """A server of its own: the owner's sign-in code can be asked for once a minute."""
    proc, srv = start_server(tmp_path / "var")
    yield srv
    proc.terminate()
    proc.wait(10)


async def test_segment_builder_and_automation_on_a_phone(
    browser: Any, fresh_server: Server
) -> None:
    """The rule builder counts before saving and says what is missing without losing the
    form; an automation is written and listed, all at a phone's width and without errors."""
    merchant_id = await _merchant_id(fresh_server)
    context = await browser.new_context(**PHONE, base_url=fresh_server.url)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await sign_in(page, OWNER)
    await page.wait_for_url("**/me")

    await page.goto(f"/console/{merchant_id}/segments/new")
    await page.fill("#name", "Scanned the window code")
    await page.select_option("#kind_0", "scanned_qr")
    await page.fill("input[name=id_0]", "4")
    await page.click("button[value=save]")
    await page.wait_for_selector("#segment-error")
    assert "days" in await page.locator("#segment-error").inner_text()
    assert await page.input_value("#name") == "Scanned the window code"
    # The refusal is a 422, which the browser logs; nothing else went wrong.
    assert [p for p in problems if "status of 422" not in p] == []
    problems.clear()
    await page.fill("input[name=days_0]", "30")
    await page.click("button[value=count]")
    await page.wait_for_selector("#segment-count")
    assert "match" in await page.locator("#segment-count").inner_text()
    assert await no_sideways_scroll(page)
    await page.screenshot(path=str(screenshot_dir() / "segment-builder.png"), full_page=True)
    await page.click("button[value=save]")
    await page.wait_for_url("**/segments/*?notice=saved")
    assert await page.locator("#members").is_visible()
    await page.goto(f"/console/{merchant_id}/segments")
    assert "Scanned the window code" in await page.content()
    assert await no_sideways_scroll(page)

    await page.goto(f"/console/{merchant_id}/automations")
    await page.fill("#a-name", "Thanks for scanning")
    await page.select_option("#a-trigger", "qr_scan")
    await page.select_option("#a-action", "sms")
    await page.fill("#a-sms", "Hi {name}, thanks for visiting {shop}: {link}")
    await page.fill("#a-link", "/")
    await page.click("#new-automation button[type=submit]")
    await page.wait_for_url("**/automations?notice=created")
    assert "Thanks for scanning" in await page.locator("#automation-list").inner_text()
    assert await no_sideways_scroll(page)
    await page.screenshot(path=str(screenshot_dir() / "automations.png"), full_page=True)
    assert problems == []
    await context.close()
