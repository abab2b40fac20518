"""Jinja2 rendering for pages: translations, CSRF token, and the shell's context."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

import jinja2
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from mobimart.accounts.domain import mask_phone
from mobimart.errors import DomainError
from mobimart.text import money
from mobimart.web import i18n

CSRF_COOKIE = "mm_csrf"
CSRF_FIELD = "csrf_token"

_ROOT = Path(__file__).resolve().parent.parent
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(
        [_ROOT / "web" / "templates", *sorted(_ROOT.glob("*/templates"))]
    ),
    autoescape=True,
    extensions=["jinja2.ext.i18n"],
)
_env.install_gettext_callables(  # type: ignore[attr-defined]
    gettext=i18n.gettext_, ngettext=i18n.ngettext_, newstyle=True
)
templates = Jinja2Templates(env=_env)
templates.env.filters["money"] = money
templates.env.filters["mask_phone"] = lambda e164: mask_phone(e164) if e164 else ""
templates.env.globals["LOCALES"] = i18n.LOCALES
# The static mount's address is fixed; url_for would look it up among every route per call.
templates.env.globals["static"] = lambda path: f"/static/{path}"


def _csrf(request: Request) -> tuple[str, bool]:
    token = request.cookies.get(CSRF_COOKIE)
    if token and len(token) >= 32:
        return token, False
    return secrets.token_urlsafe(32), True


def verify_csrf(request: Request, submitted: str) -> None:
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise DomainError(
            "csrf_failed", "This form has expired; reload the page and try again.", 403
        )


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    token, fresh = _csrf(request)
    ctx = {
        "request": request,
        "csrf_token": token,
        "locale": getattr(request.state, "locale", "en"),
        "environment": request.app.state.settings.environment,
        # Counted per page by notifications.pages.unread_badge, for the tab bar.
        "unread_notifications": getattr(request.state, "unread_notifications", 0),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    if fresh:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response
