"""Web Push on the site: the service worker at the root, and the "Notifications on this
device" block of the Me page (turn on, remove a device, send a test). Turning on needs the
browser's Push API (static/push.js); removing and testing are plain forms."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mobimart.errors import Conflict, DomainError
from mobimart.notifications import push
from mobimart.web.deps import PageUser, Session
from mobimart.web.forms import see_other
from mobimart.web.schemas import IdPath
from mobimart.web.templating import verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
_SW = Path(__file__).resolve().parent.parent / "web" / "static" / "sw.js"
_BACK = "/me?push={}#push"


@lru_cache(maxsize=1)
def _service_worker() -> bytes:
    return _SW.read_bytes()


@router.get("/sw.js")
async def service_worker() -> Response:
    """Served from the root, not /static: a worker controls only the pages under the path
    it is served from, and notifications may link to any page of the site."""
    return Response(
        _service_worker(),
        media_type="text/javascript",
        # Browsers check for a new worker at most daily anyway; no-cache makes a deploy's
        # change reach them at the next navigation.
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.post("/me/push-subscriptions")
async def subscribe(
    request: Request,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    endpoint: Annotated[str, Form(min_length=10, max_length=1000)],
    p256dh: Annotated[str, Form(max_length=88)],
    auth: Annotated[str, Form(max_length=24)],
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        await push.subscribe(
            session,
            user_id=user.id,
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            label=push.device_label(request.headers.get("user-agent", "")),
        )
    except Conflict:
        return see_other(_BACK.format("full"))
    except DomainError:
        return see_other(_BACK.format("refused"))
    await session.commit()
    return see_other(_BACK.format("on"))


@router.post("/me/push-subscriptions/{subscription_id}/delete")
async def unsubscribe(
    request: Request, subscription_id: IdPath, session: Session, user: PageUser, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    await push.unsubscribe(session, user_id=user.id, subscription_id=subscription_id)
    await session.commit()
    return see_other(_BACK.format("removed"))


@router.post("/me/push-test")
async def send_test(
    request: Request, session: Session, user: PageUser, csrf_token: Csrf
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        delivered = await push.send_test(session, user_id=user.id)
    except DomainError:
        return see_other(_BACK.format("limited"))
    await session.commit()
    return see_other(_BACK.format("sent" if delivered else "none"))
