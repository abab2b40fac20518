from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from fastapi.responses import Response as RawResponse

from mobimart.accounts.domain import MemberRole, mask_id_number, mask_phone
from mobimart.accounts.models import User
from mobimart.merchants import service as merchants
from mobimart.merchants.domain import DocumentKind, KycStatus
from mobimart.merchants.models import KycDocument, Merchant, MerchantMember, StaffInvitation
from mobimart.merchants.schemas import (
    ApplicationIn,
    DecisionIn,
    DocumentOut,
    InvitationIn,
    InvitationOut,
    KycReviewOut,
    KycSummaryOut,
    MerchantOut,
    MyInvitationOut,
    StaffOut,
)
from mobimart.settings import get_settings
from mobimart.web.deps import Admin, CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["merchants"])

_FILE_RESPONSE = {
    200: {
        "description": "The document's bytes",
        "content": {t: {} for t in ("image/jpeg", "image/png", "image/webp", "application/pdf")},
    }
}


def merchant_out(merchant: Merchant, role: str) -> MerchantOut:
    return MerchantOut(
        id=merchant.id,
        name=merchant.name,
        status=KycStatus(merchant.status),
        role=MemberRole(role),
        licence_number=merchant.licence_number,
        legal_rep_name=merchant.legal_rep_name,
        legal_rep_id_number_masked=mask_id_number(merchant.legal_rep_id_number),
        contact_phone_masked=mask_phone(merchant.contact_phone),
        review_reason=merchant.review_reason,
        submitted_at=merchant.submitted_at,
        decided_at=merchant.decided_at,
    )


def document_out(doc: KycDocument) -> DocumentOut:
    return DocumentOut(
        id=doc.id,
        kind=DocumentKind(doc.kind),
        filename=doc.filename,
        content_type=doc.content_type,
        size=doc.size,
        uploaded_at=doc.uploaded_at,
    )


def invitation_out(invitation: StaffInvitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        phone_masked=mask_phone(invitation.phone),
        invited_at=invitation.created_at,
    )


def staff_out(member: MerchantMember, user: User) -> StaffOut:
    return StaffOut(
        member_id=member.id,
        user_id=user.id,
        role=MemberRole(member.role),
        display_name=user.display_name,
        phone_masked=mask_phone(user.phone) if user.phone else "",
        joined_at=member.created_at,
    )


def _application(body: ApplicationIn) -> merchants.Application:
    return merchants.Application(**body.model_dump())


def _file(doc: KycDocument, data: bytes) -> RawResponse:
    safe = "".join(c for c in doc.filename if c.isalnum() or c in "._-") or "document"
    return RawResponse(
        data,
        media_type=doc.content_type,
        headers={"Content-Disposition": f'attachment; filename="{safe}"'},
    )


# --- the merchant's own side -------------------------------------------------------------------


@router.post("/merchants", status_code=201)
async def apply(body: ApplicationIn, user: CurrentUser, session: Session) -> MerchantOut:
    """Start a merchant application (status draft). Upload documents, then submit it."""
    merchant = await merchants.apply(session, user=user, application=_application(body))
    return merchant_out(merchant, MemberRole.owner)


@router.get("/merchants")
async def my_merchants(user: CurrentUser, session: Session) -> list[MerchantOut]:
    return [
        merchant_out(m, role) for m, role in await merchants.my_merchants(session, user_id=user.id)
    ]


@router.get("/merchants/{merchant_id}")
async def get_merchant(merchant_id: IdPath, user: CurrentUser, session: Session) -> MerchantOut:
    merchant, member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    return merchant_out(merchant, member.role)


@router.put("/merchants/{merchant_id}/application")
async def update_application(
    merchant_id: IdPath, body: ApplicationIn, user: CurrentUser, session: Session
) -> MerchantOut:
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await merchants.update_application(
        session, merchant=merchant, user=user, application=_application(body)
    )
    return merchant_out(merchant, MemberRole.owner)


@router.post("/merchants/{merchant_id}/documents", status_code=201)
async def upload_document(
    merchant_id: IdPath,
    kind: Annotated[DocumentKind, Form()],
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or PDF")],
    user: CurrentUser,
    session: Session,
) -> DocumentOut:
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    data = await file.read(get_settings().upload_max_bytes + 1)
    doc = await merchants.add_document(
        session, merchant=merchant, user=user, kind=kind, filename=file.filename or "", data=data
    )
    return document_out(doc)


@router.get("/merchants/{merchant_id}/documents")
async def list_documents(
    merchant_id: IdPath, user: CurrentUser, session: Session
) -> list[DocumentOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return [document_out(d) for d in await merchants.documents(session, merchant_id=merchant_id)]


@router.get(
    "/merchants/{merchant_id}/documents/{document_id}",
    response_class=RawResponse,
    responses=_FILE_RESPONSE,  # type: ignore[arg-type]
)
async def download_document(
    merchant_id: IdPath, document_id: IdPath, user: CurrentUser, session: Session
) -> RawResponse:
    """The owner's own upload. Staff do not see identity documents."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    doc, data = await merchants.read_document(
        session, merchant_id=merchant_id, document_id=document_id
    )
    return _file(doc, data)


@router.post("/merchants/{merchant_id}/submit")
async def submit(merchant_id: IdPath, user: CurrentUser, session: Session) -> MerchantOut:
    """Send the application to the platform's reviewers."""
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await merchants.submit(session, merchant=merchant, user=user)
    return merchant_out(merchant, MemberRole.owner)


@router.get("/merchants/{merchant_id}/staff")
async def list_staff(merchant_id: IdPath, user: CurrentUser, session: Session) -> list[StaffOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return [staff_out(m, u) for m, u in await merchants.staff(session, merchant_id=merchant_id)]


@router.post("/merchants/{merchant_id}/invitations", status_code=201)
async def invite_staff(
    merchant_id: IdPath, body: InvitationIn, user: CurrentUser, session: Session
) -> InvitationOut:
    """Invite a mobile number to the team; they join as staff when they accept."""
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    invitation = await merchants.invite_staff(
        session, merchant=merchant, actor=user, phone=body.phone
    )
    return invitation_out(invitation)


@router.get("/merchants/{merchant_id}/invitations")
async def list_invitations(
    merchant_id: IdPath, user: CurrentUser, session: Session
) -> list[InvitationOut]:
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    return [
        invitation_out(i) for i in await merchants.invitations(session, merchant_id=merchant_id)
    ]


@router.delete("/merchants/{merchant_id}/invitations/{invitation_id}", status_code=204)
async def cancel_invitation(
    merchant_id: IdPath, invitation_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await merchants.cancel_invitation(
        session, merchant=merchant, actor=user, invitation_id=invitation_id
    )
    return Response(status_code=204)


@router.get("/me/invitations")
async def my_invitations(user: CurrentUser, session: Session) -> list[MyInvitationOut]:
    """Invitations to join a merchant's team, addressed to your number."""
    return [
        MyInvitationOut(id=i.id, merchant_id=m.id, merchant_name=m.name, invited_at=i.created_at)
        for i, m in await merchants.my_invitations(session, user=user)
    ]


@router.post("/me/invitations/{invitation_id}/accept")
async def accept_invitation(
    invitation_id: IdPath, user: CurrentUser, session: Session
) -> MerchantOut:
    merchant = await merchants.answer_invitation(
        session, user=user, invitation_id=invitation_id, accept=True
    )
    assert merchant is not None
    return merchant_out(merchant, MemberRole.staff)


@router.delete("/me/invitations/{invitation_id}", status_code=204)
async def decline_invitation(
    invitation_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    await merchants.answer_invitation(session, user=user, invitation_id=invitation_id, accept=False)
    return Response(status_code=204)


@router.delete("/merchants/{merchant_id}/staff/{member_id}", status_code=204)
async def remove_staff(
    merchant_id: IdPath, member_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    merchant = await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await merchants.remove_staff(session, merchant=merchant, actor=user, member_id=member_id)
    return Response(status_code=204)


# --- platform review ---------------------------------------------------------------------------


def summary_out(merchant: Merchant) -> KycSummaryOut:
    return KycSummaryOut(
        id=merchant.id,
        name=merchant.name,
        status=KycStatus(merchant.status),
        licence_number=merchant.licence_number,
        submitted_at=merchant.submitted_at,
        decided_at=merchant.decided_at,
    )


async def review_out(session: Session, merchant: Merchant) -> KycReviewOut:
    docs = await merchants.documents(session, merchant_id=merchant.id)
    return KycReviewOut(
        id=merchant.id,
        name=merchant.name,
        status=KycStatus(merchant.status),
        licence_number=merchant.licence_number,
        legal_rep_name=merchant.legal_rep_name,
        legal_rep_id_number=merchant.legal_rep_id_number,
        contact_phone=merchant.contact_phone,
        review_reason=merchant.review_reason,
        created_at=merchant.created_at,
        submitted_at=merchant.submitted_at,
        decided_at=merchant.decided_at,
        documents=[document_out(d) for d in docs],
    )


@router.get("/admin/kyc")
async def review_queue(
    admin: Admin,
    session: Session,
    page: Annotated[PageParams, Depends(page_params)],
    status: KycStatus = KycStatus.pending,
) -> Page[KycSummaryOut]:
    """Applications in one status, newest first (pending by default)."""
    rows = await merchants.review_queue(
        session, status=status, before_id=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, summary_out, key=lambda m: m.id)


@router.get("/admin/kyc/{merchant_id}")
async def review_detail(merchant_id: IdPath, admin: Admin, session: Session) -> KycReviewOut:
    return await review_out(session, await merchants.get(session, merchant_id=merchant_id))


@router.get(
    "/admin/kyc/{merchant_id}/documents/{document_id}",
    response_class=RawResponse,
    responses=_FILE_RESPONSE,  # type: ignore[arg-type]
)
async def review_document(
    merchant_id: IdPath, document_id: IdPath, admin: Admin, session: Session
) -> RawResponse:
    doc, data = await merchants.read_document(
        session, merchant_id=merchant_id, document_id=document_id
    )
    return _file(doc, data)


@router.post("/admin/kyc/{merchant_id}/decision")
async def decide(
    merchant_id: IdPath, body: DecisionIn, admin: Admin, session: Session
) -> KycReviewOut:
    """Approve, reject (with a reason) or ask for more information (with what is missing)."""
    merchant = await merchants.decide(
        session, merchant_id=merchant_id, admin=admin, decision=body.decision, reason=body.reason
    )
    return await review_out(session, merchant)
