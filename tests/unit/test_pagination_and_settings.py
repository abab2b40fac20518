import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mobimart.errors import DomainError
from mobimart.settings import Settings
from mobimart.web.pagination import PageParams, decode_cursor, encode_cursor, make_page
from mobimart.web.schemas import MAX_ID


@given(st.integers(min_value=1, max_value=MAX_ID))
def test_cursor_roundtrip(n: int) -> None:
    assert decode_cursor(encode_cursor(n)) == n


def test_cursor_beyond_any_id_is_refused() -> None:
    # It would overflow the database's integer: a 422, never a 500.
    with pytest.raises(DomainError):
        decode_cursor(encode_cursor(MAX_ID + 1))


@pytest.mark.parametrize(
    "bad", ["", "x", "eyJiZWZvcmUiOiAtMX0", "bnVsbA", "eyJiZWZvcmUiOiB0cnVlfQ"]
)
def test_bad_cursors_are_a_clear_422(bad: str) -> None:
    with pytest.raises(DomainError) as err:
        decode_cursor(bad)
    assert (err.value.code, err.value.status) == ("invalid_cursor", 422)


def test_make_page_sets_next_cursor_only_when_more_rows_exist() -> None:
    params = PageParams(before_id=None, limit=2)
    page = make_page([5, 4, 3], params, convert=str, key=lambda r: r)
    assert page.items == ["5", "4"]
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == 4
    assert make_page([5, 4], params, convert=str, key=lambda r: r).next_cursor is None


def test_production_refuses_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOBIMART_SECRET_KEY")
    with pytest.raises(ValidationError, match="MOBIMART_SECRET_KEY"):
        Settings(
            environment="production",
            _env_file=None,  # type: ignore[call-arg]
            pii_keys="k1:" + "A" * 43,
            pii_hash_key="real",
        )


def test_production_starts_with_real_secrets() -> None:
    settings = Settings(
        environment="production",
        _env_file=None,  # type: ignore[call-arg]
        secret_key="a-real-secret-of-some-length",
        pii_keys="k1:" + "A" * 43,
        pii_hash_key="real",
        sms_inbound_secret="a-real-inbound-secret",
        carrier_secret="a-real-carrier-secret",
        sms_dlr_secret="a-real-dlr-secret",
        payment_gateway="none",
    )
    assert settings.is_production


def test_production_refuses_the_sandbox_gateway() -> None:
    with pytest.raises(ValidationError, match="sandbox payment gateway"):
        Settings(
            environment="production",
            _env_file=None,  # type: ignore[call-arg]
            secret_key="a-real-secret-of-some-length",
            pii_keys="k1:" + "A" * 43,
            pii_hash_key="real",
            sms_inbound_secret="a-real-inbound-secret",
            carrier_secret="a-real-carrier-secret",
            sms_dlr_secret="a-real-dlr-secret",
        )
