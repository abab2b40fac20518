"""Kannel's HTTP sendsms API (smsbox `sendsms-port`)."""

from __future__ import annotations

import httpx

from mobimart.settings import Settings

# Kannel answers 202 with "0: Accepted for delivery", or "3: Queued for later delivery" while
# no SMSC is connected; both mean the gateway has taken responsibility for the message.
_ACCEPTED_PREFIXES = ("0:", "3:")


def is_gsm7(text: str) -> bool:
    return all(ord(ch) < 128 for ch in text)


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
