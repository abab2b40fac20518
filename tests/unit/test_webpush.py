"""Web Push: the pure checks of push.py, and the test double of a push service itself (a
double that accepted anything would make every push test pass)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from mobimart.errors import DomainError
from mobimart.notifications import push
from mobimart.settings import get_settings
from tests.pushservice import PushService, Subscriber, b64url


@pytest.fixture
def service() -> Iterator[PushService]:
    with PushService() as running:
        yield running


def _key() -> tuple[Vapid02, str]:
    key = Vapid02()
    key.generate_keys()
    from cryptography.hazmat.primitives import serialization

    public = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return key, b64url(public)


def _push(
    subscriber: Subscriber,
    key: Vapid02,
    data: str = '{"title": "Hi"}',
    claims: dict[str, Any] | None = None,
    content_encoding: str = "aes128gcm",
) -> int:
    try:
        response = webpush(
            subscription_info=subscriber.json(),
            data=data,
            vapid_private_key=key,
            vapid_claims=claims or {"sub": "mailto:ops@example.com"},
            content_encoding=content_encoding,
            ttl=60,
            timeout=5,
        )
    except WebPushException as exc:
        return int(exc.status_code or 0)
    assert isinstance(response, requests.Response)
    return response.status_code


# --- the double --------------------------------------------------------------------------------


def test_double_decrypts_a_signed_push(service: PushService) -> None:
    key, public = _key()
    browser = service.subscriber(server_key=public)
    assert _push(browser, key, data='{"title": "雨伞 ¥39"}') == 201
    (got,) = service.received(browser.endpoint)
    assert got.json() == {"title": "雨伞 ¥39"}
    assert got.ttl == 60
    assert got.claims["aud"] == service.origin


def test_double_refuses_a_key_the_browser_did_not_subscribe_with(service: PushService) -> None:
    _, public = _key()
    other, _ = _key()
    browser = service.subscriber(server_key=public)
    assert _push(browser, other) == 403
    assert service.received() == []


def test_double_refuses_a_forged_signature(service: PushService) -> None:
    key, public = _key()
    forger, _ = _key()
    browser = service.subscriber(server_key=public)
    real = key.sign({"sub": "mailto:a@example.com", "aud": service.origin})["Authorization"]
    forged = forger.sign({"sub": "mailto:a@example.com", "aud": service.origin})["Authorization"]
    # The forger's token presented with our public key: the signature does not verify.
    token = forged.split("t=")[1].split(",")[0]
    public_k = real.split("k=")[1]
    response = requests.post(
        browser.endpoint,
        data=b"x",
        headers={
            "Authorization": f"vapid t={token},k={public_k}",
            "TTL": "60",
            "Content-Encoding": "aes128gcm",
        },
        timeout=5,
    )
    assert response.status_code == 401
    assert service.refused[-1] == (401, "bad signature")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "mailto:a@example.com", "aud": "https://push.example.com"},
        {"sub": "mailto:a@example.com", "exp": int(time.time()) + 25 * 3600},
    ],
    ids=["wrong-audience", "expiry-too-far"],
)
def test_double_checks_the_claims(service: PushService, claims: dict[str, Any]) -> None:
    key, public = _key()
    browser = service.subscriber(server_key=public)
    assert _push(browser, key, claims=claims) == 401


def test_double_refuses_an_expired_token(service: PushService) -> None:
    key, public = _key()
    browser = service.subscriber(server_key=public)
    # pywebpush renews a past `exp`, so the header is made by hand.
    header = key.sign(
        {"sub": "mailto:a@example.com", "aud": service.origin, "exp": int(time.time()) - 5}
    )["Authorization"]
    response = requests.post(
        browser.endpoint,
        data=b"x",
        headers={"Authorization": header, "TTL": "0", "Content-Encoding": "aes128gcm"},
        timeout=5,
    )
    assert response.status_code == 401


def test_double_wants_aes128gcm_and_answers_gone(service: PushService) -> None:
    key, public = _key()
    browser = service.subscriber(server_key=public)
    assert _push(browser, key, content_encoding="aesgcm") == 415
    service.answer_gone(browser.endpoint)
    assert _push(browser, key) == 410
    stranger = Subscriber(
        endpoint=service.origin + "/push/unknown",
        private_key=browser.private_key,
        auth_secret=browser.auth_secret,
        server_key=None,
    )
    assert _push(stranger, key) == 404


def test_double_cannot_read_a_push_for_another_browser(service: PushService) -> None:
    """Encrypted to one browser's key, a push does not decrypt with another's."""
    key, public = _key()
    first = service.subscriber(server_key=public)
    second = service.subscriber(server_key=public)
    swapped = Subscriber(
        endpoint=second.endpoint,
        private_key=first.private_key,
        auth_secret=first.auth_secret,
        server_key=public,
    )
    assert _push(swapped, key) == 400


# --- push.py's checks --------------------------------------------------------------------------


def test_application_server_key_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    first = push.application_server_key()
    assert len(base64.urlsafe_b64decode(first + "=")) == 65
    assert push.application_server_key() == first
    path = get_settings().keys_dir / "vapid.pem"
    assert path.stat().st_mode & 0o777 == 0o600
    push._load_vapid.cache_clear()
    assert push.application_server_key() == first  # read back from the file


def test_configured_key_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import SecretStr

    key = Vapid02()
    key.generate_keys()
    raw = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    monkeypatch.setattr(get_settings(), "vapid_private_key", SecretStr(b64url(raw)))
    from cryptography.hazmat.primitives import serialization

    expected = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert push.application_server_key() == b64url(expected)
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    monkeypatch.setattr(get_settings(), "vapid_private_key", SecretStr(pem))
    assert push.application_server_key() == b64url(expected)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/QGx",
        "https://wns2-db5p.notify.windows.com/w/?token=abc",
        "https://api.push.apple.com/3/device/abc",
        "https://FCM.googleapis.com/fcm/send/abc",
        "http://127.0.0.1:8123/push/x",
    ],
)
def test_endpoints_accepted(endpoint: str) -> None:
    assert push.check_endpoint(endpoint) == endpoint


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/fcm/send/abc",
        "https://10.0.0.5/push",
        "https://[fd00::1]/push",
        "https://user:pw@fcm.googleapis.com/x",
        "https://metadata.internal/x",
        "https://fcm.googleapis.com:8443/x",
        "ftp://fcm.googleapis.com/x",
        "https:///nohost",
        "not a url",
    ],
)
def test_endpoints_refused(endpoint: str) -> None:
    with pytest.raises(DomainError):
        push.check_endpoint(endpoint)


# Hosts that a deny-list of IP literals and internal names let through, each reaching an
# address inside our network; outside test and development only push services pass.
@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.1/x",
        "https://2130706433/x",
        "https://0x7f000001/x",
        "https://10.1/x",
        "https://10.0.0.5/push",
        "https://[::ffff:127.0.0.1]/x",
        "https://localhost./x",
        "https://localhost/x",
        "https://metadata.google.internal./x",
        "https://metadata.google.internal/x",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1.nip.io/x",
        "https://fcm.googleapis.com./fcm/send/abc",
        "https://fcm.googleapis.com.evil.example/x",
        "https://evil.example/fcm.googleapis.com",
        "https://fcm.googleapis.com@10.0.0.1/x",
        "https://10.0.0.1\\@fcm.googleapis.com/x",
        "https://notify.windows.com.evil.example/x",
        "https://evilpush.apple.com.example/x",
        "https://xnotify.windows.com/x",
        "https://127.0.0.1:8123/push/x",
        "http://127.0.0.1:8123/push/x",
    ],
)
def test_private_and_unknown_hosts_refused_in_production(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "environment", "production")
    with pytest.raises(DomainError):
        push.check_endpoint(endpoint)


def test_push_services_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "environment", "production")
    for endpoint in (
        "https://fcm.googleapis.com/fcm/send/abc",
        "https://updates.push.services.mozilla.com/wpush/v2/abc",
        "https://web.push.apple.com/QGx",
        "https://db5p.notify.windows.com/w/?token=abc",
        "https://api.push.apple.com/3/device/abc",
    ):
        assert push.check_endpoint(endpoint) == endpoint


def test_loopback_endpoint_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "environment", "production")
    with pytest.raises(DomainError):
        push.check_endpoint("http://127.0.0.1:8123/push/x")


def test_keys_checked() -> None:
    with PushService() as service:
        browser = service.subscriber()
    push.check_keys(browser.p256dh, browser.auth)
    push.check_keys(browser.p256dh + "=", browser.auth + "==")  # padded is fine too
    bad = [
        (browser.p256dh[:-4], browser.auth),  # short
        ("A" + browser.p256dh[1:], browser.auth),  # not 0x04: not uncompressed
        (b64url(b"\x04" + b"\x01" * 64), browser.auth),  # not on the curve
        (browser.p256dh, b64url(b"\x00" * 15)),
        (browser.p256dh, "!!!!"),
        (browser.p256dh, browser.auth[:-2] + "+/"),  # base64, not base64url
    ]
    for p256dh, auth in bad:
        with pytest.raises(DomainError):
            push.check_keys(p256dh, auth)


def test_payload_fits_a_push() -> None:
    data = push.payload(title="t", body="长" * 5000, link="/p/1")
    assert len(data.encode()) <= push.MAX_PAYLOAD
    assert json.loads(data)["link"] == "/p/1"
    assert json.loads(push.payload(title="A", body="B", link="/x")) == {
        "title": "A",
        "body": "B",
        "link": "/x",
    }


@pytest.mark.parametrize(
    ("ua", "label"),
    [
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile",
            "Chrome on Android",
        ),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1", "Safari on iPhone"),
        (
            "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox on Windows",
        ),
        ("", "Browser"),
    ],
)
def test_device_label(ua: str, label: str) -> None:
    assert push.device_label(ua) == label
