"""Merchant applications, the admin review queue, staff membership and merchant scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts import domain as accounts_domain
from mobimart.accounts import service as accounts
from mobimart.accounts.domain import MemberRole
from mobimart.accounts.models import User
from mobimart.audit import service as audit
from mobimart.db import unique_or, utcnow
from mobimart.errors import Conflict, DomainError, Forbidden, NotFound
from mobimart.infra.pii import get_vault
from mobimart.infra.storage import DOCUMENT_TYPES, PrivateStore
from mobimart.merchants import domain
from mobimart.merchants.domain import Decision, DocumentKind, KycStatus
from mobimart.merchants.models import KycDocument, Merchant, MerchantMember, StaffInvitation
from mobimart.settings import get_settings
from mobimart.text import clean, clean_name

MAX_OWNED = 3
MAX_PENDING_INVITATIONS = 20


def document_store() -> PrivateStore:
    return PrivateStore(get_settings().uploads_dir / "kyc")


@dataclass(frozen=True)
class Application:
    name: str
    licence_number: str
    legal_rep_name: str
    legal_rep_id_number: str
    contact_phone: str

    def validated(self) -> Application:
        name = clean_name(self.name, 80)
        rep = clean_name(self.legal_rep_name, 40)
        if not 2 <= len(name) <= 80:
            raise DomainError("invalid_name", "A shop name has 2 to 80 characters.", 422)
        if not 2 <= len(rep) <= 40:
            raise DomainError("invalid_name", "Give the legal representative's full name.", 422)
        return Application(
            name=name,
            licence_number=accounts_domain.validate_uscc(self.licence_number),
            legal_rep_name=rep,
            legal_rep_id_number=accounts_domain.validate_resident_id(self.legal_rep_id_number),
            contact_phone=accounts_domain.normalize_phone(
                self.contact_phone, get_settings().default_region
            ),
        )


def _apply_fields(merchant: Merchant, app: Application) -> None:
    vault = get_vault()
    merchant.name = app.name
    merchant.licence_number = app.licence_number
    merchant.legal_rep_name = app.legal_rep_name
    merchant.legal_rep_id_number = app.legal_rep_id_number
    merchant.legal_rep_id_hash = vault.lookup_hash("id:" + app.legal_rep_id_number)
    merchant.contact_phone = app.contact_phone
    merchant.contact_phone_hash = vault.lookup_hash(app.contact_phone)


def _audit(
    session: AsyncSession,
    *,
    actor: User,
    merchant_id: int,
    action: str,
    subject: tuple[str, int] | None = None,
    reason: str = "",
) -> None:
    """One audit entry about a merchant; the subject is the merchant itself unless given."""
    subject_type, subject_id = subject or ("merchant", merchant_id)
    audit.record(
        session,
        actor_id=actor.id,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        merchant_id=merchant_id,
        reason=reason,
    )


# --- scope -------------------------------------------------------------------------------------


async def membership(
    session: AsyncSession, *, merchant_id: int, user: User
) -> tuple[Merchant, MerchantMember]:
    """The merchant as seen by one of its members. Non-members get 404: existence is private."""
    row = (
        await session.execute(
            select(Merchant, MerchantMember)
            .join(MerchantMember, MerchantMember.merchant_id == Merchant.id)
            .where(Merchant.id == merchant_id, MerchantMember.user_id == user.id)
        )
    ).first()
    if row is None:
        raise NotFound("Merchant")
    return row[0], row[1]


async def require_owner(session: AsyncSession, *, merchant_id: int, user: User) -> Merchant:
    merchant, member = await membership(session, merchant_id=merchant_id, user=user)
    if member.role != MemberRole.owner:
        raise Forbidden("Only the merchant's owner can do this.")
    return merchant


def require_approved(merchant: Merchant) -> None:
    if merchant.status != KycStatus.approved:
        raise DomainError(
            "merchant_not_approved",
            "Your merchant verification must be approved first.",
            403,
        )


async def my_merchants(session: AsyncSession, *, user_id: int) -> list[tuple[Merchant, str]]:
    rows = await session.execute(
        select(Merchant, MerchantMember.role)
        .join(MerchantMember, MerchantMember.merchant_id == Merchant.id)
        .where(MerchantMember.user_id == user_id)
        .order_by(Merchant.id)
    )
    return [(m, role) for m, role in rows]


async def get(session: AsyncSession, *, merchant_id: int) -> Merchant:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("Merchant")
    return merchant


# --- application -------------------------------------------------------------------------------


async def apply(session: AsyncSession, *, user: User, application: Application) -> Merchant:
    app = application.validated()
    if await owned_count(session, user_id=user.id) >= MAX_OWNED:
        raise Conflict("too_many_merchants", f"One account can own at most {MAX_OWNED} merchants.")
    merchant = Merchant(status=KycStatus.draft, created_by=user.id)
    _apply_fields(merchant, app)
    session.add(merchant)
    await session.flush()
    session.add(MerchantMember(merchant_id=merchant.id, user_id=user.id, role=MemberRole.owner))
    _audit(session, actor=user, merchant_id=merchant.id, action="kyc.created")
    await session.commit()
    return merchant


async def _claim_editable(session: AsyncSession, merchant_id: int) -> None:
    """Check the application is still editable *in the database* and hold it for this
    transaction (a row lock on PostgreSQL, the write lock on SQLite) until commit, so a submit
    or a decision cannot slip in between the check and the write."""
    claimed = await session.execute(
        update(Merchant)
        .where(Merchant.id == merchant_id, Merchant.status.in_(list(domain.EDITABLE)))
        .values(status=Merchant.status)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        status = await session.scalar(select(Merchant.status).where(Merchant.id == merchant_id))
        if status is None:
            raise NotFound("Merchant")
        domain.ensure_editable(KycStatus(status))


async def update_application(
    session: AsyncSession, *, merchant: Merchant, user: User, application: Application
) -> Merchant:
    validated = application.validated()
    await _claim_editable(session, merchant.id)
    _apply_fields(merchant, validated)
    _audit(session, actor=user, merchant_id=merchant.id, action="kyc.updated")
    await session.commit()
    return merchant


async def documents(session: AsyncSession, *, merchant_id: int) -> list[KycDocument]:
    rows = await session.scalars(
        select(KycDocument).where(KycDocument.merchant_id == merchant_id).order_by(KycDocument.id)
    )
    return list(rows)


async def add_document(
    session: AsyncSession,
    *,
    merchant: Merchant,
    user: User,
    kind: DocumentKind,
    filename: str,
    data: bytes,
) -> KycDocument:
    # Encrypt and write before claiming the application: the claim holds a lock until commit.
    store = document_store()
    stored = store.save(data, allowed=DOCUMENT_TYPES, max_bytes=get_settings().upload_max_bytes)
    try:
        await _claim_editable(session, merchant.id)
        if len(await documents(session, merchant_id=merchant.id)) >= domain.MAX_DOCUMENTS:
            raise Conflict("too_many_documents", f"At most {domain.MAX_DOCUMENTS} documents.")
        doc = KycDocument(
            merchant_id=merchant.id,
            kind=kind.value,
            filename=clean(filename, 120) or "document",
            content_type=stored.content_type,
            size=stored.size,
            sha256=stored.sha256,
            storage_key=stored.key,
            uploaded_by=user.id,
        )
        session.add(doc)
        await session.commit()
    except BaseException:
        store.delete(stored.key)  # no row points at it
        raise
    return doc


async def read_document(
    session: AsyncSession, *, merchant_id: int, document_id: int
) -> tuple[KycDocument, bytes]:
    doc = await session.scalar(
        select(KycDocument).where(
            KycDocument.id == document_id, KycDocument.merchant_id == merchant_id
        )
    )
    if doc is None:
        raise NotFound("Document")
    return doc, document_store().read(doc.storage_key)


async def submit(session: AsyncSession, *, merchant: Merchant, user: User) -> Merchant:
    await _claim_editable(session, merchant.id)
    kinds = {DocumentKind(d.kind) for d in await documents(session, merchant_id=merchant.id)}
    domain.ensure_documents(kinds)
    merchant.status = KycStatus.pending
    merchant.submitted_at = utcnow()
    _audit(session, actor=user, merchant_id=merchant.id, action="kyc.submitted")
    await session.commit()
    return merchant


# --- review (platform admins) ------------------------------------------------------------------


async def review_queue(
    session: AsyncSession, *, status: KycStatus, before_id: int | None, limit: int
) -> list[Merchant]:
    stmt = select(Merchant).where(Merchant.status == status).order_by(Merchant.id.desc())
    if before_id is not None:
        stmt = stmt.where(Merchant.id < before_id)
    return list(await session.scalars(stmt.limit(limit)))


async def decide(
    session: AsyncSession, *, merchant_id: int, admin: User, decision: Decision, reason: str
) -> Merchant:
    if not admin.is_admin:
        raise Forbidden()
    merchant = await get(session, merchant_id=merchant_id)
    new_status = domain.decide(KycStatus(merchant.status), decision, reason)
    now = utcnow()
    # Conditional on still being pending: two admins deciding at once cannot both win.
    result = await session.execute(
        update(Merchant)
        .where(Merchant.id == merchant_id, Merchant.status == KycStatus.pending)
        .values(status=new_status, review_reason=reason.strip(), decided_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # The update matched nothing, so nothing needs undoing: the caller's objects stay usable.
        raise Conflict("not_pending", "Another reviewer decided this application first.")
    _audit(
        session,
        actor=admin,
        merchant_id=merchant_id,
        action=f"kyc.{decision.value}",
        reason=reason.strip(),
    )
    await session.commit()
    await session.refresh(merchant)
    return merchant


# --- staff -------------------------------------------------------------------------------------


async def staff(session: AsyncSession, *, merchant_id: int) -> list[tuple[MerchantMember, User]]:
    rows = await session.execute(
        select(MerchantMember, User)
        .join(User, User.id == MerchantMember.user_id)
        .where(MerchantMember.merchant_id == merchant_id)
        .order_by(MerchantMember.id)
    )
    return [(m, u) for m, u in rows]


async def invite_staff(
    session: AsyncSession, *, merchant: Merchant, actor: User, phone: str
) -> StaffInvitation:
    """Invite a number to the team. The answer is the same whether or not the number has an
    account: an invitation is no way to look people up."""
    e164 = accounts_domain.normalize_phone(phone, get_settings().default_region)
    p_hash = accounts.phone_hash(e164)
    member = await session.scalar(
        select(MerchantMember.id)
        .join(User, User.id == MerchantMember.user_id)
        .where(MerchantMember.merchant_id == merchant.id, User.phone_hash == p_hash)
    )
    if member is not None:
        raise Conflict("already_member", "This person is already on the team.")
    pending = await session.scalar(
        select(func.count())
        .select_from(StaffInvitation)
        .where(StaffInvitation.merchant_id == merchant.id)
    )
    if (pending or 0) >= MAX_PENDING_INVITATIONS:
        raise Conflict(
            "too_many_invitations",
            f"At most {MAX_PENDING_INVITATIONS} invitations can wait for an answer.",
        )
    invitation = StaffInvitation(
        merchant_id=merchant.id, phone=e164, phone_hash=p_hash, invited_by=actor.id
    )
    async with unique_or(session, Conflict("already_invited", "This number is already invited.")):
        session.add(invitation)
    _audit(
        session,
        actor=actor,
        merchant_id=merchant.id,
        action="staff.invited",
        subject=("invitation", invitation.id),
    )
    await session.commit()
    return invitation


async def invitations(session: AsyncSession, *, merchant_id: int) -> list[StaffInvitation]:
    rows = await session.scalars(
        select(StaffInvitation)
        .where(StaffInvitation.merchant_id == merchant_id)
        .order_by(StaffInvitation.id)
    )
    return list(rows)


async def cancel_invitation(
    session: AsyncSession, *, merchant: Merchant, actor: User, invitation_id: int
) -> None:
    result = await session.execute(
        delete(StaffInvitation).where(
            StaffInvitation.id == invitation_id, StaffInvitation.merchant_id == merchant.id
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("Invitation")
    _audit(
        session,
        actor=actor,
        merchant_id=merchant.id,
        action="staff.invitation_cancelled",
        subject=("invitation", invitation_id),
    )
    await session.commit()


async def my_invitations(
    session: AsyncSession, *, user: User
) -> list[tuple[StaffInvitation, Merchant]]:
    rows = await session.execute(
        select(StaffInvitation, Merchant)
        .join(Merchant, Merchant.id == StaffInvitation.merchant_id)
        .where(StaffInvitation.phone_hash == user.phone_hash)
        .order_by(StaffInvitation.id)
    )
    return [(i, m) for i, m in rows]


async def answer_invitation(
    session: AsyncSession, *, user: User, invitation_id: int, accept: bool
) -> Merchant | None:
    """Accept (join as staff) or decline an invitation addressed to the user's number."""
    invitation = await session.scalar(
        select(StaffInvitation).where(
            StaffInvitation.id == invitation_id, StaffInvitation.phone_hash == user.phone_hash
        )
    )
    if invitation is None or user.phone_hash is None:
        raise NotFound("Invitation")
    merchant_id = invitation.merchant_id
    # Deleting is the conditional step: of two answers at once, one finds the row.
    taken = await session.execute(
        delete(StaffInvitation).where(StaffInvitation.id == invitation_id)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("Invitation")
    if accept:
        async with unique_or(session, Conflict("already_member", "You are already on this team.")):
            session.add(
                MerchantMember(merchant_id=merchant_id, user_id=user.id, role=MemberRole.staff)
            )
    _audit(
        session,
        actor=user,
        merchant_id=merchant_id,
        action="staff.joined" if accept else "staff.declined",
        subject=("invitation", invitation_id),
    )
    await session.commit()
    return await get(session, merchant_id=merchant_id) if accept else None


async def remove_staff(
    session: AsyncSession, *, merchant: Merchant, actor: User, member_id: int
) -> None:
    member = await session.get(MerchantMember, member_id)
    if member is None or member.merchant_id != merchant.id:
        raise NotFound("Team member")
    if member.role == MemberRole.owner:
        raise Conflict("owner_stays", "The owner cannot be removed.")
    await session.delete(member)
    _audit(
        session,
        actor=actor,
        merchant_id=merchant.id,
        action="staff.removed",
        subject=("user", member.user_id),
    )
    await session.commit()


# --- privacy hooks (called by accounts.privacy) ------------------------------------------------


async def memberships_for_export(session: AsyncSession, *, user: User) -> dict[str, Any]:
    return {
        "memberships": [
            {"merchant_id": m.id, "merchant": m.name, "role": role}
            for m, role in await my_merchants(session, user_id=user.id)
        ],
        "invitations": [
            {"merchant_id": m.id, "merchant": m.name, "invited_at": i.created_at.isoformat()}
            for i, m in await my_invitations(session, user=user)
        ],
    }


async def owned_count(session: AsyncSession, *, user_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(MerchantMember)
        .where(MerchantMember.user_id == user_id, MerchantMember.role == MemberRole.owner)
    )
    return count or 0


async def _owned(session: AsyncSession, *, user_id: int) -> list[Merchant]:
    return [
        m for m, role in await my_merchants(session, user_id=user_id) if role == MemberRole.owner
    ]


async def owns_approved(session: AsyncSession, *, user_id: int) -> bool:
    return any(m.status == KycStatus.approved for m in await _owned(session, user_id=user_id))


async def withdraw_applications(session: AsyncSession, *, user: User) -> list[str]:
    """Delete the user's merchants that were never approved, in the caller's transaction.
    Returns the storage keys of their documents, to delete once the transaction commits."""
    keys: list[str] = []
    for merchant in await _owned(session, user_id=user.id):
        if merchant.status == KycStatus.approved:
            raise Conflict("owner_of_merchant", "An approved merchant cannot be withdrawn.")
        keys += [d.storage_key for d in await documents(session, merchant_id=merchant.id)]
        _audit(session, actor=user, merchant_id=merchant.id, action="kyc.withdrawn")
        await session.delete(merchant)
    return keys


async def leave_all(session: AsyncSession, *, user: User) -> None:
    """Staff memberships end and invitations to the number are erased (they hold it)."""
    await session.execute(delete(MerchantMember).where(MerchantMember.user_id == user.id))
    if user.phone_hash:
        await session.execute(
            delete(StaffInvitation).where(StaffInvitation.phone_hash == user.phone_hash)
        )
