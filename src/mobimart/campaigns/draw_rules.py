"""Lucky draws, the pure part: the provably fair roll, prize bands and eligibility. No I/O.

Fairness. The seed is 64 hexadecimal characters (32 random bytes) and is treated as text
everywhere, so anyone can recompute with a few lines of Python or `openssl`:

    seed_hash = SHA-256(seed)                                   (published from the start)
    roll      = int(HMAC-SHA256(key=seed, msg=f"{draw_id}:{entry_id}"), 16) mod 1,000,000

Prizes, in `position` order, take consecutive ranges of the 1,000,000 possible rolls, each
as wide as its `chance_ppm`; a roll past the last range wins nothing. 2^256 mod 10^6 leaves
a bias below 10^-70 per roll: none that could ever be measured.
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

ROLLS = 1_000_000  # a roll is 0..999,999; chances are in millionths (ppm)
DEFAULT_ZONE = "Asia/Shanghai"  # the mall's: "once a day" restarts at local midnight
ONCE = "once"  # the period of a draw entered once per person for its whole run
MAX_ORDER_DAYS = 366


def new_seed() -> str:
    return secrets.token_hex(32)


def seed_hash(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def roll(seed: str, draw_id: int, entry_id: int) -> int:
    digest = hmac.new(seed.encode(), f"{draw_id}:{entry_id}".encode(), hashlib.sha256)
    return int(digest.hexdigest(), 16) % ROLLS


def revealed(closes_at: dt.datetime, now: dt.datetime) -> bool:
    """The seed is shown once nobody can enter any more: before that it would tell every
    future roll."""
    return now >= closes_at


# --- prize bands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    prize_id: int
    start: int  # the first roll that wins it
    end: int  # the first roll past it


def bands(prizes: Sequence[tuple[int, int]]) -> list[Band]:
    """(prize id, chance in ppm) in position order -> consecutive ranges from 0. Every chance
    is 1..1,000,000 and together they are at most 1,000,000, else ValueError."""
    out: list[Band] = []
    start = 0
    for prize_id, chance in prizes:
        check_chance(chance)
        out.append(Band(prize_id, start, start + chance))
        start += chance
        if start > ROLLS:
            raise ValueError("Together the chances may be at most 1,000,000 ppm (100 %).")
    return out


def check_chance(chance: int) -> None:
    if not 1 <= chance <= ROLLS:
        raise ValueError("A chance is 1 to 1,000,000 ppm (1,000,000 = 100 %).")


def band_of(table: Sequence[Band], value: int) -> Band | None:
    """The band a roll falls in, or None: no prize."""
    starts = [b.start for b in table]
    i = bisect.bisect_right(starts, value) - 1
    if i >= 0 and table[i].start <= value < table[i].end:
        return table[i]
    return None


# --- eligibility -----------------------------------------------------------------------------


class Refusal(enum.StrEnum):
    not_open = "not_open"
    closed = "closed"
    must_follow = "must_follow"
    min_order = "min_order"


@dataclass(frozen=True)
class Rules:
    """`Draw.rules` read and checked. `per_day`: once per person per local day in `zone`
    (else once per person for the whole draw); `must_follow`: follows the merchant's shop;
    `min_order_minor`: a paid order at the merchant of at least that much in the last
    `order_days` days."""

    per_day: bool = False
    zone: str = DEFAULT_ZONE
    must_follow: bool = False
    min_order_minor: int = 0
    order_days: int = 30

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"zone": self.zone}
        if self.per_day:
            out["per_day"] = 1
        if self.must_follow:
            out["must_follow"] = True
        if self.min_order_minor:
            out["min_order_minor"] = self.min_order_minor
            out["order_days"] = self.order_days
        return out


def _int(raw: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"`{key}` is a whole number from {low} to {high}.")
    return value


def parse_rules(raw: Mapping[str, Any]) -> Rules:
    """ValueError with a readable message for anything this module cannot apply."""
    unknown = set(raw) - {"per_day", "zone", "must_follow", "min_order_minor", "order_days"}
    if unknown:
        raise ValueError(f"Unknown draw rules: {', '.join(sorted(unknown))}.")
    per_day = _int(raw, "per_day", 0, 0, 1)
    zone = raw.get("zone", DEFAULT_ZONE)
    if not isinstance(zone, str) or zone not in _zones():
        raise ValueError("`zone` is a time zone name such as Asia/Shanghai.")
    must_follow = raw.get("must_follow", False)
    if not isinstance(must_follow, bool):
        raise ValueError("`must_follow` is true or false.")
    return Rules(
        per_day=per_day == 1,
        zone=zone,
        must_follow=must_follow,
        min_order_minor=_int(raw, "min_order_minor", 0, 0, 100_000_000),
        order_days=_int(raw, "order_days", 30, 1, MAX_ORDER_DAYS),
    )


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def zone_of(rules: Rules) -> ZoneInfo:
    try:
        return ZoneInfo(rules.zone)
    except ZoneInfoNotFoundError:  # a zone removed from the system's database since
        return ZoneInfo(DEFAULT_ZONE)


def period(rules: Rules, now: dt.datetime) -> str:
    """The key of the entry limit: the local date ("2026-12-01") for once a day, else once."""
    return now.astimezone(zone_of(rules)).date().isoformat() if rules.per_day else ONCE


def refusal(
    rules: Rules,
    *,
    now: dt.datetime,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    follows: bool,
    best_order_minor: int,
) -> Refusal | None:
    """Why this person may not enter now, or None. `best_order_minor`: their largest paid
    order at the merchant within the rules' window (0 without one)."""
    if now < opens_at:
        return Refusal.not_open
    if now >= closes_at:
        return Refusal.closed
    if rules.must_follow and not follows:
        return Refusal.must_follow
    if rules.min_order_minor and best_order_minor < rules.min_order_minor:
        return Refusal.min_order
    return None
