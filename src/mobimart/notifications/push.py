"""Web Push: browsers subscribe (RFC 8030 endpoint + RFC 8291 keys), we sign each push with
our VAPID key (RFC 8292) and encrypt it for that browser alone (aes128gcm, RFC 8188).

Consent is the caller's business: a campaign or an automation checks the person's push
consent before calling `deliver`; the person's own "send me a test" needs none."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.db import insert_or_skip, utcnow
from mobimart.errors import Conflict, DomainError, NotFound, TooManyRequests
from mobimart.infra import throttle
from mobimart.infra.payments.gateway import write_once
from mobimart.notifications.models import PushSubscription
from mobimart.settings import get_settings
from mobimart.text import clean_name
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import PageParams

log = logging.getLogger(__name__)

# A phone, a tablet and a few browsers; more is a script, and every push fans out to all.
MAX_DEVICES = 10
# A push waits this long at the push service for a device that is offline: an offer a day
# late is still worth showing; RFC 8030's default of 0 would drop it at once.
TTL_S = 24 * 3600
# Push services cap payloads at 4096 bytes; encryption adds 86 (header, padding, tag).
MAX_PAYLOAD = 3000
TESTS_PER_HOUR = 5
_TIMEOUT = aiohttp.ClientTimeout(total=10)
_B64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The push services that Chrome/Android (FCM), Firefox (Mozilla autopush), Edge/Windows (WNS)
# and Safari (Apple) hand out as subscription endpoints; a browser gives no other kind.
_PUSH_HOSTS = frozenset(
    {"fcm.googleapis.com", "updates.push.services.mozilla.com", "web.push.apple.com"}
)
_PUSH_HOST_SUFFIXES = (".notify.windows.com", ".push.apple.com")
_HOSTNAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


class InvalidSubscription(DomainError):
    def __init__(self, detail: str) -> None:
        super().__init__("invalid_subscription", detail, 422)


# --- keys --------------------------------------------------------------------------------------


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@lru_cache(maxsize=4)
def _load_vapid(directory: Path, configured: str | None) -> Vapid02:
    if configured:
        text = configured.strip()
        if text.startswith("-----BEGIN"):
            key: Any = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = ec.derive_private_key(int.from_bytes(_b64url_decode(text), "big"), ec.SECP256R1())
    else:
        # Made once and kept: browsers subscribed with its public half, and a new key would
        # make every one of their subscriptions refuse our pushes.
        path = directory / "vapid.pem"
        if not path.exists():
            directory.mkdir(parents=True, exist_ok=True)
            pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            write_once(path, pem, 0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the VAPID key must be a P-256 (secp256r1) private key")
    return Vapid02(key)


def vapid() -> Vapid02:
    settings = get_settings()
    configured = settings.vapid_private_key
    return _load_vapid(
        settings.keys_dir, configured.get_secret_value() if configured is not None else None
    )


def application_server_key() -> str:
    """The public half, base64url of the uncompressed P-256 point: what a browser's
    `pushManager.subscribe({applicationServerKey})` takes."""
    public = vapid().public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(public)


# --- subscriptions -----------------------------------------------------------------------------


def _push_service_host(host: str) -> bool:
    return host in _PUSH_HOSTS or (
        host.endswith(_PUSH_HOST_SUFFIXES) and _HOSTNAME.fullmatch(host) is not None
    )


def check_endpoint(endpoint: str) -> str:
    """An https URL on one of the push services browsers subscribe with. We POST to whatever
    is stored here, so anything else is refused: a deny-list of internal names and addresses
    misses `https://127.1/`, `https://2130706433/`, `https://0x7f000001/`, trailing dots and
    any public DNS name that points inside our network. A loopback endpoint is allowed in
    test and development only, for a push service running beside the tests."""
    settings = get_settings()
    try:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        raise InvalidSubscription("The endpoint is not a URL.") from None
    if (
        not host
        or parts.username is not None
        or parts.password is not None
        or "@" in parts.netloc
        or any(c.isspace() or c == "\\" or ord(c) < 32 or ord(c) == 127 for c in endpoint)
    ):
        raise InvalidSubscription("The endpoint is not a push service's URL.")
    loopback_ok = settings.environment in ("test", "development") and host in _LOOPBACK_HOSTS
    if loopback_ok and parts.scheme in ("http", "https"):
        return endpoint
    if parts.scheme != "https":
        raise InvalidSubscription("A push endpoint must be an https URL.")
    if not _push_service_host(host):
        raise InvalidSubscription("A push endpoint must be on a browser's push service.")
    if port not in (None, 443):
        raise InvalidSubscription("A push endpoint must use the https port.")
    return endpoint


def check_keys(p256dh: str, auth: str) -> None:
    """p256dh: the browser's P-256 public key (65 bytes, uncompressed); auth: its 16-byte
    secret. Both base64url, as `PushSubscription.toJSON()` gives them."""
    if not (_B64URL.fullmatch(p256dh) and _B64URL.fullmatch(auth)):
        raise InvalidSubscription("The keys are not base64url.")
    try:
        point = _b64url_decode(p256dh)
        secret = _b64url_decode(auth)
    except (binascii.Error, ValueError):
        raise InvalidSubscription("The keys are not base64url.") from None
    if len(point) != 65 or point[0] != 4:
        raise InvalidSubscription("p256dh must be an uncompressed P-256 public key.")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidSubscription("p256dh is not a point on P-256.") from None
    if len(secret) != 16:
        raise InvalidSubscription("auth must be 16 bytes.")


def device_label(user_agent: str) -> str:
    """ "Chrome on Android": enough to tell one's devices apart, without keeping the header."""
    ua = user_agent.lower()
    browser = next(
        (
            name
            for marker, name in (
                ("micromessenger", "WeChat"),
                ("edg/", "Edge"),
                ("firefox", "Firefox"),
                ("opr/", "Opera"),
                ("samsungbrowser", "Samsung Internet"),
                ("chrome", "Chrome"),
                ("chromium", "Chromium"),
                ("safari", "Safari"),
            )
            if marker in ua
        ),
        "",
    )
    system = next(
        (
            name
            for marker, name in (
                ("android", "Android"),
                ("iphone", "iPhone"),
                ("ipad", "iPad"),
                ("windows", "Windows"),
                ("mac os", "macOS"),
                ("cros", "ChromeOS"),
                ("linux", "Linux"),
            )
            if marker in ua
        ),
        "",
    )
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Browser"


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


async def subscribe(
    session: AsyncSession, *, user_id: int, endpoint: str, p256dh: str, auth: str, label: str
) -> PushSubscription:
    """Store the browser's subscription for the person (the caller commits). The same
    endpoint again is the same browser: it is updated, and passes to whoever subscribed it
    last (a shared computer changes hands). Two posts of one endpoint at once make one row."""
    check_endpoint(endpoint)
    check_keys(p256dh, auth)
    digest = endpoint_hash(endpoint)
    owner = await session.scalar(
        select(PushSubscription.user_id).where(PushSubscription.endpoint_hash == digest)
    )
    if owner != user_id:
        count = await session.scalar(
            select(func.count())
            .select_from(PushSubscription)
            .where(PushSubscription.user_id == user_id)
        )
        if int(count or 0) >= MAX_DEVICES:
            raise Conflict(
                "too_many_devices",
                f"Notifications are on for {MAX_DEVICES} devices already; remove one first.",
            )
    fields = {"user_id": user_id, "p256dh": p256dh, "auth": auth, "label": clean_name(label, 80)}
    await session.execute(
        insert_or_skip(session, PushSubscription, index_elements=["endpoint_hash"]).values(
            endpoint=endpoint, endpoint_hash=digest, created_at=utcnow(), **fields
        )
    )
    await session.execute(
        update(PushSubscription)
        .where(PushSubscription.endpoint_hash == digest)
        .values(**fields)
        .execution_options(synchronize_session=False)
    )
    row = await session.scalar(
        select(PushSubscription)
        .where(PushSubscription.endpoint_hash == digest)
        .execution_options(populate_existing=True)
    )
    assert row is not None  # inserted or updated just now, in this transaction
    return row


async def subscriptions(
    session: AsyncSession, *, user_id: int, page: PageParams | None = None
) -> list[PushSubscription]:
    """The person's devices, newest first."""
    query = select(PushSubscription).where(PushSubscription.user_id == user_id)
    if page is not None and page.before_id is not None:
        query = query.where(PushSubscription.id < page.before_id)
    query = query.order_by(PushSubscription.id.desc())
    rows = await session.scalars(query.limit(page.fetch if page else MAX_DEVICES * 2))
    return list(rows)


async def me_section(session: AsyncSession, *, user_id: int) -> dict[str, Any]:
    """What the Me page's "Notifications on this device" block shows."""
    return {
        "devices": await subscriptions(session, user_id=user_id),
        "key": application_server_key(),
    }


async def unsubscribe(session: AsyncSession, *, user_id: int, subscription_id: int) -> None:
    """Someone else's subscription is not found, like one that does not exist."""
    removed = await session.execute(
        delete(PushSubscription).where(
            PushSubscription.id == subscription_id, PushSubscription.user_id == user_id
        )
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotFound("Device")


async def has_subscription(session: AsyncSession, user_ids: Sequence[int]) -> set[int]:
    """Which of these people have at least one device to push to (one query a batch)."""
    if not user_ids:
        return set()
    rows = await session.scalars(
        select(PushSubscription.user_id)
        .where(PushSubscription.user_id.in_(list(user_ids)))
        .distinct()
    )
    return set(rows)


# --- delivering --------------------------------------------------------------------------------


def payload(*, title: str, body: str, link: str) -> str:
    """The JSON the service worker shows. The body is cut so the whole stays under what push
    services accept, whatever script it is written in."""
    title, body, link = title[:120], body[:300], link[:500]
    data = json.dumps({"title": title, "body": body, "link": link}, ensure_ascii=False)
    while len(data.encode()) > MAX_PAYLOAD and body:
        body = body[: len(body) // 2]
        data = json.dumps({"title": title, "body": body, "link": link}, ensure_ascii=False)
    return data


class _NoRedirects:
    """The session handed to pywebpush, which only calls `post` on it: a push service
    answers 201 or an error, and a redirect from one could send our POST anywhere, so it is
    not followed (a 3xx counts as a failed push)."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self._http = http

    def post(self, url: str, **kwargs: Any) -> Any:
        return self._http.post(url, allow_redirects=False, **kwargs)


async def _send(http: aiohttp.ClientSession, subscription: PushSubscription, data: str) -> str:
    """ok | gone | failed. Logs carry the subscription's id and the status, never the
    endpoint (it identifies the browser) or the text."""
    settings = get_settings()
    try:
        response = await webpush_async(
            subscription_info={
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=data,
            vapid_private_key=vapid(),
            # A fresh dict each time: pywebpush writes `aud` and `exp` into it.
            vapid_claims={"sub": settings.vapid_subject},
            content_encoding="aes128gcm",
            ttl=TTL_S,
            timeout=_TIMEOUT,
            aiohttp_session=cast(aiohttp.ClientSession, _NoRedirects(http)),
        )
    except WebPushException as exc:
        if exc.status_code in (404, 410):
            return "gone"
        log.warning(
            "push refused", extra={"subscription_id": subscription.id, "status": exc.status_code}
        )
        return "failed"
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning(
            "push service unreachable",
            extra={"subscription_id": subscription.id, "error": type(exc).__name__},
        )
        return "failed"
    if isinstance(response, str) or response.status != 201:
        status = getattr(response, "status", None)
        log.warning(
            "push not accepted", extra={"subscription_id": subscription.id, "status": status}
        )
        return "failed"
    return "ok"


async def deliver(session: AsyncSession, *, user_id: int, title: str, body: str, link: str) -> bool:
    """Push to every device of the person at once; True if at least one push service took
    it (201). Devices their service calls gone (404, 410) are removed. The caller commits."""
    devices = await subscriptions(session, user_id=user_id)
    if not devices:
        return False
    data = payload(title=title, body=body, link=link)
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
        outcomes = await asyncio.gather(*(_send(http, device, data) for device in devices))
    gone = [d.id for d, outcome in zip(devices, outcomes, strict=True) if outcome == "gone"]
    sent = [d.id for d, outcome in zip(devices, outcomes, strict=True) if outcome == "ok"]
    if gone:
        await session.execute(delete(PushSubscription).where(PushSubscription.id.in_(gone)))
    if sent:
        await session.execute(
            update(PushSubscription)
            .where(PushSubscription.id.in_(sent))
            .values(last_sent_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return bool(sent)


async def send_test(session: AsyncSession, *, user_id: int) -> bool:
    """A test notification to the person's own devices, in their language; a few an hour,
    since each is a request from our servers to the push services. The caller commits."""
    refusal = await throttle.take(
        session, key=f"push-test:{user_id}", limit=TESTS_PER_HOUR, window=dt.timedelta(hours=1)
    )
    if refusal is not None:
        raise TooManyRequests("Too many test notifications; try again later.", refusal.retry_after)
    return await deliver(
        session,
        user_id=user_id,
        title=_("Mobimart"),
        body=_("Notifications work on this device."),
        link="/me#push",
    )
