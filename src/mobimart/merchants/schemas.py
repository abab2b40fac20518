from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from mobimart.accounts.domain import MemberRole
from mobimart.merchants.domain import Decision, DocumentKind, KycStatus
from mobimart.web.schemas import InputModel


class ApplicationIn(InputModel):
    name: str = Field(min_length=1, max_length=80, description="Shop name")
    licence_number: str = Field(
        min_length=1, max_length=30, description="Unified social credit code (18 characters)"
    )
    legal_rep_name: str = Field(min_length=1, max_length=40)
    legal_rep_id_number: str = Field(min_length=1, max_length=20)
    contact_phone: str = Field(min_length=3, max_length=32)


class DocumentOut(BaseModel):
    id: int
    kind: DocumentKind
    filename: str
    content_type: str
    size: int
    uploaded_at: dt.datetime


class MerchantOut(BaseModel):
    """The merchant's own view: personal numbers are masked."""

    id: int
    name: str
    status: KycStatus
    role: MemberRole
    licence_number: str
    legal_rep_name: str
    legal_rep_id_number_masked: str
    contact_phone_masked: str
    review_reason: str
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None


class KycSummaryOut(BaseModel):
    id: int
    name: str
    status: KycStatus
    licence_number: str
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None


class KycReviewOut(BaseModel):
    """A platform reviewer's view of an application."""

    id: int
    name: str
    status: KycStatus
    licence_number: str
    legal_rep_name: str
    legal_rep_id_number: str
    contact_phone: str
    review_reason: str
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    decided_at: dt.datetime | None
    documents: list[DocumentOut]


class DecisionIn(InputModel):
    decision: Decision
    reason: str = Field("", max_length=1000)


class InvitationIn(InputModel):
    phone: str = Field(min_length=3, max_length=32)


class InvitationOut(BaseModel):
    """An invitation as the inviting merchant sees it: the number masked."""

    id: int
    phone_masked: str
    invited_at: dt.datetime


class MyInvitationOut(BaseModel):
    id: int
    merchant_id: int
    merchant_name: str
    invited_at: dt.datetime


class StaffOut(BaseModel):
    member_id: int
    user_id: int
    role: MemberRole
    display_name: str
    phone_masked: str
    joined_at: dt.datetime
