"""The sandbox payment provider end to end, through the same adapter a real gateway would use:
checkout page, confirm, signed notifications retried until acknowledged, and refunds."""

from __future__ import annotations

import re
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

from mobimart.errors import DomainError
from mobimart.infra.payments.gateway import load_or_create_keypair, load_public_key, sign
from mobimart.infra.payments.sandbox import SandboxGateway, SandboxProvider, create_sandbox_app

APP_ID = "2021000000000001"
PROVIDER = "http://pay.test"
SHOP = "http://shop.test"
RETURN_URL = f"{SHOP}/orders/return"
NOTIFY_URL = f"{SHOP}/payments/notify"
RETRY_DELAYS = (0, 0.01, 0.01, 0.01)


@dataclass
class Keys:
    directory: Path
    ours: tuple[RSAPrivateKey, RSAPublicKey]
    provider: tuple[RSAPrivateKey, RSAPublicKey]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("keys")
    return Keys(
        directory,
        load_or_create_keypair(directory, "merchant"),
        load_or_create_keypair(directory / "provider", "sandbox"),
    )


@dataclass
class Receiver:
    """The merchant's notify endpoint: answers "fail" to the first `failures` notifications."""

    failures: int = 2
    received: list[dict[str, str]] = field(default_factory=list)

    async def notify(self, request: Request) -> PlainTextResponse:
        async with request.form() as form:
            self.received.append({k: v for k, v in form.items() if isinstance(v, str)})
        ok = len(self.received) > self.failures
        return PlainTextResponse("success\n" if ok else "fail")


@dataclass
class Sandbox:
    client: httpx.AsyncClient  # the payer's browser
    gateway: SandboxGateway
    provider: SandboxProvider
    receiver: Receiver


def _client(app: Any, base_url: str) -> Callable[[], httpx.AsyncClient]:
    return lambda: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def sandbox(keys: Keys) -> AsyncIterator[Sandbox]:
    receiver = Receiver()
    shop = Starlette(routes=[Route("/payments/notify", receiver.notify, methods=["POST"])])
    provider_app = create_sandbox_app(
        our_public_key=keys.ours[1],
        provider_private_key=keys.provider[0],
        notify_client_factory=_client(shop, SHOP),
        retry_delays=RETRY_DELAYS,
    )
    # Mounted under a prefix, as it would be inside the main app, to prove the routes and the
    # page's form actions are relative to the mount point.
    site = Starlette(routes=[Mount("/sandbox-gateway", app=provider_app)])
    gateway = SandboxGateway(
        base_url=f"{PROVIDER}/sandbox-gateway/",
        app_id=APP_ID,
        private_key=keys.ours[0],
        provider_public_key=keys.provider[1],
        client_factory=_client(site, PROVIDER),
    )
    provider: SandboxProvider = provider_app.state.sandbox
    async with _client(site, PROVIDER)() as client:
        yield Sandbox(client, gateway, provider, receiver)
    await provider.close()


def _checkout(sandbox: Sandbox, trade_no: str, amount_minor: int = 1234, **kw: str) -> str:
    return sandbox.gateway.checkout_url(
        trade_no=trade_no,
        amount_minor=amount_minor,
        currency=kw.get("currency", "CNY"),
        subject=kw.get("subject", "Phone case <blue>"),
        notify_url=NOTIFY_URL,
        return_url=RETURN_URL,
    )


async def _pay(sandbox: Sandbox, trade_no: str, amount_minor: int = 1234) -> None:
    page = await sandbox.client.get(_checkout(sandbox, trade_no, amount_minor))
    assert page.status_code == 200, page.text
    confirm = await sandbox.client.post(
        "/sandbox-gateway/gateway/confirm", data={"trade_no": trade_no}
    )
    assert confirm.status_code == 303
    await sandbox.provider.drain()


def test_keypair_is_stored_once_with_a_private_file(keys: Keys) -> None:
    private_path = keys.directory / "merchant.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private, public = load_or_create_keypair(keys.directory, "merchant")
    assert private.private_numbers() == keys.ours[0].private_numbers()
    shared = load_public_key((keys.directory / "merchant.pub.pem").read_bytes())
    assert shared.public_numbers() == public.public_numbers() == keys.ours[1].public_numbers()


async def test_pay_then_notification_retried_until_acknowledged(sandbox: Sandbox) -> None:
    url = _checkout(sandbox, "T-100")
    assert url.startswith(f"{PROVIDER}/sandbox-gateway/gateway?")

    page = await sandbox.client.get(url)
    assert page.status_code == 200
    assert "Sandbox Pay" in page.text
    assert "¥12.34" in page.text
    assert "Phone case &lt;blue&gt;" in page.text
    assert ">Pay<" in page.text
    assert ">Cancel<" in page.text

    action = re.search(r'action="([^"]*confirm)"', page.text)
    assert action is not None
    confirm = await sandbox.client.post(urljoin(url, action.group(1)), data={"trade_no": "T-100"})
    assert confirm.status_code == 303
    assert confirm.headers["location"] == f"{RETURN_URL}?trade_no=T-100"

    await sandbox.provider.drain()
    assert sandbox.provider.attempts["T-100"] == 3
    received = sandbox.receiver.received
    assert len(received) == 3
    assert len({r["notify_id"] for r in received}) == 1
    assert all(r["sign_type"] == "RSA2" for r in received)

    notification = sandbox.gateway.parse_notification(received[-1])
    trade = sandbox.provider.trades["T-100"]
    assert (notification.trade_no, notification.amount_minor, notification.currency) == (
        "T-100",
        1234,
        "CNY",
    )
    assert notification.status == "paid"
    assert notification.gateway_trade_no == trade.gateway_trade_no != ""
    assert trade.notified


async def test_paying_twice_pays_and_notifies_once(sandbox: Sandbox) -> None:
    sandbox.receiver.failures = 0
    await _pay(sandbox, "T-101")
    again = await sandbox.client.post(
        "/sandbox-gateway/gateway/confirm", data={"trade_no": "T-101"}
    )
    assert again.status_code == 303
    await sandbox.provider.drain()
    assert sandbox.provider.attempts["T-101"] == 1

    page = await sandbox.client.get(_checkout(sandbox, "T-101"))
    assert page.status_code == 200
    assert "already been paid" in page.text
    assert "gateway/confirm" not in page.text


async def test_notification_gives_up_after_the_last_retry(sandbox: Sandbox) -> None:
    sandbox.receiver.failures = 100
    await _pay(sandbox, "T-102")
    assert sandbox.provider.attempts["T-102"] == len(RETRY_DELAYS)
    assert not sandbox.provider.trades["T-102"].notified


async def test_cancel_returns_to_the_shop(sandbox: Sandbox) -> None:
    assert (await sandbox.client.get(_checkout(sandbox, "T-103"))).status_code == 200
    cancel = await sandbox.client.post(
        "/sandbox-gateway/gateway/cancel", data={"trade_no": "T-103"}
    )
    assert cancel.status_code == 303
    query = dict(parse_qsl(urlsplit(cancel.headers["location"]).query))
    assert query == {"trade_no": "T-103", "cancelled": "1"}
    assert sandbox.provider.trades["T-103"].status == "created"
    assert sandbox.provider.attempts["T-103"] == 0


async def test_forged_notifications_are_refused(sandbox: Sandbox, keys: Keys) -> None:
    sandbox.receiver.failures = 0
    await _pay(sandbox, "T-104")
    genuine = sandbox.receiver.received[-1]

    tampered = {**genuine, "amount_minor": "1"}
    resigned = {**tampered, "sign": sign(tampered, keys.ours[0])}  # not the provider's key
    for forged in (tampered, resigned, {k: v for k, v in genuine.items() if k != "sign"}):
        with pytest.raises(DomainError) as refused:
            sandbox.gateway.parse_notification(forged)
        assert refused.value.code == "bad_signature"
        assert refused.value.status == 400

    # Correctly signed but not a payment notification for us.
    for fields in ({"status": "closed"}, {"app_id": "2021000000009999"}):
        odd = {**genuine, **fields}
        odd["sign"] = sign(odd, keys.provider[0])
        with pytest.raises(DomainError) as refused:
            sandbox.gateway.parse_notification(odd)
        assert refused.value.code == "bad_notification"


async def test_refund_is_idempotent_and_bounded(sandbox: Sandbox) -> None:
    sandbox.receiver.failures = 0
    await _pay(sandbox, "T-105", 1000)
    gateway = sandbox.gateway

    first = await gateway.refund(
        trade_no="T-105", refund_no="R-1", amount_minor=600, currency="CNY"
    )
    again = await gateway.refund(
        trade_no="T-105", refund_no="R-1", amount_minor=600, currency="CNY"
    )
    assert first == again
    assert (first.refund_no, first.amount_minor, first.status) == ("R-1", 600, "refunded")
    assert sandbox.provider.trades["T-105"].refunds == {"R-1": 600}

    with pytest.raises(DomainError) as refused:
        await gateway.refund(trade_no="T-105", refund_no="R-2", amount_minor=401, currency="CNY")
    assert refused.value.code == "refund_exceeds_paid"
    with pytest.raises(DomainError) as refused:
        await gateway.refund(trade_no="T-105", refund_no="R-1", amount_minor=400, currency="CNY")
    assert refused.value.code == "refund_no_reused"

    rest = await gateway.refund(trade_no="T-105", refund_no="R-2", amount_minor=400, currency="CNY")
    assert rest.amount_minor == 400
    assert sandbox.provider.trades["T-105"].refunds == {"R-1": 600, "R-2": 400}


async def test_refund_of_an_unpaid_trade_is_refused(sandbox: Sandbox) -> None:
    assert (await sandbox.client.get(_checkout(sandbox, "T-106"))).status_code == 200
    with pytest.raises(DomainError) as refused:
        await sandbox.gateway.refund(
            trade_no="T-106", refund_no="R-1", amount_minor=1, currency="CNY"
        )
    assert refused.value.code == "trade_not_found"


async def test_refund_with_a_bad_merchant_signature_is_refused(
    sandbox: Sandbox, keys: Keys
) -> None:
    sandbox.receiver.failures = 0
    await _pay(sandbox, "T-107")
    params = {"app_id": APP_ID, "trade_no": "T-107", "refund_no": "R-1", "amount_minor": "1234"}
    params |= {"currency": "CNY", "sign_type": "RSA2", "sign": sign(params, keys.provider[0])}
    response = await sandbox.client.post("/sandbox-gateway/refund", data=params)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_signature"
    assert sandbox.provider.trades["T-107"].refunds == {}


async def test_checkout_with_a_bad_merchant_signature_is_refused(
    sandbox: Sandbox, keys: Keys
) -> None:
    url = _checkout(sandbox, "T-108", 1234)
    params = dict(parse_qsl(urlsplit(url).query))

    tampered = {**params, "amount_minor": "1"}
    resigned = {**params, "sign": sign(params, keys.provider[0])}
    for forged in (tampered, resigned, {**params, "sign": "garbage"}):
        page = await sandbox.client.get("/sandbox-gateway/gateway", params=forged)
        assert page.status_code == 400
        assert "signature" in page.text
    assert "T-108" not in sandbox.provider.trades


async def test_same_trade_with_another_amount_is_refused(sandbox: Sandbox) -> None:
    assert (await sandbox.client.get(_checkout(sandbox, "T-109", 500))).status_code == 200
    assert (await sandbox.client.get(_checkout(sandbox, "T-109", 500))).status_code == 200
    page = await sandbox.client.get(_checkout(sandbox, "T-109", 501))
    assert page.status_code == 400
    assert sandbox.provider.trades["T-109"].amount_minor == 500


async def test_other_currencies_show_the_code(sandbox: Sandbox) -> None:
    page = await sandbox.client.get(_checkout(sandbox, "T-110", 999, currency="USD"))
    assert page.status_code == 200
    assert "9.99 USD" in page.text


@pytest.mark.parametrize(
    ("signer", "refund_no"),
    [("ours", "R-1"), ("provider", "R-other")],
    ids=["signed-by-another-key", "genuine-reply-to-another-refund"],
)
async def test_forged_refund_replies_are_refused(keys: Keys, signer: str, refund_no: str) -> None:
    key = keys.ours[0] if signer == "ours" else keys.provider[0]

    async def refund(_: Request) -> JSONResponse:
        body: dict[str, Any] = {"refund_no": refund_no, "amount_minor": 5, "status": "refunded"}
        body["sign"] = sign({k: str(v) for k, v in body.items()}, key)
        return JSONResponse(body)

    impostor = Starlette(routes=[Route("/refund", refund, methods=["POST"])])
    gateway = SandboxGateway(
        base_url=PROVIDER,
        app_id=APP_ID,
        private_key=keys.ours[0],
        provider_public_key=keys.provider[1],
        client_factory=_client(impostor, PROVIDER),
    )
    with pytest.raises(DomainError) as refused:
        await gateway.refund(trade_no="T-1", refund_no="R-1", amount_minor=5, currency="CNY")
    assert refused.value.code == "bad_signature"
