"""A phone at a fixed position opens Nearby, taps "Use my location" (the browser's
geolocation, granted), and sees the shop's stores nearest first."""

from __future__ import annotations

import math
from typing import Any

import httpx

from tests.e2e.conftest import PHONE, Server, screenshot_dir
from tests.e2e.test_accounts_flow import no_sideways_scroll, sign_in

OWNER_PHONE = "+8613700137001"  # the demo merchant
DEMO_PASSWORD = "mobimart-demo"
# West Lake, Hangzhou: away from anything else the end-to-end tests place.
HERE = (30.2431, 120.1500)


def _offset(north_m: float, east_m: float) -> tuple[float, float]:
    lat = HERE[0] + math.degrees(north_m / 6_371_008.8)
    lng = HERE[1] + math.degrees(east_m / (6_371_008.8 * math.cos(math.radians(HERE[0]))))
    return round(lat, 6), round(lng, 6)


def _owner(server: Server) -> httpx.Client:
    answer = httpx.post(
        server.url + "/api/v1/auth/password-token",
        json={"phone": OWNER_PHONE, "password": DEMO_PASSWORD},
    )
    assert answer.status_code == 201, answer.text
    token = answer.json()["access_token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


async def test_nearby_lists_stores_by_distance_from_the_phones_position(
    browser: Any, server: Server
) -> None:
    with _owner(server) as api:
        merchant_id = api.get("/api/v1/merchants").json()[0]["id"]
        for name, north, east in (
            ("Lakeside 2 km", 2_000, 0),
            ("Lakeside 300 m", 0, 300),
            ("Lakeside 900 m", -900, 0),
        ):
            lat, lng = _offset(north, east)
            made = api.post(
                f"/api/v1/merchants/{merchant_id}/stores",
                json={"name": name, "lat": lat, "lng": lng},
            )
            assert made.status_code == 201, made.text
        fence = api.post(
            f"/api/v1/merchants/{merchant_id}/geofences",
            json={"name": "Lakeside", "lat": HERE[0], "lng": HERE[1], "radius_m": 500},
        )
        offer = api.post(
            f"/api/v1/merchants/{merchant_id}/offers",
            json={"geofence_id": fence.json()["id"], "title": "Lakeside tea 2 for 1"},
        )
        assert offer.status_code == 201, offer.text

    context = await browser.new_context(
        **PHONE,
        base_url=server.url,
        geolocation={"latitude": HERE[0], "longitude": HERE[1], "accuracy": 10},
    )
    try:
        await context.grant_permissions(["geolocation"], origin=server.url)
        page = await context.new_page()
        await page.goto("/")
        await page.click("#nearby-link")
        await page.wait_for_url("**/nearby")
        await page.get_by_role("button", name="Use my location").tap()
        await page.wait_for_selector("#nearby-stores")
        assert "lat=30.2431" in page.url
        names = [
            n
            for n in await page.locator("#nearby-stores li strong").all_inner_texts()
            if n.startswith("Lakeside")
        ]
        assert names == ["Lakeside 300 m", "Lakeside 900 m", "Lakeside 2 km"]
        distances = await page.locator("#nearby-stores li").evaluate_all(
            "items => items.map(li => Number(li.dataset.distance))"
        )
        assert distances == sorted(distances)
        offers = page.locator("#nearby-offers li", has_text="Lakeside tea 2 for 1")
        assert "You are here" in await offers.inner_text()
        assert await no_sideways_scroll(page)
        await page.screenshot(path=str(screenshot_dir() / "nearby.png"), full_page=True)
    finally:
        await context.close()


async def test_a_signed_in_phone_posts_its_own_position_once(browser: Any, server: Server) -> None:
    """Signed in, "Use my location" posts the browser's fix (with the CSRF token) to record
    entering geofences; the GET that renders the list records nothing by itself."""
    context = await browser.new_context(
        **PHONE,
        base_url=server.url,
        geolocation={"latitude": HERE[0], "longitude": HERE[1], "accuracy": 10},
    )
    try:
        await context.grant_permissions(["geolocation"], origin=server.url)
        page = await context.new_page()
        await sign_in(page, "+8613655007001")
        await page.wait_for_url("**/me")
        await page.goto("/nearby")
        async with page.expect_response("**/nearby/position") as posted:
            await page.get_by_role("button", name="Use my location").tap()
        answer = await posted.value
        assert (answer.request.method, answer.status) == ("POST", 204)
        await page.wait_for_url("**/nearby?*lat=30.2431*")
    finally:
        await context.close()
