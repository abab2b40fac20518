"""The browser's random visitor cookie: links what someone did before signing in (a QR scan,
a short-link click) to their account once they sign in (`events.claim_visitor`)."""

from __future__ import annotations

import re
import secrets

from fastapi import Request, Response

VISITOR_COOKIE = "mm_vid"
# A year: long enough to credit an order placed weeks after a scan (the attribution window
# is 7 days by default, at most what a merchant configures), short of tracking for ever.
VISITOR_MAX_AGE = 365 * 24 * 3600
_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,32}")


def visitor_of(request: Request) -> str | None:
    """The request's visitor id, if it carries one this site could have made."""
    value = request.cookies.get(VISITOR_COOKIE, "")
    return value if _SHAPE.fullmatch(value) else None


def new_visitor() -> str:
    return secrets.token_urlsafe(16)  # 22 characters


def set_visitor(request: Request, response: Response, visitor: str) -> None:
    response.set_cookie(
        VISITOR_COOKIE,
        visitor,
        max_age=VISITOR_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
