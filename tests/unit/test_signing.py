"""The timestamped HMAC shared by outgoing webhooks and incoming carrier callbacks."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from mobimart import signing

NOW = 1_800_000_000


def test_the_header_is_the_documented_hmac() -> None:
    body = b'{"a":1}'
    mac = hmac.new(b"s3cret", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert signing.sign("s3cret", NOW, body) == f"t={NOW},v1={mac}"


@given(secret=st.text(min_size=1), body=st.binary(), skew=st.integers(-300, 300))
def test_a_signature_verifies_within_five_minutes(secret: str, body: bytes, skew: int) -> None:
    header = signing.sign(secret, NOW + skew, body)
    assert signing.verify(secret, header, body, now=NOW)


@given(body=st.binary(min_size=1), flip=st.integers(0, 10_000))
def test_any_change_to_the_body_is_refused(body: bytes, flip: int) -> None:
    header = signing.sign("k", NOW, body)
    changed = bytearray(body)
    changed[flip % len(body)] ^= 0x01
    assert not signing.verify("k", header, bytes(changed), now=NOW)


def test_old_future_wrong_and_malformed_signatures_are_refused() -> None:
    body = b"{}"
    good = signing.sign("k", NOW, body)
    assert not signing.verify("k", signing.sign("k", NOW - 301, body), body, now=NOW)
    assert not signing.verify("k", signing.sign("k", NOW + 301, body), body, now=NOW)
    assert not signing.verify("other", good, body, now=NOW)
    for header in ("", "t=x,v1=ab", f"t={NOW}", "v1=ab", "garbage", f"t={NOW},v1=é☃"):
        assert not signing.verify("k", header, body, now=NOW), header


def test_one_matching_v1_among_several_is_enough_while_a_secret_changes() -> None:
    body = b"{}"
    new = signing.sign("new", NOW, body).split("v1=")[1]
    old = signing.sign("old", NOW, body).split("v1=")[1]
    header = f"t={NOW},v1={old},v1={new}"
    assert signing.verify("new", header, body, now=NOW)
    assert signing.verify("old", header, body, now=NOW)
    assert not signing.verify("third", header, body, now=NOW)
