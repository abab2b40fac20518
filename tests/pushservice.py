"""A push service for tests: a real HTTP server on a loopback port that speaks RFC 8030.

It does what a browser vendor's push service and the browser do between them: a test makes a
`Subscriber` (a P-256 key pair and a 16-byte auth secret, as a browser makes them, bound to
the application server key it subscribed with) and the service accepts a push for it only
when it is encrypted with `aes128gcm` (RFC 8188/8291) and carries a valid VAPID header
(RFC 8292): an ES256 JWT signed by the key in `k`, `aud` the endpoint's origin, `exp` in the
future and at most 24 hours away. Decrypted messages are kept for the test to read; an
endpoint can be told to answer 410 Gone, as for a browser that unsubscribed."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscriber:
    """One browser's subscription: what it posts to the site, and the private half it keeps."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    server_key: str | None  # the applicationServerKey it subscribed with

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def json(self) -> dict[str, Any]:
        """As `PushSubscription.toJSON()` gives it."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


@dataclass
class Received:
    endpoint: str
    data: bytes
    ttl: int
    claims: dict[str, Any]

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class _State:
    origin: str = ""
    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    redirects: dict[str, str] = field(default_factory=dict)  # endpoint -> Location
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (status, why)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Refused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


def verify_vapid(header: str, *, origin: str, server_key: str | None) -> dict[str, Any]:
    """The JWT's claims, or Refused(401/403) saying what is wrong (RFC 8292 section 4)."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "vapid":
        raise Refused(401, "not a vapid Authorization")
    parts = dict(item.strip().split("=", 1) for item in params.split(",") if "=" in item.strip())
    token, key = parts.get("t", ""), parts.get("k", "")
    try:
        signing_input, signature = token.rsplit(".", 1)
        header_b64, claims_b64 = signing_input.split(".")
        jwt_header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        raw = b64url_decode(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    except (ValueError, TypeError):
        raise Refused(401, "malformed token or key") from None
    if jwt_header.get("alg") != "ES256" or len(raw) != 64:
        raise Refused(401, "not ES256")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Refused(401, "bad signature") from None
    if claims.get("aud") != origin:
        raise Refused(401, "wrong aud")
    exp = claims.get("exp")
    if not isinstance(exp, int) or not time.time() < exp <= time.time() + 24 * 3600:
        raise Refused(401, "exp not within 24 hours from now")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise Refused(401, "no sub")
    if server_key is not None and key != server_key:
        raise Refused(403, "not the key this subscription was made with")
    return claims


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reads what it needs from the service

        def _answer(self, status: int, why: str = "") -> None:
            body = why.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 201:
                self.send_header("Location", f"{state.origin}/message/{secrets.token_hex(8)}")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            endpoint = state.origin + self.path
            with state.lock:
                location = state.redirects.get(endpoint)
            if location is not None:
                self.send_response(307)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            try:
                received = self._accept(endpoint, body)
            except Refused as exc:
                with state.lock:
                    state.refused.append((exc.status, exc.why))
                self._answer(exc.status, exc.why)
                return
            with state.lock:
                state.received.append(received)
            self._answer(201)

        def _accept(self, endpoint: str, body: bytes) -> Received:
            with state.lock:
                subscriber = state.subscribers.get(endpoint)
                gone = endpoint in state.gone
            if subscriber is None:
                raise Refused(404, "no such subscription")
            if gone:
                raise Refused(410, "unsubscribed")
            ttl = self.headers.get("TTL")
            if ttl is None or not ttl.isdigit():
                raise Refused(400, "TTL header missing")
            if self.headers.get("Content-Encoding") != "aes128gcm":
                raise Refused(415, "only aes128gcm")
            claims = verify_vapid(
                self.headers.get("Authorization", ""),
                origin=state.origin,
                server_key=subscriber.server_key,
            )
            try:
                data = http_ece.decrypt(
                    body,
                    private_key=subscriber.private_key,
                    auth_secret=subscriber.auth_secret,
                    version="aes128gcm",
                )
            except Exception:  # http_ece raises several kinds on a bad record
                raise Refused(400, "cannot decrypt") from None
            return Received(endpoint=endpoint, data=data, ttl=int(ttl), claims=claims)

    return Handler


class PushService:
    """`with PushService() as service:`; `service.subscriber(server_key)` is a new browser."""

    def __init__(self) -> None:
        self._state = _State()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._state))
        self._server.daemon_threads = True
        self._state.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return self._state.origin

    def __enter__(self) -> PushService:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def subscriber(self, server_key: str | None = None) -> Subscriber:
        made = Subscriber(
            endpoint=f"{self.origin}/push/{secrets.token_urlsafe(16)}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth_secret=secrets.token_bytes(16),
            server_key=server_key,
        )
        with self._state.lock:
            self._state.subscribers[made.endpoint] = made
        return made

    def answer_gone(self, endpoint: str) -> None:
        with self._state.lock:
            self._state.gone.add(endpoint)

    def redirect(self, endpoint: str, location: str) -> None:
        """Answer pushes to `endpoint` with 307 to `location`, as a hostile service could."""
        with self._state.lock:
            self._state.redirects[endpoint] = location

    def received(self, endpoint: str | None = None) -> list[Received]:
        with self._state.lock:
            return [r for r in self._state.received if endpoint in (None, r.endpoint)]

    @property
    def refused(self) -> list[tuple[int, str]]:
        with self._state.lock:
            return list(self._state.refused)
