"""Ledger rules: every movement balances, and replaying any history of movements with the
refusal rule keeps every non-clearing balance at zero or above and the total at zero."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobimart.payments import domain


def test_settlement_takes_the_commission_rounded_half_up() -> None:
    legs = domain.settle(10_001, merchant_id=3, commission_bps=500)
    assert {leg.account: leg.amount for leg in legs} == {
        domain.pending(3): -10_001,
        domain.available(3): 9_501,
        domain.COMMISSION: 500,
    }
    assert domain.commission_of(10, 500) == 1  # half a fen rounds up
    assert domain.commission_of(9, 500) == 0


def test_a_movement_is_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        domain.move(0, domain.CLEARING, domain.wallet(1))


_ops = st.lists(
    st.tuples(
        st.sampled_from(["top_up", "pay_wallet", "pay_gateway", "refund", "settle", "payout"]),
        st.integers(1, 3),  # user or merchant
        st.integers(1, 50_000),
        st.sampled_from(["wallet", "gateway"]),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_any_history_balances_and_never_overdraws(ops: list[tuple[str, int, int, str]]) -> None:
    balances: dict[domain.AccountRef, int] = defaultdict(int)
    for op, who, amount, method in ops:
        if op == "top_up":
            legs = domain.top_up(amount, user_id=who)
        elif op == "pay_wallet":
            legs = domain.pay({who: amount}, method="wallet", payer_id=who)
        elif op == "pay_gateway":
            legs = domain.pay(
                {who: amount, who + 1: amount // 2 + 1}, method="gateway", payer_id=who
            )
        elif op == "refund":
            legs = domain.refund(amount, merchant_id=who, method=method, payer_id=who)
        elif op == "settle":
            legs = domain.settle(amount, merchant_id=who, commission_bps=amount % 3000)
        else:
            legs = domain.payout(amount, merchant_id=who)
        assert domain.balanced(legs)
        after = {leg.account: balances[leg.account] + leg.amount for leg in legs}
        if any(domain.refusable(value, account) for account, value in after.items()):
            continue  # what the ledger's conditional UPDATE refuses
        balances.update(after)
    assert sum(balances.values()) == 0
    for account, value in balances.items():
        assert value >= 0 or account.kind in domain.NEGATIVE_ALLOWED
