"""The FastAPI application: settings, database, routers, error handlers, static files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from mobimart import __version__
from mobimart.accounts import api as accounts_api
from mobimart.accounts import pages as accounts_pages
from mobimart.audit import api as audit_api
from mobimart.campaigns import (
    automations_api,
    automations_pages,
    campaigns_api,
    campaigns_pages,
    dlr_api,
    draws_api,
    draws_pages,
    links,
    places_api,
    places_pages,
    qr_api,
    qr_pages,
    segments_api,
    segments_pages,
    wifi_api,
    wifi_pages,
)
from mobimart.catalog import api as catalog_api
from mobimart.catalog import brand_api, browse
from mobimart.catalog import console as catalog_console
from mobimart.catalog import pages as catalog_pages
from mobimart.checkout import api as checkout_api
from mobimart.checkout import console as checkout_console
from mobimart.checkout import pages as checkout_pages
from mobimart.db import Database
from mobimart.errors import PROBLEM_CONTENT_TYPE, DomainError, problem
from mobimart.infra.pubsub import make_broker
from mobimart.logistics import api as logistics_api
from mobimart.logs import quiet_url_loggers
from mobimart.merchants import api as merchants_api
from mobimart.merchants import pages as merchants_pages
from mobimart.moderation import api as moderation_api
from mobimart.moderation import pages as moderation_pages
from mobimart.notifications import api as notifications_api
from mobimart.notifications import pages as notifications_pages
from mobimart.notifications import push_api, push_pages
from mobimart.notifications.pages import unread_badge
from mobimart.payments import api as payments_api
from mobimart.payments import instore_api
from mobimart.payments import pages as payments_pages
from mobimart.payments import service as payments
from mobimart.promotions import api as promotions_api
from mobimart.search import api as search_api
from mobimart.search import pages as search_pages
from mobimart.settings import Settings, get_settings
from mobimart.social import chat_api, chat_pages, feedback_api, feedback_pages, live, review_api
from mobimart.social import console as social_console
from mobimart.social import pages as social_pages
from mobimart.web import i18n, openapi
from mobimart.web.deps import SignInRequired
from mobimart.web.middleware import LocaleAndSecurityHeaders
from mobimart.web.templating import render
from mobimart.webhooks import api as webhooks_api

log = logging.getLogger("mobimart")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _problem_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return JSONResponse(
        problem(status, code, title, detail, **extra),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _error_page(request: Request, status: int, detail: str) -> Response:
    return render(
        request,
        "error.html",
        {"status": status, "detail": i18n.gettext_(detail), "user": None},
        status=status,
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if isinstance(exc, SignInRequired) and not _is_api(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
    if not _is_api(request):
        return _error_page(request, exc.status, exc.detail)
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after" in exc.extra:
        headers["Retry-After"] = str(exc.extra["retry_after"])
    return _problem_response(exc.status, exc.code, exc.detail, headers, **exc.extra)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not _is_api(request):
        return _error_page(request, exc.status_code, str(exc.detail))
    code = (
        HTTPStatus(exc.status_code).name.lower()
        if exc.status_code in HTTPStatus._value2member_map_
        else "error"
    )
    return _problem_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in exc.errors()
    ]
    detail = (
        "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors
        )
        or "Invalid request."
    )
    if not _is_api(request):
        return _error_page(request, 422, detail)
    return _problem_response(422, "validation_error", detail, errors=jsonable_encoder(errors))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log; the client learns nothing about internals.
    log.exception("unhandled error", extra={"path": request.url.path})
    if not _is_api(request):
        return _error_page(request, 500, "Something went wrong on our side.")
    return _problem_response(500, "internal_error", "Something went wrong on our side.")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    quiet_url_loggers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.is_production:  # the first shopper does not wait for the catalogue load
            async with app.state.db.session() as session:
                await browse.warm(session)
        await app.state.chat.start()
        try:
            yield
        finally:  # sockets closed and Redis let go even when shutdown is interrupted
            try:
                await app.state.chat.stop()
            finally:
                if hasattr(app.state, "sandbox"):
                    await app.state.sandbox.close()
                await app.state.db.dispose()

    app = FastAPI(
        title="Mobimart",
        version=__version__,
        description="Mobile-first commerce and interactive marketing. Errors are RFC 9457 "
        "problem+json; lists use cursor pagination (`?cursor=&limit=`).",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = Database(settings.database_url, null_pool=settings.db_pool == "null")
    # Chat sockets of this process; messages cross processes through Redis when configured.
    app.state.chat = live.Hub(
        make_broker(settings.redis_url, prefix=settings.redis_prefix), app.state.db
    )

    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(LocaleAndSecurityHeaders, default_locale=settings.default_locale)

    # Busiest first: routes are matched one by one, and each miss costs a few microseconds.
    routers = [
        (catalog_api, True),
        (search_api, True),
        (dlr_api, True),  # Kannel: two reports per campaign SMS
        (catalog_pages, False),
        (search_pages, False),
        (brand_api, True),
        (checkout_api, True),
        (payments_api, True),
        (instore_api, True),
        (logistics_api, True),
        (webhooks_api, True),
        (promotions_api, True),
        (accounts_api, True),
        (merchants_api, True),
        (audit_api, True),
        (chat_api, True),
        (accounts_pages, False),
        (checkout_pages, False),
        (checkout_console, False),
        (catalog_console, False),
        (merchants_pages, False),
        (payments_pages, False),
        (notifications_api, True),
        (notifications_pages, False),
        (push_api, True),
        (push_pages, False),
        (automations_api, True),
        (automations_pages, False),
        (chat_pages, False),
        (moderation_api, True),
        (moderation_pages, False),
        (feedback_api, True),
        (feedback_pages, False),
        (review_api, True),
        (social_pages, False),
        (social_console, False),
        (campaigns_api, True),
        (campaigns_pages, False),
        (links, False),
        (wifi_pages, False),
        (wifi_api, True),
        (places_pages, False),
        (places_api, True),
        (draws_api, True),
        (draws_pages, False),
        (qr_api, True),
        (qr_pages, False),
        (segments_api, True),
        (segments_pages, False),
    ]
    for module, is_api in routers:
        if is_api:
            app.include_router(module.router, prefix="/api/v1")
        else:
            # Every page's tab bar shows the unread count, rendered by the server.
            app.include_router(
                module.router, include_in_schema=False, dependencies=[Depends(unread_badge)]
            )
    app.mount(
        "/static",
        StaticFiles(packages=[("mobimart.web", "static")]),
        name="static",
    )
    if settings.payment_gateway == "sandbox":
        _mount_sandbox(app)
    openapi.install(app)
    return app


def _mount_sandbox(app: FastAPI) -> None:
    """The test double of a payment provider, at /sandbox-gateway (never in production)."""
    from mobimart.infra import http
    from mobimart.infra.payments.sandbox import create_sandbox_app

    _, our_public, provider_private, _ = payments.sandbox_keys()
    sandbox = create_sandbox_app(
        our_public_key=our_public,  # type: ignore[arg-type]
        provider_private_key=provider_private,  # type: ignore[arg-type]
        notify_client_factory=lambda: http.client(),
    )
    app.state.sandbox = sandbox.state.sandbox
    app.mount("/sandbox-gateway", sandbox)
