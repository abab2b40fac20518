import json
from typing import Any

import pytest
from sqlalchemy import select, text

from mobimart.accounts import privacy
from mobimart.accounts import service as accounts
from mobimart.accounts.domain import Channel
from mobimart.accounts.models import AuthToken, Consent, User
from mobimart.db import Database
from mobimart.errors import DomainError, Unauthorized
from tests import factories


async def test_consent_history_newest_wins(db: Database, make_user: Any) -> None:
    user = await make_user()
    async with db.session() as s:
        assert not await privacy.has_consent(s, user_id=user.id, channel=Channel.sms)
        await privacy.set_consent(
            s, user_id=user.id, channel=Channel.sms, granted=True, source="signup"
        )
        await privacy.set_consent(
            s, user_id=user.id, channel=Channel.push, granted=True, source="api"
        )
        await privacy.set_consent(
            s, user_id=user.id, channel=Channel.sms, granted=False, source="sms_stop"
        )
        current = await privacy.current_consents(s, user_id=user.id)
        assert not await privacy.has_consent(s, user_id=user.id, channel=Channel.sms)
        assert await privacy.has_consent(s, user_id=user.id, channel=Channel.push)
        history = list(await s.scalars(select(Consent).where(Consent.user_id == user.id)))
    assert current["sms"] is not None
    assert current["sms"].source == "sms_stop"
    assert current["in_app"] is None
    assert len(history) == 3  # history kept, with source and time


async def test_real_name_verification(db: Database, make_user: Any) -> None:
    a, b = await make_user(), await make_user()
    async with db.session() as s:
        a = await s.merge(a)
        with pytest.raises(DomainError) as err:
            await privacy.verify_real_name(s, user=a, name="韩梅梅", id_number="110105194912310021")
        assert err.value.code == "invalid_id_number"
        await privacy.verify_real_name(
            s, user=a, name=" 韩  梅梅 ", id_number=factories.resident_id(7)
        )
        assert a.realname_verified_at is not None
        assert a.real_name == "韩 梅梅"
        b = await s.merge(b)
        with pytest.raises(DomainError) as err:
            await privacy.verify_real_name(
                s, user=b, name="Someone", id_number=factories.resident_id(7)
            )
        assert err.value.code == "id_number_in_use"


def test_realname_threshold_setting() -> None:
    assert not privacy.realname_required(100_000)
    assert privacy.realname_required(100_001)


async def test_export_contains_everything_about_the_person(db: Database, make_user: Any) -> None:
    owner, admin = await make_user(name="Ann"), await make_user(admin=True)
    await factories.merchant(db, owner, admin=admin)
    async with db.session() as s:
        user = await s.get(User, owner.id)
        assert user is not None
        await privacy.set_consent(
            s, user_id=user.id, channel=Channel.sms, granted=True, source="signup"
        )
        await accounts.issue_token(s, user=user, kind="api", label="phone")
        data = await privacy.export_data(s, user=user)
    json.dumps(data)  # serialisable as the download is
    assert data["account"]["phone"] == owner.phone
    assert data["consents"][0]["source"] == "signup"
    assert data["sign_ins"][0]["label"] == "phone"
    assert data["merchants"]["memberships"][0]["role"] == "owner"


async def test_an_owner_cannot_delete_the_account_and_orphan_the_shop(
    db: Database, make_user: Any
) -> None:
    owner, admin = await make_user(), await make_user(admin=True)
    await factories.merchant(db, owner, admin=admin)
    async with db.session() as s:
        with pytest.raises(DomainError) as err:
            await privacy.delete_account(s, user=await s.merge(owner))
        assert err.value.code == "owner_of_merchant"
        stored = await s.get(User, owner.id)
        assert stored is not None
        assert stored.phone == owner.phone


async def test_deletion_withdraws_unapproved_applications_and_their_files(
    db: Database, make_user: Any, tmp_path: Any
) -> None:
    from mobimart.merchants import service as merchants

    owner = await make_user()
    merchant = await factories.merchant(db, owner, status="pending")
    files = merchants.document_store().root
    assert len([p for p in files.rglob("*") if p.is_file()]) == 1
    async with db.session() as s:
        await privacy.delete_account(s, user=await s.merge(owner))
    async with db.session() as s:
        assert await s.get(merchants.Merchant, merchant.id) is None
        assert await merchants.documents(s, merchant_id=merchant.id) == []
    assert [p for p in files.rglob("*") if p.is_file()] == []


async def test_deletion_erases_invitations_to_the_number(db: Database, make_user: Any) -> None:
    from mobimart.merchants import service as merchants

    owner, invitee = await make_user(), await make_user()
    merchant = await factories.merchant(db, owner, status="draft")
    async with db.session() as s:
        await merchants.invite_staff(s, merchant=merchant, actor=owner, phone=invitee.phone)
        await privacy.delete_account(s, user=await s.merge(invitee))
        assert await merchants.invitations(s, merchant_id=merchant.id) == []


async def test_delete_erases_personal_data_and_signs_out(db: Database, make_user: Any) -> None:
    user = await make_user(name="Bob")
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        token, _ = await accounts.issue_token(s, user=fresh, kind="api")
        await privacy.verify_real_name(
            s, user=fresh, name="Bob Li", id_number=factories.resident_id(9)
        )
        await privacy.set_consent(s, user_id=user.id, channel=Channel.sms, granted=True, source="x")
        await privacy.delete_account(s, user=fresh)
    async with db.session() as s:
        row = (
            await s.execute(
                text(
                    "SELECT phone, phone_hash, real_name, id_number, display_name, deleted_at "
                    "FROM users WHERE id = :id"
                ),
                {"id": user.id},
            )
        ).one()
        assert row[:5] == (None, None, None, None, "")
        assert row[5] is not None
        assert (await s.scalars(select(Consent).where(Consent.user_id == user.id))).first() is None
        with pytest.raises(Unauthorized):
            await accounts.authenticate(s, token=token, kind="api")
        revoked = await s.scalars(select(AuthToken.revoked_at).where(AuthToken.user_id == user.id))
        assert all(revoked)
        # The number is free again: signing up with it makes a new, empty account.
        assert await accounts.find_user_by_phone(s, phone=user.phone) is None


async def test_export_and_deletion_cover_marketing(db: Database, make_user: Any) -> None:
    from mobimart.campaigns import events
    from mobimart.campaigns.models import MarketingEvent, Segment, SegmentMember
    from mobimart.catalog import follows
    from mobimart.notifications.models import PushSubscription

    owner, person = await make_user(), await make_user(name="Ann")
    shop = await factories.merchant(db, owner, admin=await make_user(admin=True))
    shop_id = await factories.shop_id_of(db, shop.id)
    async with db.session() as s:
        segment = Segment(merchant_id=shop.id, name="Fans", rules=[], member_count=1)
        s.add(segment)
        await s.flush()
        s.add(SegmentMember(segment_id=segment.id, user_id=person.id))
        s.add(
            PushSubscription(
                user_id=person.id,
                endpoint="https://push.example/1",
                endpoint_hash="h" * 64,
                p256dh="k",
                auth="a",
                label="Chrome on Android",
            )
        )
        await events.record(
            s, kind=events.Kind.qr_scan, user_id=person.id, merchant_id=shop.id, lat=31.2, lng=121.5
        )
        await follows.follow(s, user_id=person.id, shop_id=shop_id)
        await s.commit()
        fresh = await s.get(User, person.id)
        assert fresh is not None
        exported = (await privacy.export_data(s, user=fresh))["marketing"]
        assert [e["kind"] for e in exported["marketing_events"]] == ["qr_scan"]
        assert exported["marketing_events"][0]["location"] == [31.2, 121.5]
        assert exported["segments"] == ["Fans"]
        assert exported["push_devices"][0]["label"] == "Chrome on Android"
        assert len(exported["following_shops"]) == 1
        json.dumps(exported)  # the download is JSON
        await privacy.delete_account(s, user=fresh)
    async with db.session() as s:
        for table in (MarketingEvent, SegmentMember, PushSubscription):
            assert (
                await s.scalars(select(table).where(table.user_id == person.id))
            ).first() is None
        assert not await follows.follows(s, user_id=person.id, shop_id=shop_id)
        assert (await s.get(Segment, segment.id)).member_count == 0  # type: ignore[union-attr]
