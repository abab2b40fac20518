"""Chat on two phones in Chromium against the real server: a shopper writes to the shop from a
product page, the shop's owner picks the chat up in the console inbox and replies, and the
shopper sees the reply arrive without reloading; the shop then sees its reply read. Then the
shopper's connection drops while the shop writes: back online, the page catches up, every
message once and in order."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from mobimart.demo.load import CONSUMER_PHONE, MERCHANTS
from tests.e2e.conftest import Server, screenshot_dir
from tests.e2e.test_accounts_flow import no_sideways_scroll
from tests.e2e.test_face_to_face import password_sign_in

PRODUCT = "White Hanging Heart T-Light Holder"  # demo: Retrospot Home's (merchant 0)
QUESTION = "Does the holder fit tea lights <b>4 cm</b> wide?"
AWAY = "We also have them in red."
OFF_PLATFORM = "Is it cheaper if I add me on WeChat?"
TUNNEL = "Red please, two of them."
REPLY = "Yes, up to 4.5 cm. 可以放 4.5 厘米的蜡烛。"


async def test_shopper_and_shop_chat_live(phone_context: Any, server: Server) -> None:
    shopper = await (await phone_context()).new_page()
    # The shopper's chat socket runs through the test, which can cut it like a lost signal.
    sockets: list[Any] = []
    signal = asyncio.Event()
    signal.set()

    async def through(ws: Any) -> None:
        await signal.wait()  # while it is lost, the page's reconnect attempts hang
        ws.connect_to_server()
        sockets.append(ws)

    await shopper.route_web_socket(re.compile(r".*/api/v1/chat/ws$"), through)
    # By password: other tests text codes to the same demo numbers, and a second code within
    # a minute would be refused.
    await password_sign_in(shopper, CONSUMER_PHONE)
    await shopper.goto("/search?q=" + PRODUCT.replace(" ", "+"))
    await shopper.click(f"#products a:has-text('{PRODUCT}')")
    await shopper.wait_for_url("**/products/*")
    await shopper.click("#chat-with-shop button")
    await shopper.wait_for_url(re.compile(r".*/chats/\d+$"))
    conversation_url = shopper.url
    assert PRODUCT in await shopper.locator("#chat-log .msg-card").last.inner_text()
    await shopper.wait_for_selector("#chat[data-state=live]")
    await shopper.fill("#chat-body", QUESTION)
    await shopper.click("#chat-send")
    # Shown at once as pending, then numbered by the server (the ack and the message frame).
    sent = shopper.locator("#chat-log li.msg.mine[data-seq]", has_text="tea lights")
    await sent.wait_for()
    assert await shopper.locator("#chat-log li.pending").count() == 0
    assert await shopper.input_value("#chat-body") == ""
    # A refused message says why next to the box and goes back into it, to be fixed.
    await shopper.fill("#chat-body", OFF_PLATFORM)
    await shopper.click("#chat-send")
    await shopper.wait_for_selector("#chat-error:not([hidden])")
    assert "wechat" in (await shopper.locator("#chat-error").inner_text()).lower()
    assert await shopper.input_value("#chat-body") == OFF_PLATFORM
    assert await shopper.locator("#chat-log li", has_text="cheaper").count() == 0
    await shopper.fill("#chat-body", "")
    # Anything the page did from here on happened without a reload.
    await shopper.evaluate("window.stillTheSamePage = true")

    shop = await (await phone_context()).new_page()
    await password_sign_in(shop, MERCHANTS[0][0])
    await shop.goto("/console")
    await shop.click("main .list a >> nth=0")
    await shop.click("#customer-chats")
    await shop.click("nav.chips a[href$='view=unassigned']")
    await shop.wait_for_url("**view=unassigned")
    row = shop.locator("#inbox-list li", has_text="tea lights")
    assert await row.locator(".count").inner_text() == "2"  # the product card and the question
    await row.locator("a").click()
    await shop.wait_for_url(re.compile(r".*/inbox/\d+$"))
    question = await shop.locator("#chat-log li.msg.theirs").last.inner_text()
    assert QUESTION in question  # the tags are text, not markup
    assert await shop.locator("#chat-log b").count() == 0
    await shop.click("#pick-up button")
    await shop.wait_for_url("**notice=picked")
    assert await shop.locator("#assignee").count() == 1
    await shop.wait_for_selector("#chat[data-state=live]")
    await shop.fill("#chat-body", REPLY)
    await shop.click("#chat-send")
    await shop.locator("#chat-log li.msg.mine[data-seq]", has_text="4.5 cm").wait_for()

    reply = shopper.locator("#chat-log li.msg.theirs", has_text="4.5 cm")
    await reply.wait_for(timeout=10_000)
    assert REPLY in await reply.inner_text()
    assert await shopper.evaluate("window.stillTheSamePage === true")
    # The shopper had the reply on screen: the shop sees it read, also without reloading.
    read = shop.locator("#chat-log li.msg.mine.read", has_text="4.5 cm")
    await read.wait_for(timeout=10_000)
    assert "Read" in await read.locator(".receipt").inner_text()
    # And the shopper's question shows as read by the shop, which opened it.
    assert await shopper.locator("#chat-log li.msg.mine.read", has_text="tea lights").count()

    # The signal drops; the shop writes meanwhile; back online, the shopper catches up.
    signal.clear()
    await sockets[-1].close(code=4000, reason="signal lost")
    await shopper.wait_for_selector("#chat[data-state=offline]")
    await shop.fill("#chat-body", AWAY)
    await shop.click("#chat-send")
    await shop.locator("#chat-log li.msg.mine[data-seq]", has_text=AWAY).wait_for()
    await asyncio.sleep(0.5)  # time enough to arrive, were the shopper connected
    assert await shopper.locator("#chat-log li", has_text=AWAY).count() == 0
    assert await shopper.get_attribute("#chat", "data-state") == "offline"
    # Written while offline: shown pending, sent once the connection is back.
    await shopper.fill("#chat-body", TUNNEL)
    await shopper.click("#chat-send")
    assert await shopper.locator("#chat-log li.pending", has_text=TUNNEL).count() == 1
    signal.set()
    await shopper.locator("#chat-log li.msg.theirs", has_text=AWAY).wait_for(timeout=10_000)
    await shopper.locator("#chat-log li.msg.mine[data-seq]", has_text=TUNNEL).wait_for()
    assert await shopper.locator("#chat-log li.pending").count() == 0
    await shop.locator("#chat-log li.msg.theirs", has_text=TUNNEL).wait_for()
    for page in (shopper, shop):
        seqs = await page.eval_on_selector_all(
            "#chat-log li[data-seq]", "items => items.map(li => Number(li.dataset.seq))"
        )
        assert seqs == [1, 2, 3, 4, 5], seqs  # in order, none missing, none twice
    assert await shopper.evaluate("window.stillTheSamePage === true")

    for page, name in ((shopper, "chat-shopper"), (shop, "chat-shop")):
        assert await no_sideways_scroll(page)
        await page.screenshot(path=str(screenshot_dir() / f"{name}.png"), full_page=True)
    assert shopper.url == conversation_url

    # 4403 (what the person may see changed): the page connects again at once, and catches up.
    await shopper.wait_for_selector("#chat[data-state=live]")
    before = len(sockets)
    await sockets[-1].close(code=4403, reason="access changed")
    for _ in range(100):
        if len(sockets) > before:
            break
        await asyncio.sleep(0.05)
    assert len(sockets) > before, "no reconnect after 4403"
    await shopper.wait_for_selector("#chat[data-state=live]")
    # 4401 (signed out): no more tries, and the page says to sign in again.
    before = len(sockets)
    await sockets[-1].close(code=4401, reason="signed out")
    await shopper.wait_for_selector("#chat[data-state=offline]")
    await shopper.wait_for_selector("#chat-status:not([hidden])")
    await asyncio.sleep(1.5)
    assert len(sockets) == before
    assert await shopper.get_attribute("#chat", "data-state") == "offline"
