"""Carriers, tracking statuses and tracking numbers. Pure."""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping

from mobimart.errors import DomainError

# The carriers a shop ships with; the code names the carrier in the API and in the carrier
# callback's path (`/logistics/carriers/{code}/events`).
CARRIERS: Mapping[str, str] = {
    "sf": "SF Express",
    "jd": "JD Logistics",
    "ems": "China Post EMS",
    "zto": "ZTO Express",
    "yto": "YTO Express",
    "sto": "STO Express",
    "yunda": "Yunda Express",
    "own": "The shop's own delivery",
}


class TrackingStatus(enum.StrEnum):
    picked_up = "picked_up"
    in_transit = "in_transit"
    out_for_delivery = "out_for_delivery"
    delivered = "delivered"
    exception = "exception"  # lost, damaged, refused, held at customs: the shop looks into it


class Source(enum.StrEnum):
    carrier = "carrier"
    staff = "staff"


# Carriers' numbers are 8 to 20 letters and digits (SF: "SF" + 12 digits, EMS: 13 with
# letters); 40 leaves room for a shop's own references.
_TRACKING_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9-]{3,39}")
# A carrier's clock may run a little ahead of ours; an event further in the future is a
# mistake that would sort wrongly on the timeline for good.
MAX_CLOCK_SKEW = dt.timedelta(minutes=10)


def carrier(code: str) -> str:
    if code not in CARRIERS:
        raise DomainError("unknown_carrier", f"Choose a carrier among {', '.join(CARRIERS)}.", 422)
    return code


def tracking_number(raw: str) -> str:
    """`sf 1234 5678-90` -> `SF12345678-90`: spaces go, letters go upper case."""
    number = "".join(raw.split()).upper()
    if not _TRACKING_NUMBER.fullmatch(number):
        raise DomainError(
            "invalid_tracking_number",
            "A tracking number is 4 to 40 letters, digits or dashes.",
            422,
        )
    return number


def occurred(at: dt.datetime | None, *, now: dt.datetime) -> dt.datetime:
    """When an event happened, in UTC: `now` when not said; never in the future."""
    if at is None:
        return now
    if at.tzinfo is None:
        raise DomainError("invalid_time", "Give the time with its UTC offset.", 422)
    at = at.astimezone(dt.UTC)
    if at > now + MAX_CLOCK_SKEW:
        raise DomainError("invalid_time", "A tracking event cannot be in the future.", 422)
    return at
