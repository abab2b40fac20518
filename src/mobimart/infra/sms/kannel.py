"""Kannel's HTTP sendsms API (smsbox `sendsms-port`)."""

from __future__ import annotations

import asyncio
import urllib.parse

import httpx

from mobimart.settings import Settings

# Kannel answers 202 with "0: Accepted for delivery", or "3: Queued for later delivery" while
# no SMSC is connected; both mean the gateway has taken responsibility for the message. With
# `immediate-sendsms-reply` (deploy/kannel) smsbox answers "Sent." as soon as it has it.
_ACCEPTED_PREFIXES = ("0:", "3:", "Sent.")


def is_gsm7(text: str) -> bool:
    """Sent as the default alphabet: plain ASCII (anything else goes as UCS-2, which every
    phone shows right)."""
    return text.isascii()


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


async def sendsms(settings: Settings, *, to: str, text: str) -> tuple[bool, str]:
    params = {
        "username": settings.kannel_username,
        "password": settings.kannel_password.get_secret_value(),
        "from": settings.sms_sender,
        "to": to,
        "text": text,
    }
    if not is_gsm7(text):
        params |= {"coding": "2", "charset": "utf-8"}
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(settings.kannel_sendsms_url, params=params)
    except httpx.HTTPError as exc:
        return False, f"gateway unreachable: {type(exc).__name__}"
    reply = response.text.strip()
    ok = response.status_code == 202 and reply.startswith(_ACCEPTED_PREFIXES)
    return ok, f"{response.status_code} {reply}"[:200]


# --- campaigns: many messages over kept-alive connections ------------------------------------

_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class SendsmsPool:
    """sendsms over `connections` kept-alive HTTP/1.1 connections, for campaign sends.

    httpx spends ~200 µs of CPU a request; on a machine where smsbox itself needs a core at
    ~13,000 requests/s, that would starve the gateway. This client writes one request and
    reads one reply per message (~20 µs). With delivery reports on, smsbox answers a request
    only once bearerbox has taken the message (~40 ms), so throughput comes from many
    requests in flight, not from a fast client. Numbers and texts are never logged."""

    def __init__(self, settings: Settings, *, connections: int) -> None:
        url = urllib.parse.urlsplit(settings.kannel_sendsms_url)
        self._host = url.hostname or "127.0.0.1"
        self._port = url.port or 80
        self._path = url.path or "/cgi-bin/sendsms"
        self._fixed = urllib.parse.urlencode(
            {
                "username": settings.kannel_username,
                "password": settings.kannel_password.get_secret_value(),
                "from": settings.sms_sender,
            },
            quote_via=urllib.parse.quote,
        )
        self._free: asyncio.Queue[_Conn | None] = asyncio.Queue()
        for _ in range(connections):
            self._free.put_nowait(None)  # opened on first use
        self._writers: set[asyncio.StreamWriter] = set()

    def _request(self, to: str, text: str, dlr_url: str | None, dlr_mask: int) -> bytes:
        query = f"{self._fixed}&to={_quote(to)}&text={_quote(text)}"
        if not is_gsm7(text):
            query += "&coding=2&charset=utf-8"
        if dlr_url is not None:
            query += f"&dlr-mask={dlr_mask}&dlr-url={_quote(dlr_url)}"
        return f"GET {self._path}?{query} HTTP/1.1\r\nHost: {self._host}\r\n\r\n".encode()

    async def send(
        self, *, to: str, text: str, dlr_url: str | None = None, dlr_mask: int = 31
    ) -> tuple[bool | None, str]:
        """(True, reply) when Kannel took the message, (False, reply) when it refused it, and
        (None, why) when the connection failed: then nobody knows whether it was taken."""
        request = self._request(to, text, dlr_url, dlr_mask)
        conn = await self._free.get()
        try:
            if conn is None:
                reader, writer = await asyncio.open_connection(self._host, self._port)
                self._writers.add(writer)
                conn = (reader, writer)
            reader, writer = conn
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, keep = int(head[9:12]), 0, True
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    keep = False
            body = (await reader.readexactly(length)).decode(errors="replace").strip()
        except (OSError, EOFError, asyncio.LimitOverrunError, ValueError) as exc:
            self._drop(conn)
            return None, f"gateway unreachable: {type(exc).__name__}"
        except BaseException:
            self._drop(conn)
            raise
        if keep:
            self._free.put_nowait(conn)
        else:
            self._drop(conn)
        ok = status == 202 and body.startswith(_ACCEPTED_PREFIXES)
        return ok, f"{status} {body}"[:200]

    def _drop(self, conn: _Conn | None) -> None:
        if conn is not None:
            conn[1].close()
            self._writers.discard(conn[1])
        self._free.put_nowait(None)

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()
