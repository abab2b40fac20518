"""Helpers shared by HTML form handlers."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi.responses import RedirectResponse

from mobimart.errors import DomainError
from mobimart.web.i18n import gettext_
from mobimart.web.i18n import stored as _

MAX_LINK = 500  # the link columns' length (campaigns, QR codes, automations)
# Whitespace (a tab or newline hides the real address in a preview), every control
# character, the backslash (browsers read it as a slash), and the invisible and
# right-to-left marks that make an address read as another.
_UNSAFE_IN_LINK = re.compile(r"[\x00-\x20\x7f-\x9f\s\\\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
LINK_RULE = _("A link is a path on this site (/…) or an https:// address.")


def safe_next(target: str | None, default: str = "/me") -> str:
    """Only same-site paths: an open redirect would let a phishing link borrow our sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def see_other(url: str, notice: str | None = None) -> RedirectResponse:
    if notice:
        url += ("&" if "?" in url else "?") + "notice=" + quote(notice)
    return RedirectResponse(url, status_code=303)


def message_of(exc: DomainError) -> str:
    """The error's text in the page's language (catalogued messages are translated)."""
    return gettext_(exc.detail)


def safe_link(url: str) -> str:
    """A link we send people through (a campaign's short link, a QR code, an automation's
    message): a path on this site, or an https address without a user name. Anything else
    would make our trusted short domain a redirector: `javascript:` and `data:` run script,
    `http:` can be rewritten on the shop's Wi-Fi, `//host` and `/\\host` leave the site, and
    `https://mobimart.example@evil.example/` reads as ours but goes to evil.example.
    Leading and trailing spaces are dropped; DomainError `invalid_link` (422) otherwise."""
    url = url.strip()
    if not url or len(url) > MAX_LINK or _UNSAFE_IN_LINK.search(url):
        raise DomainError("invalid_link", LINK_RULE, 422)
    if url.startswith("/") and not url.startswith("//"):
        return url
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - a port that is not a number raises ValueError
    except ValueError:
        raise DomainError("invalid_link", LINK_RULE, 422) from None
    if (
        parts.scheme.lower() == "https"
        and url[:8].lower() == "https://"
        and hostname
        and "@" not in parts.netloc
    ):
        return url
    raise DomainError("invalid_link", LINK_RULE, 422)


def parse_local(value: str, zone: ZoneInfo, *, error: DomainError) -> dt.datetime:
    """A `datetime-local` field ("2026-12-12T09:30") read in `zone`, as aware UTC; `error`
    when it is not a date and time or falls outside what Python can hold once moved to UTC
    (0001-01-01T00:00 in UTC+8 is before year 1: OverflowError)."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:  # the field's usual form; an explicit offset is kept
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise error from None
