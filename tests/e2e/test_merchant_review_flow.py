"""A merchant applies, a platform admin approves, the merchant sees "approved"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import factories
from tests.e2e.conftest import Server, mobimart, screenshot_dir
from tests.e2e.test_accounts_flow import sign_in

MERCHANT_PHONE = "+8613612346001"
ADMIN_PHONE = "+8613612346999"


def test_apply_approve_and_see_approved(
    phone_context: Any, server: Server, tmp_path: Path
) -> None:
    mobimart("createadmin", ADMIN_PHONE, env=server.env)
    licence_scan = tmp_path / "licence.png"
    licence_scan.write_bytes(factories.PNG)

    merchant = phone_context().new_page()
    sign_in(merchant, MERCHANT_PHONE)
    merchant.wait_for_url("**/me")
    merchant.goto("/console")
    merchant.click("text=Apply to become a merchant")
    merchant.fill("#name", "Harbour Tea House")
    merchant.fill("#licence_number", factories.licence(42))
    merchant.fill("#legal_rep_name", "陈静")
    merchant.fill("#legal_rep_id_number", "110105194912310021")  # one digit wrong
    merchant.fill("#contact_phone", "13612346001")
    merchant.set_input_files("#licence_file", str(licence_scan))
    merchant.click("text=Submit for review")
    assert "check digit does not match" in merchant.locator(".error").inner_text()
    assert merchant.input_value("#name") == "Harbour Tea House"  # nothing typed is lost

    merchant.fill("#legal_rep_id_number", factories.resident_id(42))
    merchant.fill("#contact_phone", "13612346001")
    merchant.set_input_files("#licence_file", str(licence_scan))
    merchant.click("text=Submit for review")
    merchant.wait_for_url("**/console/*?notice=submitted")
    assert merchant.locator("#kyc-status").inner_text() == "Under review"
    assert "136****6001" in merchant.content()

    admin = phone_context().new_page()
    sign_in(admin, ADMIN_PHONE)
    admin.wait_for_url("**/me")
    admin.click("nav.tabbar >> text=Review")
    admin.click("#queue >> text=Harbour Tea House")
    assert admin.locator("dl.kv").inner_text().count(factories.resident_id(42)) == 1
    admin.click("button[value=reject]")  # no reason given: refused with a message
    assert "Say why" in admin.locator(".error").inner_text()
    admin.click("button[value=approve]")
    admin.wait_for_url("**notice=decided")
    assert "kyc.approve" in admin.locator("#history").inner_text()

    merchant.reload()
    assert merchant.locator("#kyc-status").inner_text() == "Approved"
    assert merchant.evaluate("document.documentElement.scrollWidth") <= 360
    merchant.screenshot(path=str(screenshot_dir() / "console-approved.png"), full_page=True)
