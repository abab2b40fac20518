"""Web Push: the server's public key, and the signed-in person's subscribed devices."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mobimart.notifications import push
from mobimart.notifications.models import PushSubscription
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath, InputModel

router = APIRouter(tags=["push"])

# base64url, padded or not: 65 bytes -> 87 characters, 16 bytes -> 22.
P256dh = Annotated[str, Field(min_length=87, max_length=88, pattern=r"^[A-Za-z0-9_-]+=?$")]
AuthSecret = Annotated[str, Field(min_length=22, max_length=24, pattern=r"^[A-Za-z0-9_-]+={0,2}$")]


class ServerKeyOut(BaseModel):
    application_server_key: str = Field(
        description="base64url P-256 public key for pushManager.subscribe()"
    )


class SubscriptionKeys(InputModel):
    p256dh: P256dh
    auth: AuthSecret


class SubscriptionIn(InputModel):
    """What the browser's `PushSubscription.toJSON()` gives, as it gives it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    endpoint: str = Field(min_length=10, max_length=1000, description="the push service's URL")
    expiration_time: int | None = Field(default=None, alias="expirationTime", ge=0)
    keys: SubscriptionKeys
    label: str | None = Field(
        default=None, max_length=80, description='e.g. "Chrome on Android"; default: from UA'
    )


class SubscriptionOut(BaseModel):
    id: int
    label: str
    service: str = Field(description="the push service's host")
    created_at: dt.datetime
    last_sent_at: dt.datetime | None


class TestPushOut(BaseModel):
    delivered: bool = Field(description="at least one device's push service took it")


def subscription_out(row: PushSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=row.id,
        label=row.label,
        service=urlsplit(row.endpoint).hostname or "",
        created_at=row.created_at,
        last_sent_at=row.last_sent_at,
    )


@router.get("/push/key")
async def server_key() -> ServerKeyOut:
    """The application server key (VAPID, RFC 8292) browsers subscribe with."""
    return ServerKeyOut(application_server_key=push.application_server_key())


@router.post("/me/push-subscriptions", status_code=201)
async def subscribe(
    body: SubscriptionIn, request: Request, user: CurrentUser, session: Session
) -> SubscriptionOut:
    """Add this browser. Posting the same endpoint again updates it."""
    row = await push.subscribe(
        session,
        user_id=user.id,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        label=body.label or push.device_label(request.headers.get("user-agent", "")),
    )
    await session.commit()
    return subscription_out(row)


@router.get("/me/push-subscriptions")
async def list_subscriptions(
    user: CurrentUser, session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> Page[SubscriptionOut]:
    """Newest first."""
    rows = await push.subscriptions(session, user_id=user.id, page=page)
    return make_page(rows, page, subscription_out, key=lambda r: r.id)


@router.delete("/me/push-subscriptions/{subscription_id}", status_code=204)
async def unsubscribe(subscription_id: IdPath, user: CurrentUser, session: Session) -> Response:
    await push.unsubscribe(session, user_id=user.id, subscription_id=subscription_id)
    await session.commit()
    return Response(status_code=204)


@router.post("/me/push-test")
async def test_push(user: CurrentUser, session: Session) -> TestPushOut:
    """Send a test notification to every device of the caller."""
    delivered = await push.send_test(session, user_id=user.id)
    await session.commit()
    return TestPushOut(delivered=delivered)
