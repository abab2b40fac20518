"""Bodies signed with a shared secret and a timestamp. Pure.

One scheme both ways: merchants' webhooks going out and carriers' tracking callbacks coming
in. The header is `t=<unix seconds>,v1=<hex>` where the hex is HMAC-SHA256 of
`<t>.<raw body>` under the secret. A receiver recomputes it, compares in constant time and
refuses timestamps more than five minutes away from its clock (a replayed capture). Several
`v1=` values may be sent while a secret is being replaced; one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(
    secret: str, header: str, body: bytes, *, now: int, tolerance_s: int = TOLERANCE_S
) -> bool:
    timestamp: int | None = None
    given: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == "v1":
            given.append(value)
    if timestamp is None or not given or abs(now - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, timestamp, body).encode()
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may hold anything.
    return any(hmac.compare_digest(expected, value.encode()) for value in given)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def token_digest(token: str) -> str:
    """How a random token that grants something (a sign-in, a guest cart, a share link) is
    stored: its SHA-256. The token is long and random, so no key or salt is needed, and a
    leaked table grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()
