import pytest

from mobimart.errors import DomainError
from mobimart.merchants import domain
from mobimart.merchants.domain import Decision, DocumentKind, KycStatus


@pytest.mark.parametrize(
    ("decision", "outcome"),
    [
        (Decision.approve, KycStatus.approved),
        (Decision.reject, KycStatus.rejected),
        (Decision.request_info, KycStatus.needs_info),
    ],
)
def test_decisions_on_pending(decision: Decision, outcome: KycStatus) -> None:
    assert domain.decide(KycStatus.pending, decision, "licence photo is blurred") is outcome


@pytest.mark.parametrize("status", [s for s in KycStatus if s is not KycStatus.pending])
def test_only_pending_is_decided(status: KycStatus) -> None:
    with pytest.raises(DomainError) as err:
        domain.decide(status, Decision.approve, "")
    assert err.value.code == "not_pending"
    assert err.value.status == 409


@pytest.mark.parametrize("decision", [Decision.reject, Decision.request_info])
def test_refusal_needs_a_reason(decision: Decision) -> None:
    with pytest.raises(DomainError) as err:
        domain.decide(KycStatus.pending, decision, "  no ")
    assert err.value.code == "reason_required"


def test_approval_needs_no_reason() -> None:
    assert domain.decide(KycStatus.pending, Decision.approve, "") is KycStatus.approved


def test_submission_needs_the_licence() -> None:
    with pytest.raises(DomainError) as err:
        domain.ensure_documents({DocumentKind.id_front})
    assert "business_licence" in err.value.detail
    domain.ensure_documents({DocumentKind.business_licence, DocumentKind.id_front})


@pytest.mark.parametrize("status", [KycStatus.pending, KycStatus.approved])
def test_locked_applications_cannot_change(status: KycStatus) -> None:
    with pytest.raises(DomainError) as err:
        domain.ensure_editable(status)
    assert err.value.code == "application_locked"
