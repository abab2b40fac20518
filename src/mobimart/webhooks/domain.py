"""Webhook events and retry timing. Pure.

A delivery carries `Mobimart-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256 of `<t>.<raw body>` under the endpoint's secret (`mobimart.signing`, the scheme
carriers' callbacks use too). Receivers recompute it, compare in constant time and refuse
timestamps older than five minutes (a replayed capture); docs/webhooks.md shows how.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

EVENTS = (
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.completed",
    "order.cancelled",
    "payment.succeeded",
    "payment.refunded",
)
# Minutes after each failed attempt: about a day in all, like the big providers do.
BACKOFF_MIN = (1, 5, 15, 60, 180, 360, 720)


def next_attempt(attempts: int, now: dt.datetime) -> dt.datetime | None:
    """When to try again after `attempts` failures; None once every retry is spent."""
    if attempts > len(BACKOFF_MIN):
        return None
    return now + dt.timedelta(minutes=BACKOFF_MIN[attempts - 1])


def public(address: str) -> bool:
    """True for an address on the public internet: a merchant's webhook URL must not make our
    worker call into our own network (loopback, private ranges, link-local metadata services)."""
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_global
    except ValueError:
        return False
