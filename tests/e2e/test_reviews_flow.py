"""Reviewing on a phone in Chromium against the real server: a shopper whose order was
delivered writes a review with a forbidden word, is told why with their text kept, fixes it,
sees it on the product page with the rating bars, then asks the shop a question."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.catalog.models import Product, Variant
from mobimart.checkout import service as checkout
from mobimart.db import Database
from mobimart.demo.load import MERCHANTS
from mobimart.errors import Conflict
from mobimart.logistics import service as logistics
from mobimart.logistics.domain import TrackingStatus
from mobimart.merchants import service as merchants
from mobimart.moderation import service as moderation
from mobimart.payments import service as payments
from tests import factories
from tests.e2e.conftest import Server, screenshot_dir
from tests.e2e.test_accounts_flow import no_sideways_scroll, sign_in

SHOPPER = "+8613612347301"
FORBIDDEN = "scamword"


async def _delivered_order(server: Server) -> int:
    """The shopper's order of a product of the first demo shop, paid from their wallet,
    shipped and delivered by the shop's own steps; the order id."""
    db = Database(server.env["MOBIMART_DATABASE_URL"], null_pool=True)
    try:
        async with db.session() as s:
            buyer = await accounts.find_user_by_phone(s, phone=SHOPPER)
            owner = await accounts.find_user_by_phone(s, phone=MERCHANTS[0][0])
            assert buyer is not None
            assert owner is not None
            merchant = (await merchants.my_merchants(s, user_id=owner.id))[0][0]
            with contextlib.suppress(Conflict):  # a word the demo list may hold already
                await moderation.add_word(s, word=FORBIDDEN, admin_id=owner.id)
                await s.commit()
        await factories.credit(db, buyer, 100_000, f"e2e-reviews:{buyer.id}")
        async with db.session() as s:
            variant = await s.scalar(
                select(Variant)
                .join(Product, Product.id == Variant.product_id)
                .where(
                    Product.merchant_id == merchant.id,
                    Product.status == "published",
                    Variant.stock > 0,
                )
                .order_by(Variant.id)
                .limit(1)
            )
            assert variant is not None
            buyer = await s.merge(buyer)
            address = await checkout.add_address(
                s,
                user=buyer,
                spec=checkout.AddressSpec("韩梅梅", "+8613912345678", "上海市", "漕溪北路 1 号"),
            )
            cart = await checkout.cart_of(s, user_id=buyer.id)
            await checkout.put(s, cart=cart, variant_id=variant.id, quantity=1)
            (order,) = await checkout.place(s, user=buyer, address_id=address.id)
            await payments.pay(s, payer=buyer, order_ids=[order.id], method="wallet")
        async with db.session() as s:
            actor = await s.merge(owner)
            await logistics.ship(
                s,
                merchant_id=merchant.id,
                order_id=order.id,
                carrier="sf",
                tracking_number="SF1400000077",
                actor=actor,
            )
            await logistics.add_event(
                s,
                merchant_id=merchant.id,
                order_id=order.id,
                actor=actor,
                event=logistics.EventSpec(status=TrackingStatus.delivered),
            )
        return order.id
    finally:
        await db.dispose()


async def test_refused_review_keeps_the_text_then_shows_and_a_question_is_asked(
    phone_context: Any, server: Server
) -> None:
    page = await (await phone_context()).new_page()
    await sign_in(page, SHOPPER)
    await page.wait_for_url("**/me")
    order_id = await _delivered_order(server)

    await page.goto(f"/orders/{order_id}")
    await page.click("a.review-link >> nth=0")
    await page.wait_for_url("**/order-lines/*/review")
    await page.check("#review-form input[name=stars][value='4']")
    typed = f"Lovely colour, but the box said {FORBIDDEN} on it."
    await page.fill("#body", typed)
    await page.click("#review-form button[type=submit]")
    alert = await page.locator("main .error[role=alert]").inner_text()
    assert "not allowed" in alert
    assert FORBIDDEN in alert
    assert await page.input_value("#body") == typed  # nothing typed is lost
    assert await page.is_checked("#review-form input[name=stars][value='4']")
    assert await no_sideways_scroll(page)
    await page.screenshot(path=str(screenshot_dir() / "review-refused.png"), full_page=True)

    await page.fill("#body", "Lovely colour, sturdy box.")
    await page.click("#review-form button[type=submit]")
    await page.wait_for_url("**/products/*#review-*")
    review_id = page.url.rsplit("#review-", 1)[1]
    mine = page.locator(f"#review-{review_id}")
    assert "Lovely colour, sturdy box." in await mine.inner_text()
    assert await mine.locator(".stars").get_attribute("aria-label") == "4 of 5 stars"
    assert await page.locator("#rating meter").count() == 5
    assert float(await page.locator("#rating .rating-average").inner_text()) > 0
    await page.locator("#reviews").screenshot(path=str(screenshot_dir() / "review-shown.png"))

    question = "Is the glaze food safe?"
    await page.fill("#question", question)
    await page.click("#ask button[type=submit]")
    await page.wait_for_url("**/questions?notice=asked*")
    assert question in await page.locator("#question-list").inner_text()
    assert await no_sideways_scroll(page)
    await page.screenshot(path=str(screenshot_dir() / "review-questions.png"), full_page=True)
