"""Paying at the counter on phones in Chromium: the shop shows a QR for an amount, the
customer's phone reads it (zbar, as a camera would) and pays from the wallet; then the other
way round, the till charges the payment code the customer's phone shows."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode
from sqlalchemy import select

from mobimart.accounts.models import User
from mobimart.db import Database
from tests import factories
from tests.e2e.conftest import PHONE, Server, free_port, screenshot_dir, start_server
from tests.e2e.test_accounts_flow import no_sideways_scroll

SHOP = "Retrospot Home 红点家居"  # demo merchant
OWNER_PHONE = "+8613700137001"
SHOPPER_PHONE = "+8613800138000"
DEMO_PASSWORD = "mobimart-demo"


@pytest.fixture(scope="module")
def till_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own whose base URL is its real address: the QR codes it draws must
    lead a phone back to it."""
    port = free_port()
    proc, srv = start_server(
        tmp_path_factory.mktemp("e2e-instore"), port, MOBIMART_BASE_URL=f"http://127.0.0.1:{port}"
    )
    yield srv
    proc.terminate()
    proc.wait(10)


@pytest.fixture
async def phone(browser: Any, till_server: Server) -> AsyncIterator[Any]:
    contexts: list[Any] = []

    async def make() -> Any:
        context = await browser.new_context(**PHONE, locale="en-US", base_url=till_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        await context.close()


async def scan(element: Any) -> str:
    """What a phone camera pointed at the element reads: a screenshot decoded by zbar."""
    shot = await element.screenshot()
    found = decode(Image.open(io.BytesIO(shot)), symbols=[ZBarSymbol.QRCODE])
    assert len(found) == 1, found
    return str(found[0].data.decode())


async def password_sign_in(page: Any, phone: str) -> None:
    await page.goto("/signin")
    await page.click("text=Sign in with a password")
    await page.fill("#pw-phone", phone)
    await page.fill("#password", DEMO_PASSWORD)
    await page.click("form[action='/signin/password'] button[type=submit]")
    await page.wait_for_url("**/me")


async def open_till(page: Any) -> int:
    await password_sign_in(page, OWNER_PHONE)
    await page.goto("/console")
    await page.click(f"text={SHOP}")
    await page.wait_for_url(re.compile(r".*/console/\d+$"))
    merchant_id = int(page.url.rsplit("/", 1)[1])
    await page.goto(f"/console/{merchant_id}/collect")
    return merchant_id


_tokens: dict[tuple[str, str], str] = {}


def _api(server: Server, phone: str) -> httpx.Client:
    """An API client signed in as `phone` (one token each: password tries are rate limited)."""
    if (server.url, phone) not in _tokens:
        answer = httpx.post(
            server.url + "/api/v1/auth/password-token",
            json={"phone": phone, "password": DEMO_PASSWORD},
        )
        assert answer.status_code == 201, answer.text
        _tokens[server.url, phone] = answer.json()["access_token"]
    token = _tokens[server.url, phone]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


async def credit_wallet(server: Server, phone: str, amount: int, reference: str) -> None:
    """Money in the shopper's wallet, posted straight to the server's ledger as a top-up."""
    with _api(server, phone) as api:
        user_id = api.get("/api/v1/me").json()["id"]
    database = Database(server.env["MOBIMART_DATABASE_URL"], null_pool=True)
    try:
        async with database.session() as s:
            user = await s.scalar(select(User).where(User.id == user_id))
        assert user is not None
        await factories.credit(database, user, amount, reference)
    finally:
        await database.dispose()


def balances(server: Server, merchant_id: int) -> dict[str, int]:
    with _api(server, OWNER_PHONE) as api:
        return dict(api.get(f"/api/v1/merchants/{merchant_id}/balance").json())


def wallet(server: Server, phone: str) -> int:
    with _api(server, phone) as api:
        return int(api.get("/api/v1/me/wallet").json()["balance_minor"])


async def test_shop_qr_is_scanned_and_paid_from_the_wallet(
    phone: Any, till_server: Server, tmp_path: Path
) -> None:
    await credit_wallet(till_server, SHOPPER_PHONE, 10_000, "e2e:qr")
    start = wallet(till_server, SHOPPER_PHONE)
    till = await phone()
    merchant_id = await open_till(till)
    before = balances(till_server, merchant_id)

    await till.fill("#qr-amount", "23.50")
    await till.fill("#qr-note", "Table 4")
    await till.click("#make-qr")
    await till.wait_for_url("**/collect?c=*")
    assert await till.locator("#collection-waiting").is_visible()
    url = await scan(till.locator("#collection-qr"))
    assert re.fullmatch(re.escape(till_server.url) + r"/pay/c/[A-Za-z0-9_-]{22}", url), url
    await till.screenshot(path=str(screenshot_dir() / "till-qr.png"), full_page=True)

    shopper = await phone()
    await password_sign_in(shopper, SHOPPER_PHONE)
    await shopper.goto(url)
    assert await shopper.locator("#shop-name").inner_text() == SHOP
    assert await shopper.locator("#amount").inner_text() == "¥23.50"
    assert await shopper.locator("#note").inner_text() == "Table 4"
    assert await no_sideways_scroll(shopper)
    button = shopper.locator("#pay-wallet")
    assert await button.inner_text() == "Pay ¥23.50 from wallet"
    await button.click()
    await shopper.wait_for_selector("#paid")
    assert "Paid ¥23.50 to" in await shopper.locator("#paid").inner_text()
    left = start - 2350
    assert await shopper.locator("#balance").inner_text() == f"¥{left // 100:,}.{left % 100:02d}"
    await shopper.screenshot(path=str(screenshot_dir() / "paid-at-counter.png"), full_page=True)

    # The till sees it without a reload, and the money is the shop's, less 5 % commission.
    await till.wait_for_selector("#collection-paid")
    assert await till.locator("#collection-qr").is_hidden()
    after = balances(till_server, merchant_id)
    assert after["available_minor"] - before["available_minor"] == 2350 - 118
    assert after["pending_minor"] == before["pending_minor"]
    assert wallet(till_server, SHOPPER_PHONE) == left


async def test_till_charges_the_code_on_the_shoppers_phone(phone: Any, till_server: Server) -> None:
    await credit_wallet(till_server, SHOPPER_PHONE, 5_000, "e2e:code")
    start = wallet(till_server, SHOPPER_PHONE)
    shopper = await phone()
    await password_sign_in(shopper, SHOPPER_PHONE)
    await shopper.goto("/me/paycode")
    code = await scan(shopper.locator("#paycode-qr"))
    assert re.fullmatch(r"\d{18}", code)
    assert (await shopper.locator("#code").inner_text()).replace(" ", "") == code
    assert await no_sideways_scroll(shopper)
    await shopper.screenshot(path=str(screenshot_dir() / "paycode.png"), full_page=True)

    till = await phone()
    merchant_id = await open_till(till)
    before = balances(till_server, merchant_id)
    await till.fill("#code-amount", "12")
    await till.fill("#code", code)  # a scanner gun types the digits and presses Enter
    await till.press("#code", "Enter")
    await till.wait_for_url("**/collect?charged=*")
    assert await till.locator("#charged").inner_text() == "✓ Charged ¥12.00."

    await shopper.wait_for_selector("#paycode-paid")
    assert f"Paid ¥12.00 to {SHOP}" in await shopper.locator("#paycode-paid").inner_text()
    assert await shopper.locator("#paycode-qr").is_hidden()
    assert wallet(till_server, SHOPPER_PHONE) == start - 1200
    after = balances(till_server, merchant_id)
    assert after["available_minor"] - before["available_minor"] == 1200 - 60

    # The same code again: refused, and the customer's code is not echoed back.
    await till.fill("#code-amount", "12")
    await till.fill("#code", code)
    await till.click("#charge")
    assert "used already" in await till.locator(".error").inner_text()
    assert await till.input_value("#code") == ""
