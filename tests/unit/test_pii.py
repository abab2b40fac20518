import base64

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from mobimart.infra.pii import KeyError_, Vault, new_key_spec, parse_keys

K1 = "k1:" + base64.urlsafe_b64encode(b"1" * 32).decode()
K2 = "k2:" + base64.urlsafe_b64encode(b"2" * 32).decode()


@given(st.text(max_size=200))
def test_roundtrip_and_ciphertext_hides_plaintext(value: str) -> None:
    vault = Vault(K1, "h")
    token = vault.encrypt(value)
    assert vault.decrypt(token) == value
    assert token.startswith("k1:")
    if len(value) >= 4:
        assert value not in token


def test_same_value_encrypts_differently_but_hashes_equal() -> None:
    vault = Vault(K1, "h")
    assert vault.encrypt("+8613800138000") != vault.encrypt("+8613800138000")
    assert vault.lookup_hash("+8613800138000") == vault.lookup_hash("+8613800138000")
    assert vault.lookup_hash("+8613800138000") != Vault(K1, "other").lookup_hash("+8613800138000")


def test_old_key_still_decrypts_after_rotation_and_new_values_use_the_first_key() -> None:
    old = Vault(K1, "h")
    token = old.encrypt("secret")
    rotated = Vault(f"{K2},{K1}", "h")
    assert rotated.decrypt(token) == "secret"
    assert rotated.key_id_of(rotated.encrypt("x")) == "k2"
    assert rotated.key_id_of(token) == "k1"


def test_value_under_a_removed_key_fails_loudly() -> None:
    token = Vault(K1, "h").encrypt("secret")
    with pytest.raises(KeyError_):
        Vault(K2, "h").decrypt(token)


def test_tampering_is_detected() -> None:
    vault = Vault(K1, "h")
    blob = bytearray(vault.encrypt_bytes(b"document"))
    blob[-1] ^= 1
    with pytest.raises(InvalidTag):
        vault.decrypt_bytes(bytes(blob))


@pytest.mark.parametrize(
    "spec", ["", "nokey", "k1:" + base64.urlsafe_b64encode(b"short").decode(), f"{K1},{K1}"]
)
def test_bad_key_specs_are_refused(spec: str) -> None:
    with pytest.raises(KeyError_):
        parse_keys(spec)


def test_keygen_makes_a_usable_key() -> None:
    spec = new_key_spec("k9")
    assert parse_keys(spec)[0][0] == "k9"
    assert Vault(spec, "h").decrypt(Vault(spec, "h").encrypt("ok")) == "ok"
