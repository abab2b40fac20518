"""Consent per channel, real-name verification, and the data-subject rights: export, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import domain
from mobimart.accounts.models import AuthToken, Consent, User
from mobimart.campaigns import people as marketing
from mobimart.campaigns import rules, segments
from mobimart.catalog import brands
from mobimart.db import unique_or, utcnow
from mobimart.errors import Conflict, DomainError
from mobimart.infra.pii import get_vault
from mobimart.merchants import service as merchants
from mobimart.settings import get_settings
from mobimart.text import clean_name


async def set_consent(
    session: AsyncSession, *, user_id: int, channel: domain.Channel, granted: bool, source: str
) -> Consent:
    row = Consent(user_id=user_id, channel=channel.value, granted=granted, source=source[:40])
    session.add(row)
    await session.flush()
    await segments.on_event(session, user_id=user_id, kind=rules.CONSENT)
    await session.commit()
    return row


async def current_consents(session: AsyncSession, *, user_id: int) -> dict[str, Consent | None]:
    newest = (
        select(func.max(Consent.id))
        .where(Consent.user_id == user_id)
        .group_by(Consent.channel)
        .scalar_subquery()
    )
    rows = await session.scalars(select(Consent).where(Consent.id.in_(newest)))
    by_channel = {row.channel: row for row in rows}
    return {channel.value: by_channel.get(channel.value) for channel in domain.Channel}


async def has_consent(session: AsyncSession, *, user_id: int, channel: domain.Channel) -> bool:
    row = (await current_consents(session, user_id=user_id))[channel.value]
    return bool(row and row.granted)


def realname_required(balance_minor: int) -> bool:
    """Wallet balances above the configured threshold need a verified real name."""
    return balance_minor > get_settings().realname_required_above_minor


async def verify_real_name(session: AsyncSession, *, user: User, name: str, id_number: str) -> User:
    name = clean_name(name, 40)
    if not 2 <= len(name) <= 40:
        raise DomainError("invalid_name", "Give your full name as on your ID card.", 422)
    value = domain.validate_resident_id(id_number)
    id_hash = get_vault().lookup_hash("id:" + value)
    in_use = Conflict("id_number_in_use", "This ID number is verified on another account.")
    async with unique_or(session, in_use):  # the unique index decides, even for two at once
        await session.execute(
            update(User)
            .where(User.id == user.id)
            .values(
                real_name=name,
                id_number=value,
                id_number_hash=id_hash,
                realname_verified_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
    await session.commit()
    await session.refresh(user)
    return user


async def export_data(session: AsyncSession, *, user: User) -> dict[str, Any]:
    """Everything held about the person, readable by them ("download my data")."""
    consents = await session.scalars(
        select(Consent).where(Consent.user_id == user.id).order_by(Consent.id)
    )
    tokens = await session.scalars(select(AuthToken).where(AuthToken.user_id == user.id))
    return {
        "format": "mobimart-export-v1",
        "exported_at": utcnow().isoformat(),
        "account": {
            "id": user.id,
            "phone": user.phone,
            "display_name": user.display_name,
            "has_password": user.password_hash is not None,
            "roles": {"admin": user.is_admin, "creator": user.is_creator},
            "created_at": user.created_at.isoformat(),
            "real_name": user.real_name,
            "id_number": user.id_number,
            "realname_verified_at": user.realname_verified_at.isoformat()
            if user.realname_verified_at
            else None,
        },
        "consents": [
            {
                "channel": c.channel,
                "granted": c.granted,
                "source": c.source,
                "recorded_at": c.recorded_at.isoformat(),
            }
            for c in consents
        ],
        "sign_ins": [
            {
                "kind": t.kind,
                "label": t.label,
                "created_at": t.created_at.isoformat(),
                "expires_at": t.expires_at.isoformat(),
                "revoked": t.revoked_at is not None,
            }
            for t in tokens
        ],
        "merchants": await merchants.memberships_for_export(session, user=user),
        "following": [
            {"brand": b.name, "slug": b.slug}
            for b in await brands.followed(session, user_id=user.id)
        ],
        "marketing": await marketing.export(session, user_id=user.id),
    }


async def delete_account(session: AsyncSession, *, user: User) -> None:
    """Erase personal data; keep the row (anonymised) for financial and audit records."""
    if await merchants.owns_approved(session, user_id=user.id):
        raise Conflict(
            "owner_of_merchant",
            "You own an approved shop: ask the platform to close it or hand it over before "
            "deleting your account.",
        )
    document_keys = await merchants.withdraw_applications(session, user=user)
    await merchants.leave_all(session, user=user)
    await brands.unfollow_all(session, user_id=user.id)
    await marketing.forget(session, user_id=user.id)
    await session.execute(delete(Consent).where(Consent.user_id == user.id))
    await session.execute(
        update(AuthToken)
        .where(AuthToken.user_id == user.id, AuthToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    user.phone = user.phone_hash = user.password_hash = None
    user.real_name = user.id_number = user.id_number_hash = None
    user.display_name = ""
    user.realname_verified_at = None
    user.is_admin = user.is_creator = False
    user.deleted_at = utcnow()
    await session.commit()
    store = merchants.document_store()
    for key in document_keys:  # identity documents of withdrawn applications
        store.delete(key)
