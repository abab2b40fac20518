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
    await admin.click("nav.tabbar >> text=Admin")
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


async def test_owner_invites_and_staff_accepts(phone_context: Any, server: Server) -> None:
    """The demo merchant owner invites a number; its owner signs up and accepts under Sell."""
    owner = await (await phone_context()).new_page()
    await owner.goto("/signin")
    await owner.click("text=Sign in with a password")
    await owner.fill("#pw-phone", "+8613700137001")
    await owner.fill("#password", "mobimart-demo")
    await owner.click("form[action='/signin/password'] button[type=submit]")
    await owner.wait_for_url("**/me")
    await owner.goto("/console")
    await owner.click("text=Retrospot Home 红点家居")
    await owner.fill("#staff-phone", "136 1234 7001")
    await owner.click("form[action$='/invitations'] button[type=submit]")
    await owner.wait_for_url("**notice=invited")
    assert "136****7001" in await owner.locator("#pending-invitations").inner_text()

    clerk = await (await phone_context(locale="zh-CN")).new_page()
    await sign_in(clerk, "+8613612347001")
    await clerk.wait_for_url("**/me")
    await clerk.click("nav.tabbar >> text=开店")
    invitation = clerk.locator("#invitations")
    assert "Retrospot Home 红点家居 邀请您加入团队" in await invitation.inner_text()
    await clerk.screenshot(path=str(screenshot_dir() / "invitation-zh.png"))
    await invitation.locator("text=接受").click()
    await clerk.wait_for_url("**notice=joined")
    team = await clerk.locator("#team").inner_text()
    assert "136****7001" in team
    assert "137****7001" in team
    assert "13612347001" not in await clerk.content()
    assert await no_sideways_scroll(clerk)

    await owner.reload()
    assert await owner.locator("#pending-invitations").count() == 0
    assert "136****7001" in await owner.locator("#team").inner_text()
