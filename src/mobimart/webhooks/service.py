"""Merchants' webhook endpoints and the delivery of events to them.

An event becomes one delivery row per subscribed endpoint in the transaction that caused it
(an outbox), so an order paid is never announced if the payment rolled back, and never lost
if the process dies after committing. The worker sends due deliveries and retries failures
with backoff; a delivery keeps its id across retries so receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart import signing
from mobimart.db import utcnow
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.infra import http
from mobimart.settings import get_settings
from mobimart.webhooks import domain
from mobimart.webhooks.models import WebhookDelivery, WebhookEndpoint

MAX_ENDPOINTS = 5


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc or len(url) > 500:
        raise DomainError("invalid_url", "Give an http(s) URL of at most 500 characters.", 422)
    return url.strip()


async def _private_target(url: str) -> bool:
    """In production, whether the URL's host is, or resolves to, an address outside the public
    internet. Checked when an endpoint is added and again before every delivery, since DNS
    answers change; development and tests deliver to local receivers."""
    if not get_settings().is_production:
        return False
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port)
    except (OSError, ValueError):
        return True  # unresolvable now: nothing to send to
    return not found or any(not domain.public(str(info[4][0])) for info in found)


async def create_endpoint(
    session: AsyncSession, *, merchant_id: int, url: str, events: list[str]
) -> WebhookEndpoint:
    unknown = sorted(set(events) - set(domain.EVENTS))
    if unknown or not events:
        raise DomainError("invalid_events", f"Choose events among {', '.join(domain.EVENTS)}.", 422)
    count = len(await endpoints(session, merchant_id=merchant_id))
    if count >= MAX_ENDPOINTS:
        raise DomainError("too_many_endpoints", f"At most {MAX_ENDPOINTS} endpoints.", 422)
    checked = _check_url(url)
    if await _private_target(checked):
        raise DomainError(
            "invalid_url", "Webhooks go to a public address that resolves on the internet.", 422
        )
    endpoint = WebhookEndpoint(
        merchant_id=merchant_id,
        url=checked,
        secret="whsec_" + secrets.token_urlsafe(24),
        events=sorted(set(events)),
    )
    session.add(endpoint)
    await session.commit()
    return endpoint


async def endpoints(session: AsyncSession, *, merchant_id: int) -> list[WebhookEndpoint]:
    return list(
        await session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.active)
            .order_by(WebhookEndpoint.id)
        )
    )


async def delete_endpoint(session: AsyncSession, *, merchant_id: int, endpoint_id: int) -> None:
    result = await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.merchant_id == merchant_id)
        .values(active=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("Webhook endpoint")
    await session.commit()


async def _endpoint(
    session: AsyncSession, *, merchant_id: int, endpoint_id: int
) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.merchant_id != merchant_id:
        raise NotFound("Webhook endpoint")
    return endpoint


async def deliveries(
    session: AsyncSession, *, merchant_id: int, endpoint_id: int, before: int | None, limit: int
) -> list[WebhookDelivery]:
    await _endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    return list(await session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit)))


async def redeliver(
    session: AsyncSession, *, merchant_id: int, endpoint_id: int, delivery_id: int
) -> WebhookDelivery:
    """One more attempt at a delivery whose retries are all spent, now; it keeps its
    delivery id, so a receiver that did get it after all drops the copy."""
    endpoint = await _endpoint(session, merchant_id=merchant_id, endpoint_id=endpoint_id)
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("Webhook delivery")
    if not endpoint.active:
        raise Conflict("endpoint_deleted", "The endpoint was deleted; add it again first.")
    reopened = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "failed")
        .values(status="pending", next_attempt_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if reopened.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "not_failed",
            "Only a failed delivery is sent again; a pending one is still being retried.",
        )
    await session.commit()
    await session.refresh(delivery)
    await send(session, delivery_id=delivery.id)
    await session.refresh(delivery)
    return delivery


async def emit(
    session: AsyncSession, *, merchant_id: int, event: str, data: dict[str, Any]
) -> None:
    """Queue `event` for the merchant's endpoints, in the caller's transaction."""
    assert event in domain.EVENTS, event
    now = utcnow()
    for endpoint in await endpoints(session, merchant_id=merchant_id):
        if event not in endpoint.events:
            continue
        delivery_id = str(uuid.uuid4())
        session.add(
            WebhookDelivery(
                delivery_id=delivery_id,
                endpoint_id=endpoint.id,
                event=event,
                payload={
                    "id": delivery_id,
                    "type": event,
                    "created": now.isoformat(timespec="seconds"),
                    "data": data,
                },
                next_attempt_at=now,
            )
        )


async def send(session: AsyncSession, *, delivery_id: int) -> bool:
    """One attempt; True when the receiver took it (any 2xx)."""
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status != "pending":
        return False
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    assert endpoint is not None
    if not endpoint.active:  # deleted since: its merchant no longer wants them
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "pending")
            .values(status="failed", last_error="endpoint deleted", next_attempt_at=None)
        )
        await session.commit()
        return False
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "Mobimart-Delivery": delivery.delivery_id,
        "Mobimart-Event": delivery.event,
        "Mobimart-Signature": signing.sign(endpoint.secret, int(time.time()), body),
        "User-Agent": "Mobimart-Webhooks/1",
    }
    status: int | None = None
    error = ""
    try:
        if await _private_target(endpoint.url):
            raise PermissionError("not a public address")
        async with http.client() as client:
            response = await client.post(endpoint.url, content=body, headers=headers)
        status = response.status_code
    except Exception as exc:  # the receiver's trouble, recorded and retried
        error = type(exc).__name__
    now = utcnow()
    attempts = delivery.attempts + 1
    ok = status is not None and 200 <= status < 300
    retry = None if ok else domain.next_attempt(attempts, now)
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "pending")
        .values(
            attempts=attempts,
            last_status=status,
            last_error=error or ("" if ok else f"HTTP {status}"),
            status="delivered" if ok else ("pending" if retry else "failed"),
            delivered_at=now if ok else None,
            next_attempt_at=retry,
        )
    )
    await session.commit()
    return ok


async def due(session: AsyncSession, *, limit: int = 100) -> list[int]:
    return list(
        await session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )
