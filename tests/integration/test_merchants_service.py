import asyncio
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from mobimart.audit.models import AuditEntry
from mobimart.catalog import service as catalog
from mobimart.catalog.view import load_views
from mobimart.db import Database
from mobimart.errors import DomainError
from mobimart.merchants import service as merchants
from mobimart.merchants.domain import Decision, DocumentKind, KycStatus
from mobimart.merchants.models import Merchant
from tests import factories


async def test_application_validates_every_field(db: Database, make_user: Any) -> None:
    owner = await make_user()
    bad = [
        ("licence_number", "91350100M000100Y44", "invalid_licence_number"),
        ("legal_rep_id_number", "110105194912310021", "invalid_id_number"),
        ("contact_phone", "12345", "invalid_phone"),
        ("name", " x ", "invalid_name"),
    ]
    async with db.session() as s:
        for field, value, code in bad:
            app = factories.application()
            with pytest.raises(DomainError) as err:
                await merchants.apply(
                    s,
                    user=owner,
                    application=merchants.Application(**{**app.__dict__, field: value}),
                )
            assert err.value.code == code
        assert (await s.scalars(select(Merchant))).first() is None


async def test_full_review_cycle_with_request_for_more(db: Database, make_user: Any) -> None:
    owner, admin = await make_user(), await make_user(admin=True)
    merchant = await factories.merchant(db, owner, status="pending")
    async with db.session() as s:
        m = await merchants.decide(
            s,
            merchant_id=merchant.id,
            admin=admin,
            decision=Decision.request_info,
            reason="Licence photo is blurred",
        )
        assert m.status == KycStatus.needs_info
        assert m.review_reason == "Licence photo is blurred"
        await merchants.update_application(
            s, merchant=m, user=owner, application=factories.application(2)
        )
        await merchants.submit(s, merchant=m, user=owner)
        m = await merchants.decide(
            s, merchant_id=m.id, admin=admin, decision=Decision.approve, reason=""
        )
        assert m.status == KycStatus.approved
        actions = [e.action for e in await s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == [
        "kyc.created",
        "kyc.submitted",
        "kyc.request_info",
        "kyc.updated",
        "kyc.submitted",
        "kyc.approve",
    ]


async def test_two_admins_deciding_at_once_one_wins(db: Database, make_user: Any) -> None:
    owner = await make_user()
    admins = [await make_user(admin=True) for _ in range(2)]
    merchant = await factories.merchant(db, owner, status="pending")

    async def decide(admin: Any, decision: Decision) -> str:
        async with db.session() as s:
            try:
                await merchants.decide(
                    s, merchant_id=merchant.id, admin=admin, decision=decision, reason="enough said"
                )
                return "ok"
            except DomainError as exc:
                return exc.code

    results = await asyncio.gather(
        decide(admins[0], Decision.approve), decide(admins[1], Decision.reject)
    )
    assert sorted(results) == ["not_pending", "ok"]
    async with db.session() as s:
        decisions = list(
            await s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("kyc.%e%")))
        )
    assert len([a for a in decisions if a in ("kyc.approve", "kyc.reject")]) == 1


async def test_only_approved_merchants_publish(db: Database, make_user: Any) -> None:
    owner, admin = await make_user(), await make_user(admin=True)
    pending = await factories.merchant(db, owner, status="pending", n=1)
    approved = await factories.merchant(db, owner, admin=admin, n=2)
    async with db.session() as s:
        with pytest.raises(DomainError) as err:
            await catalog.create_product(s, merchant=pending, name="Mug", price_minor=900, stock=1)
        assert err.value.code == "merchant_not_approved"
        product = await catalog.create_product(
            s, merchant=approved, name="Mug", price_minor=900, stock=1, publish=True
        )
        assert list(await load_views(s)) == [product.id]  # what shoppers see


async def test_audit_log_is_append_only_in_the_database(db: Database, make_user: Any) -> None:
    owner = await make_user()
    await factories.merchant(db, owner, status="draft")
    for statement in (update(AuditEntry).values(reason="rewritten"), delete(AuditEntry)):
        async with db.session() as s:
            with pytest.raises(DBAPIError, match="append-only"):
                await s.execute(statement)  # the trigger fires on the statement itself
    async with db.session() as s:
        assert (await s.scalar(text("SELECT count(*) FROM audit_log"))) == 1


async def test_personal_numbers_are_encrypted_in_the_table(db: Database, make_user: Any) -> None:
    owner = await make_user()
    merchant = await factories.merchant(db, owner, status="draft")
    async with db.session() as s:
        raw = (
            await s.execute(
                text("SELECT legal_rep_id_number, contact_phone FROM merchants WHERE id = :id"),
                {"id": merchant.id},
            )
        ).one()
        user_raw = await s.scalar(text("SELECT phone FROM users WHERE id = :id"), {"id": owner.id})
    assert factories.resident_id(1) not in raw[0]
    assert "13700000001" not in raw[1]
    assert owner.phone[3:] not in user_raw
    assert raw[0].startswith("t1:")


async def test_invitation_is_accepted_by_the_invitee_only(db: Database, make_user: Any) -> None:
    owner, admin, clerk, other = (
        await make_user(),
        await make_user(admin=True),
        await make_user(),
        await make_user(),
    )
    merchant = await factories.merchant(db, owner, admin=admin)
    async with db.session() as s:
        invitation = await merchants.invite_staff(
            s, merchant=merchant, actor=owner, phone=clerk.phone
        )
        # Inviting a number without an account answers the same: no way to look people up.
        await merchants.invite_staff(s, merchant=merchant, actor=owner, phone="+8613999990000")
        with pytest.raises(DomainError) as err:
            await merchants.invite_staff(s, merchant=merchant, actor=owner, phone=clerk.phone)
        assert err.value.code == "already_invited"
        assert len(await merchants.staff(s, merchant_id=merchant.id)) == 1  # not yet a member

        with pytest.raises(DomainError) as err:
            await merchants.answer_invitation(
                s, user=await s.merge(other), invitation_id=invitation.id, accept=True
            )
        assert err.value.status == 404
        assert [m.id for _, m in await merchants.my_invitations(s, user=clerk)] == [merchant.id]
        joined = await merchants.answer_invitation(
            s, user=await s.merge(clerk), invitation_id=invitation.id, accept=True
        )
        assert joined is not None
        assert joined.id == merchant.id
        team = await merchants.staff(s, merchant_id=merchant.id)
        assert {(u.id, m.role) for m, u in team} == {(owner.id, "owner"), (clerk.id, "staff")}
        with pytest.raises(DomainError) as err:
            await merchants.invite_staff(s, merchant=merchant, actor=owner, phone=clerk.phone)
        assert err.value.code == "already_member"

        owner_member = next(m for m, u in team if u.id == owner.id)
        with pytest.raises(DomainError):
            await merchants.remove_staff(
                s, merchant=merchant, actor=owner, member_id=owner_member.id
            )
        clerk_member = next(m for m, u in team if u.id == clerk.id)
        await merchants.remove_staff(s, merchant=merchant, actor=owner, member_id=clerk_member.id)
        assert len(await merchants.staff(s, merchant_id=merchant.id)) == 1


async def test_two_answers_to_one_invitation_count_once(db: Database, make_user: Any) -> None:
    owner, clerk = await make_user(), await make_user()
    merchant = await factories.merchant(db, owner, status="draft")
    async with db.session() as s:
        invitation = await merchants.invite_staff(
            s, merchant=merchant, actor=owner, phone=clerk.phone
        )

    async def answer(accept: bool) -> str:
        async with db.session() as s:
            try:
                await merchants.answer_invitation(
                    s, user=await s.merge(clerk), invitation_id=invitation.id, accept=accept
                )
                return "ok"
            except DomainError as exc:
                return exc.code

    results = await asyncio.gather(answer(True), answer(False), answer(True))
    assert sorted(results) == ["not_found", "not_found", "ok"]
    async with db.session() as s:
        assert len(await merchants.staff(s, merchant_id=merchant.id)) in (1, 2)
        assert await merchants.invitations(s, merchant_id=merchant.id) == []


async def test_changes_from_a_stale_view_are_refused_after_submission(
    db: Database, make_user: Any
) -> None:
    """Two tabs: one loaded the draft, the other submitted it. The first may not change it."""
    owner = await make_user()
    merchant = await factories.merchant(db, owner, status="draft")
    async with db.session() as first_tab:
        stale = await merchants.get(first_tab, merchant_id=merchant.id)
        assert stale.status == KycStatus.draft
        async with db.session() as second_tab:
            m = await merchants.get(second_tab, merchant_id=merchant.id)
            await merchants.add_document(
                second_tab,
                merchant=m,
                user=await second_tab.merge(owner),
                kind=DocumentKind.business_licence,
                filename="l.png",
                data=factories.PNG,
            )
            await merchants.submit(second_tab, merchant=m, user=await second_tab.merge(owner))
        actor = await first_tab.merge(owner)
        for attempt in (
            merchants.update_application(
                first_tab, merchant=stale, user=actor, application=factories.application(5)
            ),
            merchants.add_document(
                first_tab,
                merchant=stale,
                user=actor,
                kind=DocumentKind.other,
                filename="x.png",
                data=factories.PNG,
            ),
            merchants.submit(first_tab, merchant=stale, user=actor),
        ):
            with pytest.raises(DomainError) as err:
                await attempt
            assert err.value.code == "application_locked"
    async with db.session() as s:
        final = await merchants.get(s, merchant_id=merchant.id)
        assert (final.status, final.name) == (KycStatus.pending, "Test shop 1")
        assert len(await merchants.documents(s, merchant_id=merchant.id)) == 1
