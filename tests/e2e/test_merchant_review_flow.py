"""A merchant applies, a platform admin approves, the merchant sees "approved"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import factories
from tests.e2e.conftest import Server, mobimart, screenshot_dir
from tests.e2e.test_accounts_flow import no_sideways_scroll, sign_in

MERCHANT_PHONE = "+8613612346001"
ADMIN_PHONE = "+8613612346999"


async def test_apply_approve_and_see_approved(
    phone_context: Any, server: Server, tmp_path: Path
) -> None:
    mobimart("createadmin", ADMIN_PHONE, env=server.env)
    licence_scan = tmp_path / "licence.png"
    licence_scan.write_bytes(factories.PNG)

    merchant = await (await phone_context()).new_page()
    await sign_in(merchant, MERCHANT_PHONE)
    await merchant.wait_for_url("**/me")
    await merchant.goto("/console")
    await merchant.click("text=Apply to become a merchant")
    await merchant.fill("#name", "Harbour Tea House")
    await merchant.fill("#licence_number", factories.licence(42))
    await merchant.fill("#legal_rep_name", "陈静")
    await merchant.fill("#legal_rep_id_number", "110105194912310021")  # one digit wrong
    await merchant.fill("#contact_phone", "13612346001")
    await merchant.set_input_files("#licence_file", str(licence_scan))
    await merchant.click("text=Submit for review")
    assert "check digit does not match" in await merchant.locator(".error").inner_text()
    assert await merchant.input_value("#name") == "Harbour Tea House"  # nothing typed is lost

    await merchant.fill("#legal_rep_id_number", factories.resident_id(42))
    await merchant.fill("#contact_phone", "13612346001")
    await merchant.set_input_files("#licence_file", str(licence_scan))
    await merchant.click("text=Submit for review")
    await merchant.wait_for_url("**/console/*?notice=submitted")
    assert await merchant.locator("#kyc-status").inner_text() == "Under review"
    assert "136****6001" in await merchant.content()

    admin = await (await phone_context()).new_page()
    await sign_in(admin, ADMIN_PHONE)
    await admin.wait_for_url("**/me")
    await admin.click("nav.tabbar >> text=Review")
    await admin.click("#queue >> text=Harbour Tea House")
    assert (await admin.locator("dl.kv").inner_text()).count(factories.resident_id(42)) == 1
    await admin.click("button[value=reject]")  # no reason given: refused with a message
    assert "Say why" in await admin.locator(".error").inner_text()
    await admin.click("button[value=approve]")
    await admin.wait_for_url("**notice=decided")
    assert "kyc.approve" in await admin.locator("#history").inner_text()

    await merchant.reload()
    assert await merchant.locator("#kyc-status").inner_text() == "Approved"
    assert await no_sideways_scroll(merchant)
    await merchant.screenshot(path=str(screenshot_dir() / "console-approved.png"), full_page=True)
