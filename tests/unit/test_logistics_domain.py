from __future__ import annotations

import datetime as dt

import pytest

from mobimart.checkout.domain import Status, can_move
from mobimart.errors import DomainError
from mobimart.logistics import domain

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("sf 1234 5678 90", "SF1234567890"),
        ("jd0012-3", "JD0012-3"),
        (" 7312345678\t", "7312345678"),
    ],
)
def test_tracking_numbers_are_normalised(raw: str, number: str) -> None:
    assert domain.tracking_number(raw) == number


@pytest.mark.parametrize("raw", ["", "SF1", "12/34", "-1234", "运单1234", "A" * 41])
def test_bad_tracking_numbers_are_refused(raw: str) -> None:
    with pytest.raises(DomainError) as refused:
        domain.tracking_number(raw)
    assert refused.value.code == "invalid_tracking_number"


def test_only_known_carriers() -> None:
    assert domain.carrier("sf") == "sf"
    with pytest.raises(DomainError):
        domain.carrier("SF")


def test_event_times_are_utc_default_to_now_and_never_lie_in_the_future() -> None:
    assert domain.occurred(None, now=NOW) == NOW
    beijing = dt.datetime(2026, 11, 26, 19, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert domain.occurred(beijing, now=NOW) == dt.datetime(2026, 11, 26, 11, 30, tzinfo=dt.UTC)
    assert domain.occurred(NOW + dt.timedelta(minutes=9), now=NOW) > NOW  # a carrier's clock
    with pytest.raises(DomainError):
        domain.occurred(NOW + dt.timedelta(minutes=11), now=NOW)
    with pytest.raises(DomainError):
        domain.occurred(dt.datetime(2026, 11, 26, 11, 0), now=NOW)


def test_a_buyer_may_complete_a_shipped_order_but_nothing_skips_shipping() -> None:
    assert can_move(Status.shipped, Status.completed)
    assert can_move(Status.delivered, Status.completed)
    assert not can_move(Status.paid, Status.completed)
    assert not can_move(Status.paid, Status.delivered)
    assert not can_move(Status.completed, Status.completed)
