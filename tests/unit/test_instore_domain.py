"""Face-to-face rules: an in-store payment balances and pays the merchant at once less
commission; payment codes are 18 digits, read back however they are typed, and stored keyed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mobimart.payments import domain


def test_in_store_money_is_available_at_once_less_commission() -> None:
    legs = domain.in_store(10_001, merchant_id=3, payer_id=7, commission_bps=500)
    assert {leg.account: leg.amount for leg in legs} == {
        domain.wallet(7): -10_001,
        domain.available(3): 9_501,
        domain.COMMISSION: 500,
    }
    assert domain.pending(3) not in {leg.account for leg in legs}


@given(amount=st.integers(1, 10_000_000), bps=st.integers(0, 10_000))
def test_in_store_legs_balance_and_only_the_wallet_pays(amount: int, bps: int) -> None:
    legs = domain.in_store(amount, merchant_id=1, payer_id=2, commission_bps=bps)
    assert domain.balanced(legs)
    assert all(leg.amount != 0 for leg in legs)  # no empty entries in the ledger
    assert [leg.account for leg in legs if leg.amount < 0] == [domain.wallet(2)]


def test_payment_codes_are_eighteen_digits_and_differ() -> None:
    codes = {domain.new_payment_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 18
        assert code.isdigit()
        assert code[0] != "0"


def test_a_code_is_read_back_however_it_was_typed() -> None:
    code = "283746501928374650"
    assert domain.normalize_payment_code("2837 4650 1928 3746 50") == code
    assert domain.normalize_payment_code("2837-4650-1928-3746-50") == code
    for bad in (
        "",
        "12345",
        code + "1",
        "28374650192837465x",
        "２８３７４６５０１９２８３７４６５０",
    ):
        assert domain.normalize_payment_code(bad) is None


def test_code_digests_depend_on_the_key() -> None:
    code = domain.new_payment_code()
    one = domain.payment_code_digest("key-one", code)
    assert one == domain.payment_code_digest("key-one", code)
    assert one != domain.payment_code_digest("key-two", code)
    assert code not in one
    assert len(one) == 64
