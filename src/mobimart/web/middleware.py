"""Pure ASGI middleware: locale per request and security headers on every response."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobimart.web import i18n

# Pages load only their own scripts, styles and images; user content can never run script.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class LocaleAndSecurityHeaders:
    def __init__(self, app: ASGIApp, *, default_locale: str) -> None:
        self.app = app
        self.default_locale = default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        locale = i18n.pick_locale(request, self.default_locale)
        request.state.locale = locale
        i18n.activate(locale)
        is_page = not scope["path"].startswith(("/api/", "/static/", "/openapi.json", "/docs"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                if is_page:
                    headers.setdefault("Content-Security-Policy", _CSP)
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Content-Language", locale.replace("_", "-"))
                    headers.setdefault("Vary", "Accept-Language, Cookie")
            await send(message)

        await self.app(scope, receive, send_with_headers)
