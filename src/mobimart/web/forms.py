"""Helpers shared by HTML form handlers."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import RedirectResponse

from mobimart.errors import DomainError
from mobimart.web.i18n import gettext_


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
