"""Campaign texts: the variables a template may use, checking a template, rendering it for
one person, the opt-out hint an SMS must carry, and what a send will cost. No I/O.

A template is Python format syntax restricted to three bare names: `{name}`, `{shop}` and
`{link}`; `{{` and `}}` are literal braces. That restriction is what makes `render` both
safe (no `{name.__class__}`, no format specs) and fast: a checked template is handed to
`str.format_map`, which runs in C — about 0.3 µs a message, so a million recipients cost a
third of a second of text work."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from mobimart.campaigns import limits

VARIABLES = ("name", "shop", "link")
# What each person's link looks like in the text: `{base_url}/s/` and an 11-character token
# (secrets.token_urlsafe(8)); the estimate counts a link of exactly this shape.
TOKEN_LENGTH = 11
MAX_TEMPLATE = 1000
MAX_SMS_PARTS = 6  # carriers reassemble long messages up to here; beyond, parts go missing

# China's rules for marketing SMS ask for a way out in every message; "回T退订" is what
# people there know (T, TD, 退订 and STOP all opt out, see the inbound handler).
OPT_OUT_ZH = "回T退订"
OPT_OUT_EN = "Reply STOP to opt out"
_HAS_OPT_OUT = re.compile(r"退订|\bSTOP\b|\bTD\b")
# "Hi {name}" for someone without a display name: a neutral address in the text's language.
NEUTRAL_NAME_ZH = "亲"
NEUTRAL_NAME_EN = "there"

_formatter = string.Formatter()


def _parse(template: str) -> list[tuple[str, str | None]]:
    """(literal text, variable or None) pieces; a ValueError with a readable message for a
    brace without its partner or anything but a bare known name between braces."""
    try:
        pieces = list(_formatter.parse(template))
    except ValueError:
        raise ValueError(
            "A brace without its partner: write {name}, {shop} or {link} for a variable and "
            "{{ or }} for a brace itself."
        ) from None
    out: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in pieces:
        if field is None:
            out.append((literal, None))
            continue
        if field not in VARIABLES or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            known = ", ".join("{" + v + "}" for v in VARIABLES)
            raise ValueError(f"Unknown variable {shown}: a template may use {known}.")
        out.append((literal, field))
    return out


def check(template: str) -> None:
    """Raise ValueError with a readable message unless `template` is a valid template."""
    _compiled(template)


def variables(template: str) -> set[str]:
    """The variables a (valid) template uses."""
    return {field for _literal, field in _parse(template) if field is not None}


@lru_cache(maxsize=256)
def _compiled(template: str) -> str:
    """The template, once checked (a campaign has one template; the cache holds the
    campaigns being sent, so the check runs once per campaign and process, not per person)."""
    if len(template) > MAX_TEMPLATE:
        raise ValueError(f"A template has at most {MAX_TEMPLATE} characters.")
    _parse(template)
    return template


def render(template: str, values: Mapping[str, str]) -> str:
    """The text for one person. `values` holds every variable the template uses
    (`name_or_greeting` gives `name`); a template is checked on its first use."""
    return _compiled(template).format_map(values)


def has_opt_out(template: str) -> bool:
    return _HAS_OPT_OUT.search(template) is not None


def with_opt_out(template: str) -> str:
    """An SMS template with the opt-out hint appended unless it already says how to opt
    out: in Chinese when the text is not plain GSM-7 (it is sent as UCS-2 anyway), else in
    English, so an English text does not turn UCS-2 (70 characters a part instead of 160)
    for the sake of the hint."""
    if has_opt_out(template):
        return template
    hint = OPT_OUT_EN if limits.is_gsm7(template) else OPT_OUT_ZH
    return f"{template.rstrip()} {hint}"


def without_opt_out(template: str) -> str:
    """The template without a hint `with_opt_out` appended (a draft switched from SMS to push
    or inbox, where people opt out in their settings instead)."""
    for hint in (OPT_OUT_EN, OPT_OUT_ZH):
        if template.endswith(" " + hint):
            return template.removesuffix(" " + hint)
    return template


def name_or_greeting(display_name: str, template: str) -> str:
    """`{name}` for one person: their display name, or a neutral address in the template's
    language when they have none."""
    name = display_name.strip()
    if name:
        return name
    return NEUTRAL_NAME_EN if limits.is_gsm7(template) else NEUTRAL_NAME_ZH


def sample_link(base_url: str) -> str:
    """A link of the length every person's will have."""
    return f"{base_url.rstrip('/')}/s/{'x' * TOKEN_LENGTH}"


def short_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/s/{token}"


@dataclass(frozen=True)
class Estimate:
    """One message as a sample person gets it, its SMS size, and the send's cost (the
    per-person size varies only with the length of `{name}`)."""

    text: str
    encoding: str  # GSM-7 | UCS-2
    characters: int  # septets or UTF-16 units, as the gateway counts them
    parts: int
    recipients: int
    cost_per_part_minor: int
    cost_minor: int


def estimate(
    template: str,
    *,
    recipients: int,
    cost_per_part_minor: int,
    sample_values: Mapping[str, str],
) -> Estimate:
    """What sending `template` as SMS to `recipients` people costs: the opt-out hint is
    counted, since it goes out with every message; `sample_values["link"]` should be a
    `sample_link` so the link is counted at its real length."""
    text = render(with_opt_out(template), sample_values)
    size = limits.sms_size(text)
    return Estimate(
        text=text,
        encoding=size.encoding,
        characters=size.units,
        parts=size.parts,
        recipients=recipients,
        cost_per_part_minor=cost_per_part_minor,
        cost_minor=recipients * size.parts * cost_per_part_minor,
    )
