"""RSA2 signing of gateway parameters: what is covered, and that any change breaks it."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from mobimart.infra.payments.gateway import canonical, sign, verify

PARAMS = {
    "trade_no": "T1001",
    "amount_minor": "1234",
    "currency": "CNY",
    "app_id": "2021000000000001",
    "subject": "两件 T-shirt & socks",
}


@pytest.fixture(scope="module")
def key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def signed(params: dict[str, str], key: RSAPrivateKey) -> dict[str, str]:
    return {**params, "sign_type": "RSA2", "sign": sign(params, key)}


def test_canonical_sorts_keys_and_skips_signature_fields_and_empty_values() -> None:
    params = {"b": "2", "a": "1", "sign": "xyz", "sign_type": "RSA2", "empty": "", "c": "x=y"}
    assert canonical(params) == "a=1&b=2&c=x=y"


def test_signature_round_trips(key: RSAPrivateKey) -> None:
    params = signed(PARAMS, key)
    assert verify(params, key.public_key())
    # The signature fields are not covered, so a different sign_type label does not matter.
    assert verify({**params, "sign_type": "RSA"}, key.public_key())


def test_tampered_amount_fails(key: RSAPrivateKey) -> None:
    params = signed(PARAMS, key)
    assert not verify({**params, "amount_minor": "1"}, key.public_key())


def test_added_field_fails(key: RSAPrivateKey) -> None:
    params = signed(PARAMS, key)
    assert not verify({**params, "refund_no": "R1"}, key.public_key())


def test_wrong_key_fails(key: RSAPrivateKey, other_key: RSAPrivateKey) -> None:
    params = signed(PARAMS, other_key)
    assert not verify(params, key.public_key())


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not base64 at all!",
        "AAAA",
        base64.b64encode(b"\0" * 256).decode(),
        base64.b64encode(b"\xff" * 300).decode(),
        "=" * 8,
        "五六七八",
    ],
)
def test_garbage_signature_returns_false(key: RSAPrivateKey, bad: str) -> None:
    assert not verify({**PARAMS, "sign": bad}, key.public_key())


def test_missing_signature_returns_false(key: RSAPrivateKey) -> None:
    assert not verify(PARAMS, key.public_key())


_text = st.text(st.characters(codec="utf-8"), max_size=20)
_params = st.dictionaries(
    _text.filter(lambda k: k not in {"sign", "sign_type"}), _text, min_size=1, max_size=8
)


@settings(max_examples=60, deadline=None)  # RSA signing time varies with machine load
@given(params=_params, data=st.data())
def test_any_params_round_trip_and_any_single_change_fails(
    key: RSAPrivateKey, params: dict[str, str], data: st.DataObject
) -> None:
    message = signed(params, key)
    assert verify(message, key.public_key())

    name = data.draw(st.sampled_from(sorted(params)), label="changed key")
    value = data.draw(_text.filter(lambda v: v != params[name]), label="new value")
    assert not verify({**message, name: value}, key.public_key())
