"""Chat pages: the consumer's chats and the merchant's inbox render the history, work as plain
forms (send, photo, pick up, pass on), show unread counts and read receipts, and are 404 for
anyone outside the conversation, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.catalog import service as catalog
from mobimart.db import Database
from mobimart.infra.pubsub import LocalBroker
from mobimart.moderation import service as moderation
from mobimart.notifications import service as notifications
from mobimart.social import chat
from mobimart.social.models import Conversation
from mobimart.web.deps import SESSION_COOKIE
from tests import factories

CSRF = "c" * 43


@dataclass
class World:
    app: Any
    db: Database
    users: dict[str, User]
    merchant_a: int
    merchant_b: int
    shop_a: int
    product: int

    async def client(self, role: str) -> httpx.AsyncClient:
        cookies = {"mm_csrf": CSRF}
        if role != "anonymous":
            async with self.db.session() as s:
                user = await s.get(User, self.users[role].id)
                assert user is not None
                token, _ = await accounts.issue_token(s, user=user, kind="session")
            cookies[SESSION_COOKIE] = token
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://t", cookies=cookies)


@pytest.fixture
async def world(app: Any, db: Database, make_user: Any) -> World:
    names = ["consumer", "other", "owner_a", "staff_a", "owner_b", "admin"]
    users = {
        n: await make_user(admin=n == "admin", name=n.replace("_", " ").title()) for n in names
    }
    a = await factories.merchant(db, users["owner_a"], admin=users["admin"], n=1)
    b = await factories.merchant(db, users["owner_b"], admin=users["admin"], n=2)
    await factories.add_staff(db, a, users["owner_a"], users["staff_a"])
    async with db.session() as s:
        product = await catalog.create_product(
            s, merchant=a, name="Teapot", price_minor=1999, stock=3, publish=True
        )
    return World(app, db, users, a.id, b.id, product.shop_id, product.id)


async def _start(w: World, c: httpx.AsyncClient, **fields: int) -> int:
    response = await c.post(
        "/chats/start", data={"csrf_token": CSRF, "shop_id": w.shop_a, **fields}
    )
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/chats/(\d+)", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


async def _say(w: World, role: str, conversation_id: int, body: str) -> None:
    async with w.db.session() as s:
        user = await s.get(User, w.users[role].id)
        assert user is not None
        await chat.send(
            s, user=user, conversation_id=conversation_id, body=body, broker=LocalBroker()
        )


def _thread(html: str) -> str:
    start = html.index('id="chat-log"')
    return html[start : html.index("</ol>", start)]


async def test_start_from_a_product_page_puts_its_card_in_the_thread(world: World) -> None:
    async with await world.client("consumer") as c:
        product_page = await c.get(f"/products/{world.product}")
        assert 'id="chat-with-shop"' in product_page.text
        assert f'name="shop_id" value="{world.shop_a}"' in product_page.text
        conversation_id = await _start(world, c, product_id=world.product)
        page = await c.get(f"/chats/{conversation_id}")
        assert page.status_code == 200
        thread = _thread(page.text)
        assert 'class="msg-card"' in thread
        assert f'href="/products/{world.product}"' in thread
        assert "Teapot" in thread
        assert "19.99" in thread
        # Starting again from the same product opens the same thread without a second card.
        assert await _start(world, c, product_id=world.product) == conversation_id
        again = _thread((await c.get(f"/chats/{conversation_id}")).text)
        assert again.count('class="msg-card"') == 1
    async with await world.client("anonymous") as anonymous:
        product_page = await anonymous.get(f"/products/{world.product}")
        assert f'href="/signin?next=/products/{world.product}"' in product_page.text


async def test_history_renders_escaped_on_both_sides_and_nobody_else_sees_it(
    world: World,
) -> None:
    async with await world.client("consumer") as c:
        conversation_id = await _start(world, c)
    await _say(world, "consumer", conversation_id, "Is it <script>alert(1)</script> glass?")
    await _say(world, "staff_a", conversation_id, "Porcelain, and it ships today.")

    async with await world.client("consumer") as c:
        thread = _thread((await c.get(f"/chats/{conversation_id}")).text)
    assert "<script>alert" not in thread
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thread
    assert re.search(r'class="msg mine[^"]*" id="m-1"', thread)
    assert re.search(r'class="msg theirs" id="m-2"', thread)
    assert thread.index("glass?") < thread.index("Porcelain")

    inbox_page = f"/console/{world.merchant_a}/inbox/{conversation_id}"
    async with await world.client("owner_a") as c:
        page = await c.get(inbox_page)
        assert page.status_code == 200
        thread = _thread(page.text)
        assert re.search(r'class="msg theirs" id="m-1"', thread)
        assert re.search(r'class="msg mine[^"]*" id="m-2"', thread)
        # The consumer read the shop's reply when the page opened: the shop sees the receipt.
        assert re.search(r'id="m-2"[^>]*>.*?<span class="receipt">Read</span>', thread, re.S)
        # The consumer's page of it is the consumer's only.
        assert (await c.get(f"/chats/{conversation_id}")).status_code == 404

    for role in ("other", "owner_b", "admin"):
        async with await world.client(role) as c:
            assert (await c.get(f"/chats/{conversation_id}")).status_code == 404, role
            assert (await c.get(inbox_page)).status_code == 404, role
            posted = await c.post(
                f"/chats/{conversation_id}", data={"csrf_token": CSRF, "body": "hi"}
            )
            assert posted.status_code == 404, role
    async with await world.client("owner_b") as c:
        # Through their own merchant's path, another merchant's conversation is still not there.
        own_path = f"/console/{world.merchant_b}/inbox/{conversation_id}"
        assert (await c.get(own_path)).status_code == 404
        assert conversation_id not in await _listed(c, f"/console/{world.merchant_b}/inbox")
    async with await world.client("other") as c:
        assert conversation_id not in await _listed(c, "/chats")


async def _listed(c: httpx.AsyncClient, path: str) -> set[int]:
    page = await c.get(path)
    assert page.status_code == 200
    return {int(i) for i in re.findall(r'href="[^"]*/(?:chats|inbox)/(\d+)"', page.text)}


async def test_plain_form_sends_and_a_refused_message_keeps_the_text(world: World) -> None:
    async with world.db.session() as s:
        await moderation.add_word(s, word="scam", admin_id=world.users["admin"].id)
        await s.commit()
    async with await world.client("consumer") as c:
        conversation_id = await _start(world, c)
        page = (await c.get(f"/chats/{conversation_id}")).text
        client_id = re.search(r'name="client_id" value="([^"]+)"', page)
        assert client_id
        form = {"csrf_token": CSRF, "body": "Hello shop", "client_id": client_id.group(1)}
        sent = await c.post(f"/chats/{conversation_id}", data=form)
        assert sent.status_code == 303
        assert sent.headers["location"] == f"/chats/{conversation_id}#end"
        # The same form sent twice (a double tap) is one message.
        assert (await c.post(f"/chats/{conversation_id}", data=form)).status_code == 303
        thread = _thread((await c.get(f"/chats/{conversation_id}")).text)
        assert thread.count("Hello shop") == 1

        refused = await c.post(
            f"/chats/{conversation_id}",
            data={"csrf_token": CSRF, "body": "is this a SCAM?"},
        )
        assert refused.status_code == 422
        error = re.search(r'id="chat-error" role="alert">([^<]+)<', refused.text)
        assert error
        assert "scam" in error.group(1).lower()
        assert ">is this a SCAM?</textarea>" in refused.text

        forged = await c.post(
            f"/chats/{conversation_id}", data={"csrf_token": "x" * 43, "body": "hi"}
        )
        assert forged.status_code == 403
    async with world.db.session() as s:
        conversation = await s.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.last_seq == 1


async def test_unread_counts_pick_up_and_pass_on(world: World) -> None:
    async with await world.client("consumer") as c:
        conversation_id = await _start(world, c)
    await _say(world, "consumer", conversation_id, "First")
    await _say(world, "consumer", conversation_id, "Second")
    inbox = f"/console/{world.merchant_a}/inbox"
    thread = f"{inbox}/{conversation_id}"
    async with await world.client("staff_a") as staff:
        listed = (await staff.get(inbox + "?view=unassigned")).text
        assert re.search(r'<span class="count"[^>]*>2</span>', listed)
        page = await staff.get(thread)
        assert 'id="pick-up"' in page.text
        picked = await staff.post(thread + "/pick-up", data={"csrf_token": CSRF})
        assert picked.status_code == 303
        page = await staff.get(picked.headers["location"])
        assert 'id="assignee"' in page.text
        assert 'id="pick-up"' not in page.text
        assert conversation_id in await _listed(staff, inbox + "?view=mine")
        assert conversation_id not in await _listed(staff, inbox + "?view=unassigned")
        # Opening the thread read it: no unread count left in the list.
        assert '<span class="count"' not in (await staff.get(inbox)).text

        sent = await staff.post(thread, data={"csrf_token": CSRF, "body": "How can I help?"})
        assert sent.status_code == 303
    async with await world.client("consumer") as c:
        listed = (await c.get("/chats")).text
        assert re.search(r'<span class="count"[^>]*>1</span>', listed)
        assert "How can I help?" in listed

    async with await world.client("owner_a") as owner:
        # Handled by a colleague: the owner may still pass it on, to themself here.
        page = (await owner.get(thread)).text
        assert "Handled by Staff A" in page
        passed = await owner.post(
            thread + "/transfer",
            data={"csrf_token": CSRF, "to_user_id": world.users["owner_a"].id},
        )
        assert passed.status_code == 303
    async with await world.client("staff_a") as staff:
        page = await staff.get(thread)
        assert "Handled by Owner A" in page.text
        assert 'id="read-only"' in page.text
        assert 'id="chat-form"' not in page.text
        refused = await staff.post(thread, data={"csrf_token": CSRF, "body": "Me again"})
        assert refused.status_code == 409
        assert "Picked up by Owner A" in refused.text

    staff_id = world.users["staff_a"].id
    async with await world.client("owner_a") as owner:
        passed = await owner.post(
            thread + "/transfer", data={"csrf_token": CSRF, "to_user_id": staff_id}
        )
        assert passed.status_code == 303
    async with world.db.session() as s:
        assert await notifications.unread_count(s, user_id=staff_id) == 1
    async with await world.client("staff_a") as staff:
        # Nothing new in the thread, but opening it reads the line saying it was passed on.
        page = await staff.get(thread)
        assert 'id="unread-badge"' not in page.text
        assert 'id="chat-form"' in page.text
    async with world.db.session() as s:
        assert await notifications.unread_count(s, user_id=staff_id) == 0


async def _order(w: World) -> int:
    """An unpaid order of the consumer's at shop A."""
    from mobimart.checkout import service as checkout

    async with w.db.session() as s:
        buyer = await s.get(User, w.users["consumer"].id)
        assert buyer is not None
        variant = (await catalog.variants_of(s, product_id=w.product))[0]
        address = await checkout.add_address(
            s,
            user=buyer,
            spec=checkout.AddressSpec("Han", "+8613912345678", "Shanghai", "1 Road"),
        )
        cart = await checkout.cart_of(s, user_id=buyer.id)
        await checkout.put(s, cart=cart, variant_id=variant.id, quantity=1)
        (order,) = await checkout.place(s, user=buyer, address_id=address.id)
        return order.id


async def test_order_page_chat_and_photos(world: World) -> None:
    order_id = await _order(world)
    async with await world.client("consumer") as c:
        order_page = (await c.get(f"/orders/{order_id}")).text
        assert 'id="chat-with-shop"' in order_page
        assert f'name="order_id" value="{order_id}"' in order_page
        conversation_id = await _start(world, c, order_id=order_id)
        thread = _thread((await c.get(f"/chats/{conversation_id}")).text)
        assert f'href="/orders/{order_id}"' in thread

        sent = await c.post(
            f"/chats/{conversation_id}/images",
            data={"csrf_token": CSRF},
            files={"image": ("p.png", factories.PNG, "image/png")},
        )
        assert sent.status_code == 303, sent.text
        thread = _thread((await c.get(f"/chats/{conversation_id}")).text)
        image = re.search(r'<img src="(/chats/\d+/images/\d+)"', thread)
        assert image
        shown = await c.get(image.group(1))
        assert shown.status_code == 200
        assert shown.headers["content-type"] == "image/png"
        assert shown.content == factories.PNG
        not_an_image = await c.post(
            f"/chats/{conversation_id}/images",
            data={"csrf_token": CSRF},
            files={"image": ("p.png", b"<html>", "image/png")},
        )
        assert not_an_image.status_code == 415
        assert re.search(r'id="chat-error" role="alert">[^<]+<', not_an_image.text)
    async with await world.client("staff_a") as staff:
        # The shop's copy of the order card opens the console's order page.
        page = (await staff.get(f"/console/{world.merchant_a}/inbox/{conversation_id}")).text
        assert f'href="/console/{world.merchant_a}/orders/{order_id}"' in page
        assert (await staff.get(image.group(1))).status_code == 200
    async with await world.client("other") as other:
        assert (await other.get(image.group(1))).status_code == 404


async def test_an_offline_consumer_is_notified_and_opening_the_chat_reads_it(
    world: World,
) -> None:
    async with await world.client("consumer") as c:
        conversation_id = await _start(world, c)
    await _say(world, "staff_a", conversation_id, "Your teapot is ready")
    consumer_id = world.users["consumer"].id
    async with world.db.session() as s:
        assert await notifications.unread_count(s, user_id=consumer_id) == 1
    async with await world.client("consumer") as c:
        page = await c.get(f"/chats/{conversation_id}")
        # The badge on this very page already counts the chat's notification as read.
        assert 'id="unread-badge"' not in page.text
    async with world.db.session() as s:
        assert await notifications.unread_count(s, user_id=consumer_id) == 0


async def test_a_thread_under_another_merchants_console_is_404_and_reads_nothing(
    world: World,
) -> None:
    """Someone on the staff of two merchants opens merchant A's chat under merchant B's
    console: 404, and the shop's read position does not move (checked before reading)."""
    from mobimart.merchants.models import Merchant

    async with world.db.session() as s:
        merchant_b = await s.get(Merchant, world.merchant_b)
        assert merchant_b is not None
    await factories.add_staff(world.db, merchant_b, world.users["owner_b"], world.users["staff_a"])
    async with await world.client("consumer") as c:
        conversation_id = await _start(world, c)
    await _say(world, "consumer", conversation_id, "Anyone there?")
    async with await world.client("staff_a") as staff:
        wrong = await staff.get(f"/console/{world.merchant_b}/inbox/{conversation_id}")
        assert wrong.status_code == 404
    async with world.db.session() as s:
        conversation = await s.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.shop_read_seq == 0
        assert conversation.last_seq == 1
    async with await world.client("staff_a") as staff:
        right = await staff.get(f"/console/{world.merchant_a}/inbox/{conversation_id}")
        assert right.status_code == 200
    async with world.db.session() as s:
        conversation = await s.get(Conversation, conversation_id)
        assert conversation is not None
        assert conversation.shop_read_seq == conversation.last_seq
