"""Webhook signatures and retry timing. Pure.

A delivery carries `Mobimart-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256 of `<t>.<raw body>` under the endpoint's secret. Receivers recompute it, compare
in constant time and refuse timestamps older than five minutes (a replayed capture).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

EVENTS = (
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.completed",
    "order.cancelled",
    "payment.succeeded",
    "payment.refunded",
)
TOLERANCE_S = 300
# Minutes after each failed attempt: about a day in all, like the big providers do.
BACKOFF_MIN = (1, 5, 15, 60, 180, 360, 720)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: int) -> bool:
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_S:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def next_attempt(attempts: int, now: dt.datetime) -> dt.datetime | None:
    """When to try again after `attempts` failures; None once every retry is spent."""
    if attempts > len(BACKOFF_MIN):
        return None
    return now + dt.timedelta(minutes=BACKOFF_MIN[attempts - 1])
