"""A sandbox payment provider that behaves like a real one (Alipay-style), and its adapter.

`create_sandbox_app` is the provider: a payer-facing confirm page, asynchronous signed
notifications retried until acknowledged, and signed refunds, all kept in memory. It is a test
double for a real provider, so the code paths through `SandboxGateway` are the same ones a real
gateway adapter takes: redirect, wait for the notification, verify it, refund server to server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mobimart.errors import DomainError
from mobimart.infra.payments.gateway import (
    SIGN_TYPE,
    Notification,
    RefundResult,
    sign,
    verify,
)

log = logging.getLogger(__name__)

ClientFactory = Callable[[], httpx.AsyncClient]

# Roughly Alipay's schedule (it goes on for 25 hours); the last retry is a minute after the
# previous one, so a merchant restarting its server does not lose a payment.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0, 1, 2, 4, 8, 16, 32, 60)
# Anything but this exact body, even a 200, means "not processed, send again".
ACK_BODY = "success"

_AMOUNT = re.compile(r"[1-9][0-9]{0,15}")  # ASCII digits only: str.isdigit() accepts "²"
_CURRENCY = re.compile(r"[A-Z]{3}")


def format_amount(amount_minor: int, currency: str) -> str:
    """Two decimals, as for CNY and USD; a zero-decimal currency would need its own exponent."""
    units, cents = divmod(amount_minor, 100)
    figure = f"{units}.{cents:02d}"
    return f"¥{figure}" if currency == "CNY" else f"{figure} {currency}"


def _amount(value: str | None) -> int | None:
    return int(value) if value and _AMOUNT.fullmatch(value) else None


def _is_http_url(value: str | None) -> bool:
    # Only http(s): the provider redirects the payer's browser there.
    return bool(value) and urlsplit(value or "").scheme in {"http", "https"}


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *extra.items()])
    return urlunsplit(parts._replace(query=query))


def _stringify(body: Mapping[str, Any]) -> dict[str, str]:
    """JSON replies are signed over their fields as strings, as form fields would be."""
    return {key: str(value) for key, value in body.items() if isinstance(value, str | int)}


# --- the adapter -------------------------------------------------------------------------------


class SandboxGateway:
    """The merchant side: talks to a provider made by `create_sandbox_app`."""

    name = "sandbox"

    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        private_key: RSAPrivateKey,
        provider_public_key: RSAPublicKey,
        client_factory: ClientFactory,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._app_id = app_id
        self._private_key = private_key
        self._provider_public_key = provider_public_key
        self._client_factory = client_factory

    def _signed(self, params: dict[str, str]) -> dict[str, str]:
        params = {"app_id": self._app_id, **params, "sign_type": SIGN_TYPE}
        params["sign"] = sign(params, self._private_key)
        return params

    def checkout_url(
        self,
        *,
        trade_no: str,
        amount_minor: int,
        currency: str,
        subject: str,
        notify_url: str,
        return_url: str,
    ) -> str:
        if amount_minor <= 0:
            raise ValueError("amount_minor must be positive")
        params = self._signed(
            {
                "trade_no": trade_no,
                "amount_minor": str(amount_minor),
                "currency": currency,
                "subject": subject,
                "notify_url": notify_url,
                "return_url": return_url,
            }
        )
        return f"{self._base_url}/gateway?{urlencode(params)}"

    def parse_notification(self, params: Mapping[str, str]) -> Notification:
        if not verify(params, self._provider_public_key):
            raise DomainError("bad_signature", "The notification signature is not valid.", 400)
        amount = _amount(params.get("amount_minor"))
        # The provider signs notifications for all its merchants with one key: one meant for
        # another app_id is genuine but not ours.
        if (
            params.get("app_id") != self._app_id
            or not params.get("trade_no")
            or not params.get("gateway_trade_no")
            or amount is None
            or not _CURRENCY.fullmatch(params.get("currency") or "")
            or params.get("status") != "paid"
        ):
            raise DomainError("bad_notification", "The notification is incomplete or invalid.", 400)
        return Notification(
            trade_no=params["trade_no"],
            gateway_trade_no=params["gateway_trade_no"],
            amount_minor=amount,
            currency=params["currency"],
            status="paid",
        )

    async def refund(
        self, *, trade_no: str, refund_no: str, amount_minor: int, currency: str
    ) -> RefundResult:
        params = self._signed(
            {
                "trade_no": trade_no,
                "refund_no": refund_no,
                "amount_minor": str(amount_minor),
                "currency": currency,
            }
        )
        try:
            async with self._client_factory() as client:
                response = await client.post(f"{self._base_url}/refund", data=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DomainError(
                "gateway_unavailable",
                f"The payment gateway did not answer ({type(exc).__name__}).",
                503,
            ) from exc
        if not isinstance(body, dict):
            raise DomainError("bad_gateway_response", "The payment gateway answered nonsense.", 502)
        if response.status_code != 200:
            # Refusals are unsigned, so they may only ever fail a refund, never confirm one.
            code = str(body.get("code") or "gateway_error")
            detail = str(body.get("detail") or "The payment gateway refused the refund.")
            # 404/409: the provider's state says no (unknown or unpaid trade, over-refund); the
            # caller asked for something impossible. Anything else is the gateway failing us.
            raise DomainError(code, detail, 409 if response.status_code in {404, 409} else 502)
        # A genuine reply to some other refund must not pass for this one.
        if (
            not verify(_stringify(body), self._provider_public_key)
            or body.get("refund_no") != refund_no
            or body.get("amount_minor") != amount_minor
        ):
            raise DomainError("bad_signature", "The refund reply signature is not valid.", 502)
        return RefundResult(
            refund_no=refund_no, amount_minor=amount_minor, status=str(body.get("status"))
        )


# --- the provider ------------------------------------------------------------------------------


@dataclass
class SandboxTrade:
    app_id: str
    trade_no: str
    amount_minor: int
    currency: str
    subject: str
    notify_url: str
    return_url: str
    status: str = "created"  # created | paid
    gateway_trade_no: str = ""
    notified: bool = False
    refunds: dict[str, int] = field(default_factory=dict)  # refund_no -> amount_minor

    @property
    def refundable_minor(self) -> int:
        return self.amount_minor - sum(self.refunds.values())


class SandboxProvider:
    """The provider's state, exposed as `app.state.sandbox` so tests can look inside."""

    def __init__(
        self,
        *,
        our_public_key: RSAPublicKey,
        provider_private_key: RSAPrivateKey,
        notify_client_factory: ClientFactory,
        retry_delays: Sequence[float],
    ) -> None:
        self.trades: dict[str, SandboxTrade] = {}
        self.attempts: Counter[str] = Counter()  # notification attempts per trade_no
        self._our_public_key = our_public_key
        self._private_key = provider_private_key
        self._notify_client_factory = notify_client_factory
        self._retry_delays = tuple(retry_delays)
        # The loop keeps only weak references to tasks; these keep notifications alive.
        self._tasks: set[asyncio.Task[None]] = set()

    async def drain(self) -> None:
        """Wait until every scheduled notification is acknowledged or given up on."""
        while self._tasks:
            await asyncio.gather(*self._tasks)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def verify(self, params: Mapping[str, str]) -> bool:
        return verify(params, self._our_public_key)

    def sign(self, params: Mapping[str, str]) -> str:
        return sign(params, self._private_key)

    def schedule_notification(self, trade: SandboxTrade) -> None:
        task = asyncio.get_running_loop().create_task(self._notify(trade))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self, trade: SandboxTrade) -> None:
        notify_id = secrets.token_hex(16)  # one per payment, so the merchant can deduplicate
        async with self._notify_client_factory() as client:
            for delay in self._retry_delays:
                await asyncio.sleep(delay)
                params = {
                    "app_id": trade.app_id,
                    "trade_no": trade.trade_no,
                    "gateway_trade_no": trade.gateway_trade_no,
                    "amount_minor": str(trade.amount_minor),
                    "currency": trade.currency,
                    "status": "paid",
                    "notify_id": notify_id,
                    "notify_time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "sign_type": SIGN_TYPE,
                }
                params["sign"] = self.sign(params)
                self.attempts[trade.trade_no] += 1
                try:
                    response = await client.post(trade.notify_url, data=params)
                except Exception as exc:  # whatever breaks on the merchant's side, try later
                    log.info("sandbox notify %s failed: %s", trade.trade_no, type(exc).__name__)
                    continue
                if response.status_code == 200 and response.text.strip() == ACK_BODY:
                    trade.notified = True
                    return
        log.warning(
            "sandbox notify %s: gave up after %d attempts", trade.trade_no, len(self._retry_delays)
        )


def create_sandbox_app(
    *,
    our_public_key: RSAPublicKey,
    provider_private_key: RSAPrivateKey,
    notify_client_factory: ClientFactory,
    retry_delays: Iterable[float] = DEFAULT_RETRY_DELAYS,
) -> Starlette:
    provider = SandboxProvider(
        our_public_key=our_public_key,
        provider_private_key=provider_private_key,
        notify_client_factory=notify_client_factory,
        retry_delays=tuple(retry_delays),
    )

    async def checkout_page(request: Request) -> Response:
        params = dict(request.query_params)
        if not provider.verify(params):
            return _page("Bad request", "The merchant's signature is not valid.", 400)
        amount = _amount(params.get("amount_minor"))
        currency = params.get("currency") or ""
        if (
            amount is None
            or not params.get("trade_no")
            or not _CURRENCY.fullmatch(currency)
            or not _is_http_url(params.get("notify_url"))
            or not _is_http_url(params.get("return_url"))
        ):
            return _page("Bad request", "The payment request is incomplete or invalid.", 400)
        trade = provider.trades.get(params["trade_no"])
        if trade is None:
            trade = SandboxTrade(
                app_id=params.get("app_id", ""),
                trade_no=params["trade_no"],
                amount_minor=amount,
                currency=currency,
                subject=params.get("subject", ""),
                notify_url=params["notify_url"],
                return_url=params["return_url"],
            )
            provider.trades[trade.trade_no] = trade
        elif (trade.amount_minor, trade.currency) != (amount, currency):
            return _page("Bad request", "This order was already opened for another amount.", 400)
        if trade.status == "paid":
            return _page("Already paid", "This order has already been paid.", 200)
        return _confirm_page(trade)

    async def confirm(request: Request) -> Response:
        trade = provider.trades.get(await _form_value(request, "trade_no"))
        if trade is None:
            return _page("Not found", "No such order.", 404)
        if trade.status != "paid":
            # No await between the check and the change: the loop cannot interleave a second
            # confirm, so a double tap pays and notifies once.
            trade.status = "paid"
            trade.gateway_trade_no = dt.datetime.now(dt.UTC).strftime("%Y%m%d") + secrets.token_hex(
                8
            )
            provider.schedule_notification(trade)
        # The return leg is only for the payer's eyes: the merchant must wait for the signed
        # notification before it believes the payment.
        return RedirectResponse(_with_query(trade.return_url, {"trade_no": trade.trade_no}), 303)

    async def cancel(request: Request) -> Response:
        trade = provider.trades.get(await _form_value(request, "trade_no"))
        if trade is None:
            return _page("Not found", "No such order.", 404)
        query = {"trade_no": trade.trade_no, "cancelled": "1"}
        return RedirectResponse(_with_query(trade.return_url, query), 303)

    async def refund(request: Request) -> Response:
        async with request.form() as form:
            params = {key: value for key, value in form.items() if isinstance(value, str)}
        if not provider.verify(params):
            return _error(400, "bad_signature", "The merchant's signature is not valid.")
        amount = _amount(params.get("amount_minor"))
        refund_no = params.get("refund_no") or ""
        if amount is None or not refund_no:
            return _error(400, "bad_request", "The refund request is incomplete or invalid.")
        trade = provider.trades.get(params.get("trade_no") or "")
        if trade is None or trade.app_id != params.get("app_id") or trade.status != "paid":
            return _error(404, "trade_not_found", "No paid order with this trade_no.")
        if params.get("currency") != trade.currency:
            return _error(400, "currency_mismatch", "The refund currency differs from the order's.")
        earlier = trade.refunds.get(refund_no)
        if earlier is not None and earlier != amount:
            return _error(409, "refund_no_reused", "This refund_no was used for another amount.")
        if earlier is None:
            if amount > trade.refundable_minor:
                return _error(
                    409, "refund_exceeds_paid", "The refund exceeds what is left to refund."
                )
            trade.refunds[refund_no] = amount  # same step as the check: no await in between
        body: dict[str, Any] = {
            "refund_no": refund_no,
            "amount_minor": amount,
            "status": "refunded",
        }
        body["sign"] = provider.sign(_stringify(body))
        return JSONResponse(body)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await provider.close()

    app = Starlette(
        routes=[
            Route("/gateway", checkout_page, methods=["GET"]),
            Route("/gateway/confirm", confirm, methods=["POST"]),
            Route("/gateway/cancel", cancel, methods=["POST"]),
            Route("/refund", refund, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.sandbox = provider
    return app


async def _form_value(request: Request, name: str) -> str:
    async with request.form() as form:
        value = form.get(name)
    return value if isinstance(value, str) else ""


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail}, status_code=status)


_HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>Sandbox Pay</title><style>"
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:0 auto;padding:1.5rem;"
    "text-align:center}.amount{font-size:2.2rem;margin:1rem 0}"
    "button{display:block;width:100%;padding:.9rem;margin:.6rem 0;font-size:1.1rem;"
    "border-radius:.5rem;border:1px solid #1677ff}.pay{background:#1677ff;color:#fff}"
    ".cancel{background:#fff;color:#1677ff}</style></head><body><h1>Sandbox Pay</h1>"
)


def _page(title: str, message: str, status: int) -> HTMLResponse:
    body = f"<h2>{html.escape(title)}</h2><p>{html.escape(message)}</p></body></html>"
    return HTMLResponse(_HEAD + body, status_code=status)


def _confirm_page(trade: SandboxTrade) -> HTMLResponse:
    trade_no = html.escape(trade.trade_no)
    hidden = f'<input type="hidden" name="trade_no" value="{trade_no}">'
    # Relative actions, so the page works under whatever prefix the provider is mounted at.
    body = (
        f"<p>{html.escape(trade.subject)}</p>"
        f'<p class="amount">{html.escape(format_amount(trade.amount_minor, trade.currency))}</p>'
        f'<form method="post" action="gateway/confirm">{hidden}'
        '<button class="pay" type="submit">Pay</button></form>'
        f'<form method="post" action="gateway/cancel">{hidden}'
        '<button class="cancel" type="submit">Cancel</button></form>'
        f"<p><small>Order {trade_no}</small></p></body></html>"
    )
    return HTMLResponse(_HEAD + body)
