import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobimart.accounts import domain
from mobimart.errors import DomainError


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("+44 7400 123456", "+447400123456"),
    ],
)
def test_normalize_phone_gives_e164(raw: str, e164: str) -> None:
    assert domain.normalize_phone(raw, "CN") == e164


@pytest.mark.parametrize("raw", ["", "abc", "123", "1380013800", "+86 10 6552 9988", "1" * 30])
def test_normalize_phone_refuses_non_mobile_or_invalid(raw: str) -> None:
    with pytest.raises(DomainError) as err:
        domain.normalize_phone(raw, "CN")
    assert err.value.code == "invalid_phone"
    assert err.value.status == 422


def test_mask_phone_hides_the_middle() -> None:
    assert domain.mask_phone("+8613812345678") == "138****5678"
    assert domain.mask_phone("+447400123456") == "+44 740****3456"


@given(st.integers(min_value=13000000000, max_value=19999999999))
def test_masked_phone_never_contains_the_middle_digits(n: int) -> None:
    digits = str(n)
    assert domain.mask_phone(f"+86{digits}") == f"{digits[:3]}****{digits[-4:]}"


# --- resident ID ---------------------------------------------------------------------------


def test_known_valid_resident_id_with_x() -> None:
    assert domain.validate_resident_id("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("110105194912310021", "check digit"),
        ("11010519491331002X", "not a date"),
        ("1101051949123100", "17 digits"),
        ("11010530001231002X", "impossible"),
        ("A1010519491231002X", "17 digits"),
    ],
)
def test_invalid_resident_ids_are_refused_with_reason(raw: str, why: str) -> None:
    with pytest.raises(DomainError) as err:
        domain.validate_resident_id(raw, today=dt.date(2026, 1, 1))
    assert err.value.code == "invalid_id_number"
    assert why in err.value.detail


@given(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31)),
    st.integers(0, 999),
    st.sampled_from(["110105", "310101", "440305"]),
)
def test_generated_ids_validate_and_any_single_digit_change_is_caught(
    born: dt.date, seq: int, region: str
) -> None:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    value = first17 + domain.resident_id_check_char(first17)
    assert domain.validate_resident_id(value, today=dt.date(2026, 1, 1)) == value
    # MOD 11-2 detects every single-digit substitution in the sequence part.
    changed = first17[:14] + str((int(first17[14]) + 1) % 10) + first17[15:] + value[17]
    with pytest.raises(DomainError):
        domain.validate_resident_id(changed, today=dt.date(2026, 1, 1))


def test_mask_id_number() -> None:
    assert domain.mask_id_number("11010519491231002X") == "110***********002X"


# --- unified social credit code ----------------------------------------------------------------


def test_known_valid_uscc() -> None:
    assert domain.validate_uscc("91350100m000100y43") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("91350100M000100Y44", "check character"),
        ("91350100M000100Y4", "18 characters"),
        ("91350100M0001O0Y43", "18 characters"),  # letter O is not in the charset
        ("91AB0100M000100Y43", "region code"),
    ],
)
def test_invalid_uscc_refused(raw: str, why: str) -> None:
    with pytest.raises(DomainError) as err:
        domain.validate_uscc(raw)
    assert err.value.code == "invalid_licence_number"
    assert why in err.value.detail


@given(st.text(alphabet=domain.USCC_CHARSET, min_size=11, max_size=11))
def test_uscc_check_char_roundtrip(tail: str) -> None:
    first17 = "91" + "310000" + tail[:9]
    code = first17 + domain.uscc_check_char(first17)
    assert domain.validate_uscc(code) == code
    wrong = domain.USCC_CHARSET[(domain.USCC_CHARSET.index(code[17]) + 1) % 31]
    with pytest.raises(DomainError):
        domain.validate_uscc(code[:17] + wrong)


# --- one-time codes and passwords ----------------------------------------------------------------


def test_new_otp_is_six_digits_and_varies() -> None:
    codes = {domain.new_otp() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190


def test_otp_digest_binds_code_to_number_and_secret() -> None:
    a = domain.otp_digest("s", "phone-a", "123456")
    assert a == domain.otp_digest("s", "phone-a", "123456")
    assert a != domain.otp_digest("s", "phone-b", "123456")
    assert a != domain.otp_digest("t", "phone-a", "123456")
    assert "123456" not in a


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"consumed": True}, "code_used"),
        ({"attempts": 5}, "code_locked"),
        ({"expires_at": NOW}, "code_expired"),
        ({}, None),
    ],
)
def test_otp_failure(kwargs: dict[str, object], code: str | None) -> None:
    args: dict[str, object] = {
        "now": NOW,
        "expires_at": NOW + dt.timedelta(minutes=1),
        "consumed": False,
        "attempts": 4,
        "max_attempts": 5,
    }
    failure = domain.otp_failure(**{**args, **kwargs})  # type: ignore[arg-type]
    assert (failure.code if failure else None) == code


@pytest.mark.parametrize("password", ["short", "12345678901", "x" * 129])
def test_password_policy_refuses(password: str) -> None:
    with pytest.raises(DomainError):
        domain.check_password_policy(password)


def test_password_policy_accepts_reasonable() -> None:
    domain.check_password_policy("correct horse 7")


@pytest.mark.parametrize(
    ("display_name", "shown"),
    [
        ("Han Meimei", "H***i"),
        ("  Alice Wong ", "A***g"),
        ("李雷", "李*"),
        ("X", "X*"),
        ("", "Shopper"),
    ],
)
def test_others_see_a_name_with_its_middle_hidden(display_name: str, shown: str) -> None:
    assert domain.public_name(display_name) == shown
