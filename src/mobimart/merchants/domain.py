"""Merchant verification (KYC) as a state machine. Pure."""

from __future__ import annotations

import enum

from mobimart.errors import Conflict, DomainError


class KycStatus(enum.StrEnum):
    draft = "draft"
    pending = "pending"
    needs_info = "needs_info"
    approved = "approved"
    rejected = "rejected"


class Decision(enum.StrEnum):
    approve = "approve"
    reject = "reject"
    request_info = "request_info"


class DocumentKind(enum.StrEnum):
    business_licence = "business_licence"
    id_front = "id_front"
    id_back = "id_back"
    other = "other"


EDITABLE = frozenset({KycStatus.draft, KycStatus.needs_info, KycStatus.rejected})
MAX_DOCUMENTS = 10
REQUIRED_DOCUMENTS = frozenset({DocumentKind.business_licence})

_OUTCOME = {
    Decision.approve: KycStatus.approved,
    Decision.reject: KycStatus.rejected,
    Decision.request_info: KycStatus.needs_info,
}


def ensure_editable(status: KycStatus) -> None:
    if status not in EDITABLE:
        raise Conflict(
            "application_locked",
            f"An application that is {status.value} cannot be changed.",
        )


def ensure_documents(document_kinds: set[DocumentKind]) -> None:
    """An application is submitted with at least the required documents."""
    missing = REQUIRED_DOCUMENTS - document_kinds
    if missing:
        raise DomainError(
            "documents_missing",
            "Upload these documents first: " + ", ".join(sorted(k.value for k in missing)) + ".",
            422,
        )


def decide(status: KycStatus, decision: Decision, reason: str) -> KycStatus:
    """The status an admin's decision leads to; a refusal or a request must say why."""
    if status is not KycStatus.pending:
        raise Conflict(
            "not_pending", f"Only pending applications are decided; this one is {status.value}."
        )
    if decision is not Decision.approve and len(reason.strip()) < 5:
        raise DomainError(
            "reason_required", "Say why (at least 5 characters): the merchant will read it.", 422
        )
    return _OUTCOME[decision]
