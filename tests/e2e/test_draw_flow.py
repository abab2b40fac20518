"""A QR campaign with a lucky draw end to end on phones in Chromium: the demo merchant makes
a draw in the console with one coupon prize (chance 100 %, from an ended coupon kept only as
a prize) and a dynamic QR code of a campaign that opens it; the PNG is decoded by zbar; a
shopper's phone opens the decoded address, signs in, enters (the entry is credited to the
campaign), wins the coupon and uses it at checkout, where the total drops by the coupon's
amount. The public verify page then recomputes the entry from the revealed seed."""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode

from tests.e2e.conftest import PHONE, Server, free_port, screenshot_dir, start_server
from tests.e2e.test_accounts_flow import no_sideways_scroll, sign_in
from tests.e2e.test_face_to_face import DEMO_PASSWORD, OWNER_PHONE, SHOP, password_sign_in
from tests.e2e.test_order_flow import PRODUCT, _yuan


@pytest.fixture(scope="module")
def draw_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose base URL is its real address: the QR code it draws must lead the
    phone back to it."""
    port = free_port()
    proc, srv = start_server(
        tmp_path_factory.mktemp("e2e-draw"), port, MOBIMART_BASE_URL=f"http://127.0.0.1:{port}"
    )
    yield srv
    proc.terminate()
    proc.wait(10)


@pytest.fixture
async def phone(browser: Any, draw_server: Server) -> AsyncIterator[Any]:
    contexts: list[Any] = []

    async def make() -> Any:
        context = await browser.new_context(**PHONE, locale="en-US", base_url=draw_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


def _owner(server: Server) -> dict[str, str]:
    token = httpx.post(
        server.url + "/api/v1/auth/password-token",
        json={"phone": OWNER_PHONE, "password": DEMO_PASSWORD},
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _coupon(server: Server, merchant_id: int) -> tuple[str, str]:
    """A plain ¥5-off coupon of the demo shop's, made through the API and ended at once: a
    prize template whose own code redeems nothing. (name, code)."""
    headers = _owner(server)
    code = "DRAW" + secrets.token_hex(3).upper()
    made = httpx.post(
        f"{server.url}/api/v1/merchants/{merchant_id}/promotions",
        json={"name": "Draw five", "kind": "fixed", "scope": "order", "value": 500, "code": code},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    ended = httpx.post(
        f"{server.url}/api/v1/merchants/{merchant_id}/promotions/{made.json()['id']}/end",
        headers=headers,
    )
    assert ended.status_code == 200, ended.text
    return "Draw five", code


def _campaign(server: Server, merchant_id: int) -> int:
    """The QR campaign the poster belongs to (a draft: a QR campaign sends nothing)."""
    made = httpx.post(
        f"{server.url}/api/v1/merchants/{merchant_id}/campaigns",
        json={"name": "Grand opening posters", "channel": "inbox", "template": "Lucky draw!"},
        headers=_owner(server),
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _events(server: Server, kind: str, subject_id: int) -> list[int | None]:
    """The campaign ids of the server's marketing events of a kind about a subject."""
    path = server.env["MOBIMART_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT campaign_id FROM marketing_events WHERE kind = ? AND subject_id = ?",
            (kind, subject_id),
        ).fetchall()
    return [row[0] for row in rows]


async def test_qr_draw_win_a_coupon_and_use_it(phone: Any, draw_server: Server) -> None:
    shots = screenshot_dir()
    merchant = await phone()
    await password_sign_in(merchant, OWNER_PHONE)
    await merchant.goto("/console")
    await merchant.click(f"text={SHOP}")
    await merchant.wait_for_url(re.compile(r".*/console/\d+$"))
    merchant_id = int(merchant.url.rsplit("/", 1)[1])
    coupon_name, base_code = _coupon(draw_server, merchant_id)
    campaign_id = _campaign(draw_server, merchant_id)

    # The draw: one coupon prize that every entry wins.
    await merchant.goto(f"/console/{merchant_id}/draws")
    await merchant.fill("#draw-name", "Grand opening draw")
    await merchant.fill("#prize_name-0", "¥5 off your order")
    await merchant.select_option("#prize_kind-0", "coupon")
    await merchant.fill("#prize_chance-0", "100")
    await merchant.fill("#prize_quantity-0", "50")
    await merchant.select_option("#prize_coupon-0", label=f"{coupon_name} ({base_code})")
    await merchant.click("#create-draw")
    await merchant.wait_for_url(re.compile(r".*/draws/\d+\?notice=created"))
    draw_id = int(re.findall(r"/draws/(\d+)", merchant.url)[0])
    seed_hash = (await merchant.locator("#draw-summary code.hash").inner_text()).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", seed_hash)
    await merchant.screenshot(path=str(shots / "draw-console.png"), full_page=True)

    # A dynamic QR code of the campaign that opens the draw; its PNG read by zbar, as a
    # phone camera would.
    await merchant.goto(f"/console/{merchant_id}/qr")
    await merchant.fill("#new-qr input[name=label]", "Door poster: draw")
    await merchant.check("#new-qr input[name=dynamic]")
    await merchant.check("#new-qr input[name=kind][value=draw]")
    await merchant.select_option("#new-qr select[name=draw_id]", str(draw_id))
    await merchant.select_option("#new-qr select[name=campaign_id]", str(campaign_id))
    await merchant.click("#new-qr button[type=submit]")
    await merchant.wait_for_url(re.compile(r".*/qr/\d+"))
    qr_id = int(re.findall(r"/qr/(\d+)", merchant.url)[0])
    png = await merchant.context.request.get(merchant.url.split("?")[0] + "/image?format=png")
    assert png.ok
    assert png.headers["content-type"] == "image/png"
    found = decode(Image.open(io.BytesIO(await png.body())), symbols=[ZBarSymbol.QRCODE])
    assert len(found) == 1, found
    address = found[0].data.decode()
    assert address.startswith(draw_server.url + "/q/"), address

    # The shopper scans: the landing leads to the draw, which asks them to sign in first.
    shopper = await phone()
    await shopper.goto(address)
    await shopper.wait_for_url(re.compile(rf".*/draws/{draw_id}\?src=qr&qr=[\w-]+$"))
    assert (await shopper.locator("#seed-hash").inner_text()).strip() == seed_hash
    await shopper.click("#enter")
    await shopper.wait_for_url("**/signin?next=**")
    number = f"+86139{secrets.randbelow(10**8):08d}"
    await sign_in(shopper, number, already_there=True)
    await shopper.wait_for_url(re.compile(rf".*/draws/{draw_id}\?src=qr&qr=[\w-]+$"))
    await shopper.click("#enter")
    await shopper.wait_for_url(re.compile(rf".*/draws/{draw_id}/entries/\d+$"))
    code = (await shopper.locator("#coupon-code").inner_text()).strip()
    assert re.fullmatch(r"[A-Z2-9]{12}", code)
    assert await no_sideways_scroll(shopper)
    await shopper.screenshot(path=str(shots / "draw-won.png"), full_page=True)
    entry_url = shopper.url
    # The scan and the entry are both the campaign's (the report's funnel counts them).
    assert _events(draw_server, "qr_scan", qr_id) == [campaign_id]
    assert _events(draw_server, "draw_entry", draw_id) == [campaign_id]

    # Use it: a product in the cart, then the result's "Use it" link applies the code.
    await shopper.goto("/search?q=" + PRODUCT.replace(" ", "+"))
    await shopper.click(f"#products a:has-text('{PRODUCT}')")
    await shopper.wait_for_url("**/products/*")
    await shopper.click("#add-to-cart button")
    await shopper.wait_for_url("**/cart?notice=added")
    before = _yuan(await shopper.locator("#cart-total").inner_text())
    await shopper.goto(entry_url)
    await shopper.click("#use-coupon")
    await shopper.wait_for_url(f"**/cart?code={code}")
    assert _yuan(await shopper.locator("#cart-total").inner_text()) == before - 500
    await shopper.click("#checkout")
    await shopper.wait_for_url("**/checkout?code=*")
    await shopper.fill("#recipient", "韩梅梅")
    await shopper.fill("#a-phone", "13912345678")
    await shopper.fill("#region", "上海市 徐汇区")
    await shopper.fill("#detail", "漕溪北路 1 号")
    await shopper.click("#new-address button")
    await shopper.wait_for_url("**/checkout?notice=address*")
    assert _yuan(await shopper.locator("#checkout-total").inner_text()) == before - 500
    await shopper.click("#place button[type=submit]")
    await shopper.wait_for_url("**/pay?order=*")
    await shopper.screenshot(path=str(shots / "draw-coupon-used.png"), full_page=True)

    # The merchant closes the draw; anyone can recompute the entry from the revealed seed.
    await merchant.goto(f"/console/{merchant_id}/draws/{draw_id}")
    assert "1 entry" in await merchant.locator("#entry-count").inner_text()
    await merchant.click("#close-draw")
    await merchant.wait_for_url("**notice=closed")
    entry_id = int(entry_url.rsplit("/", 1)[1])
    await shopper.goto(f"/draws/{draw_id}/verify?entry={entry_id}")
    seed = (await shopper.locator("#seed-value").inner_text()).strip()
    assert hashlib.sha256(seed.encode()).hexdigest() == seed_hash
    mac = hmac.new(seed.encode(), f"{draw_id}:{entry_id}".encode(), hashlib.sha256)
    roll = int(mac.hexdigest(), 16) % 1_000_000
    row = await shopper.locator("#entries tbody tr", has_text=str(roll)).inner_text()
    assert str(entry_id) in row
    assert "They match." in await shopper.locator("#check-verdict").inner_text()
    assert await no_sideways_scroll(shopper)
    await shopper.screenshot(path=str(shots / "draw-verify.png"), full_page=True)
