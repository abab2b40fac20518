"""The segment rule language, pure: a segment is `match` ("all" or "any") over a list of
conditions, each a small dict such as

    {"kind": "bought_in_category", "category_id": 7, "days": 30}
    {"kind": "has_consent", "channel": "sms"}
    {"kind": "scanned_qr", "days": 14, "not": true}

validated here into typed conditions with readable errors. Each condition knows which event
kinds it reads (so an event re-evaluates only the segments it can change) and whether it has a
time window (so a member is re-checked when the event that qualified them ages out). Turning
rules into SQL is segments.py's work."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MATCHES = ("all", "any")
MAX_CONDITIONS = 20
MAX_DAYS = 3650  # ten years: longer windows are "ever"
MAX_ID = 2_147_483_647
MAX_AMOUNT_MINOR = 10**12

# Pseudo event kinds for changes that are not marketing events: a consent recorded or
# withdrawn, a brand or shop followed or unfollowed. Their owners call
# `segments.on_event(session, user_id=..., kind=CONSENT | FOLLOW)`.
CONSENT = "consent"
FOLLOW = "follow"

CONSENT_CHANNELS = ("sms", "push", "in_app")
# The channel a person first came through, from the kind of their earliest marketing event;
# a person with none came directly.
FIRST_CHANNEL_OF_KIND = {
    "qr_scan": "qr",
    "link_click": "sms",
    "wifi_signup": "wifi",
    "geofence_enter": "geo",
}
FIRST_CHANNELS = ("qr", "sms", "wifi", "geo", "direct")


class RuleError(ValueError):
    """A rule that cannot be used; the message says which condition and why."""


@dataclass(frozen=True)
class Param:
    name: str
    required: bool = True
    choices: tuple[str, ...] = ()  # a text parameter; otherwise a positive whole number
    maximum: int = MAX_ID

    @property
    def is_text(self) -> bool:
        return bool(self.choices)


@dataclass(frozen=True)
class Spec:
    kind: str
    params: tuple[Param, ...]
    reads: frozenset[str]  # event kinds (and CONSENT / FOLLOW) that can change it

    @property
    def windowed(self) -> bool:
        return any(p.name == "days" for p in self.params)


_DAYS = Param("days", maximum=MAX_DAYS)
_ORDERS = frozenset({"order_paid"})
SPECS: dict[str, Spec] = {
    s.kind: s
    for s in (
        Spec(
            "bought_in_category",
            (Param("category_id"), _DAYS),
            _ORDERS,
        ),
        Spec("bought_from_shop", (_DAYS,), _ORDERS),
        Spec(
            "viewed_product",
            (Param("product_id", required=False), _DAYS),
            frozenset({"product_view"}),
        ),
        Spec(
            "scanned_qr",
            (Param("qr_code_id", required=False), _DAYS),
            frozenset({"qr_scan"}),
        ),
        Spec(
            "joined_wifi",
            (Param("portal_id"),),
            frozenset({"wifi_signup"}),
        ),
        Spec(
            "in_geofence",
            (Param("geofence_id"), _DAYS),
            frozenset({"geofence_enter"}),
        ),
        Spec("follows_brand", (Param("brand_id"),), frozenset({FOLLOW})),
        Spec(
            "follows_shop",
            (Param("shop_id", required=False),),
            frozenset({FOLLOW}),
        ),
        Spec(
            "first_channel",
            (Param("channel", choices=FIRST_CHANNELS),),
            frozenset(FIRST_CHANNEL_OF_KIND),
        ),
        Spec(
            "has_consent",
            (Param("channel", choices=CONSENT_CHANNELS),),
            frozenset({CONSENT}),
        ),
        Spec(
            "spent_at_least",
            (Param("amount_minor", maximum=MAX_AMOUNT_MINOR), _DAYS),
            _ORDERS,
        ),
        Spec(
            "clicked_campaign",
            (Param("campaign_id", required=False), _DAYS),
            frozenset({"link_click"}),
        ),
    )
}
KINDS = tuple(SPECS)


@dataclass(frozen=True)
class Condition:
    """One validated condition: `values` holds its parameters (ints, or text for choices;
    an optional parameter left out is absent)."""

    kind: str
    values: Mapping[str, int | str] = field(default_factory=dict)
    negate: bool = False

    @property
    def spec(self) -> Spec:
        return SPECS[self.kind]

    @property
    def days(self) -> int | None:
        days = self.values.get("days")
        return days if isinstance(days, int) else None

    def int_value(self, name: str) -> int | None:
        value = self.values.get(name)
        return value if isinstance(value, int) else None

    def text_value(self, name: str) -> str:
        return str(self.values.get(name, ""))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, **self.values}
        if self.negate:
            out["not"] = True
        return out


@dataclass(frozen=True)
class Rules:
    match: str
    conditions: tuple[Condition, ...]

    @property
    def reads(self) -> frozenset[str]:
        """Event kinds whose recording may change who matches."""
        return frozenset().union(*(c.spec.reads for c in self.conditions))

    @property
    def windowed(self) -> tuple[Condition, ...]:
        """Conditions that hold only while an event is recent enough."""
        return tuple(c for c in self.conditions if c.days is not None)

    @property
    def entry_by_ageing(self) -> bool:
        """True when someone can become a member just by time passing (a negated window:
        "not scanned in 14 days"): no event announces that, so a sweep re-evaluates."""
        return any(c.negate for c in self.windowed)

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.conditions]


def _number(value: Any, param: Param, where: str) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()[:20])  # from a plain HTML form ("²" is a digit, not a number)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= param.maximum:
        raise RuleError(f"{where}: {param.name} must be a whole number from 1 to {param.maximum}.")
    return value


def _text(value: Any, param: Param, where: str) -> str:
    if not isinstance(value, str) or value.strip() not in param.choices:
        raise RuleError(f"{where}: {param.name} must be one of {', '.join(param.choices)}.")
    return value.strip()


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("on", "true", "1", 1, 0, "false", "0", ""):  # checkbox and form values
        return value in ("on", "true", "1", 1)
    raise RuleError(f"{where}: not must be true or false.")


def parse_condition(raw: Any, position: int = 1) -> Condition:
    where = f"Condition {position}"
    if not isinstance(raw, Mapping):
        raise RuleError(f"{where}: expected an object with a kind.")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in SPECS:
        raise RuleError(f"{where}: kind must be one of {', '.join(KINDS)}.")
    spec = SPECS[kind]
    where = f"{where} ({kind})"
    known = {p.name for p in spec.params} | {"kind", "not"}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        raise RuleError(f"{where}: unknown parameter {', '.join(unknown)}.")
    values: dict[str, int | str] = {}
    for param in spec.params:
        value = raw.get(param.name)
        if value is None or value == "":
            if param.required:
                raise RuleError(f"{where}: {param.name} is required.")
            continue
        values[param.name] = (
            _text(value, param, where) if param.is_text else _number(value, param, where)
        )
    return Condition(kind, values, _flag(raw.get("not", False), where))


def parse(match: Any, conditions: Any) -> Rules:
    """Validate a segment's rules; RuleError (a ValueError) says what is wrong."""
    if match not in MATCHES:
        raise RuleError("Match must be all or any.")
    if not isinstance(conditions, Sequence) or isinstance(conditions, str):
        raise RuleError("Rules must be a list of conditions.")
    if not 1 <= len(conditions) <= MAX_CONDITIONS:
        raise RuleError(f"A segment needs 1 to {MAX_CONDITIONS} conditions.")
    return Rules(match, tuple(parse_condition(c, n) for n, c in enumerate(conditions, 1)))
