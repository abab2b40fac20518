"""A printed QR code scanned by a phone: the shop makes a code for a product, zbar reads the
address from its PNG as a camera would, a phone-sized Chromium opens it and sees the product
with its picture, and the shop's statistics count one scan from a phone."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode

from tests.e2e.conftest import PHONE, Server, free_port, screenshot_dir, start_server
from tests.e2e.test_accounts_flow import no_sideways_scroll

OWNER_PHONE = "+8613700137001"  # the demo merchant
DEMO_PASSWORD = "mobimart-demo"


@pytest.fixture(scope="module")
def qr_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose base URL is its real address: the codes it draws must lead back to it."""
    port = free_port()
    proc, srv = start_server(
        tmp_path_factory.mktemp("e2e-qr"), port, MOBIMART_BASE_URL=f"http://127.0.0.1:{port}"
    )
    yield srv
    proc.terminate()
    proc.wait(10)


def _owner(server: Server) -> httpx.Client:
    answer = httpx.post(
        server.url + "/api/v1/auth/password-token",
        json={"phone": OWNER_PHONE, "password": DEMO_PASSWORD},
    )
    assert answer.status_code == 201, answer.text
    token = answer.json()["access_token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def _picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (240, 240), (230, 57, 60)).save(out, format="PNG")
    return out.getvalue()


def _wait_for_picture(server: Server, product_id: int) -> None:
    """The catalogue's read model catches up within seconds of the upload."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "/media/" in httpx.get(f"{server.url}/products/{product_id}").text:
            return
        time.sleep(0.3)
    raise TimeoutError("the product page never showed its picture")


async def test_a_phone_scans_a_printed_code_and_sees_the_product(
    browser: Any, qr_server: Server, tmp_path: Path
) -> None:
    with _owner(qr_server) as api:
        merchant_id = api.get("/api/v1/merchants").json()[0]["id"]
        products = api.get(f"/api/v1/merchants/{merchant_id}/products").json()["items"]
        product = next(p for p in products if p["status"] == "published")
        uploaded = api.post(
            f"/api/v1/merchants/{merchant_id}/products/{product['id']}/media",
            files={"file": ("red.png", _picture(), "image/png")},
        )
        assert uploaded.status_code == 201, uploaded.text
        _wait_for_picture(qr_server, product["id"])
        made = api.post(
            f"/api/v1/merchants/{merchant_id}/qr-codes",
            json={"label": "Shelf", "target": {"kind": "product", "id": product["id"]}},
        )
        assert made.status_code == 201, made.text
        code = made.json()
        png = api.get(f"/api/v1/merchants/{merchant_id}/qr-codes/{code['id']}/image")

    (symbol,) = decode(Image.open(io.BytesIO(png.content)), symbols=[ZBarSymbol.QRCODE])
    url = symbol.data.decode()
    assert url == f"{qr_server.url}/q/{code['token']}"

    context = await browser.new_context(**PHONE, locale="en-US")
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector("#landing h1")
        assert await page.locator("#landing h1").inner_text() == product["name"]
        picture = page.locator("#landing .gallery img").first
        await picture.wait_for()
        assert await picture.evaluate("img => img.complete && img.naturalWidth") == 240
        assert await page.locator("#buy").get_attribute("href") == f"/products/{product['id']}"
        assert await page.locator("#add-to-cart button").is_visible()
        assert await no_sideways_scroll(page)
        await page.screenshot(path=str(screenshot_dir() / "qr-landing.png"), full_page=True)
        cookies = {c["name"]: c for c in await context.cookies()}
        assert cookies["mm_vid"]["httpOnly"]
    finally:
        await context.close()

    with _owner(qr_server) as api:
        stats = api.get(f"/api/v1/merchants/{merchant_id}/qr-codes/{code['id']}/stats").json()
    assert stats["total_scans"] == 1
    assert stats["devices"] == {"phone": 1}
    assert stats["by_day"][-1]["scans"] == 1


async def test_the_shop_makes_a_code_in_the_console_and_sees_its_chart(
    browser: Any, qr_server: Server
) -> None:
    from tests.e2e.test_face_to_face import password_sign_in

    context = await browser.new_context(**PHONE, locale="en-US", base_url=qr_server.url)
    try:
        page = await context.new_page()
        await password_sign_in(page, OWNER_PHONE)
        with _owner(qr_server) as api:
            merchant_id = api.get("/api/v1/merchants").json()[0]["id"]
        await page.goto(f"/console/{merchant_id}/qr")
        await page.fill("#new-qr input[name=label]", "Till poster")
        await page.check("#new-qr input[name=kind][value=shop]")
        await page.click("#new-qr button[type=submit]")
        await page.wait_for_url(f"**/console/{merchant_id}/qr/*")
        assert await page.locator("h1").inner_text() == "Till poster"
        assert await page.locator("#qr-preview").is_visible()
        # Chart.js drew the 30 days (the script runs under the site's CSP: no inline code).
        await page.wait_for_selector("#scans-chart[data-drawn='30']")
        assert not await page.locator("#scans-table").get_attribute("open")
        await page.screenshot(path=str(screenshot_dir() / "qr-console.png"), full_page=True)
        assert await no_sideways_scroll(page)
    finally:
        await context.close()
