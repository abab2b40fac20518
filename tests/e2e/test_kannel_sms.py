"""Sign-in codes through a real Kannel: our API -> smsbox sendsms -> bearerbox -> SMSC."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mobimart.db import Database
from mobimart.infra.sms import send_sms
from mobimart.infra.sms.models import SmsMessage
from mobimart.settings import get_settings
from tests.e2e.kannel import Kannel, running_kannel


@pytest.fixture(scope="module")
def kannel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    with running_kannel(tmp_path_factory.mktemp("kannel")) as k:
        yield k


@pytest.fixture
def kannel_backend(kannel: Kannel) -> Kannel:
    settings = get_settings()
    settings.sms_backend = "kannel"
    settings.kannel_sendsms_url = kannel.sendsms_url
    settings.kannel_username = kannel.username
    settings.kannel_password = type(settings.kannel_password)(kannel.password)
    return kannel


async def test_sign_in_code_arrives_through_kannel(
    client: httpx.AsyncClient,
    db: Database,
    kannel_backend: Kannel,
    new_phone: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    phone = new_phone()
    caplog.set_level("DEBUG")
    assert (await client.post("/api/v1/auth/otp", json={"phone": phone})).status_code == 202
    sender, receiver, text = kannel_backend.next_message()
    assert receiver == phone
    assert sender == get_settings().sms_sender
    code = re.search(r"\b(\d{6})\b", text)
    assert code
    token = await client.post("/api/v1/auth/token", json={"phone": phone, "code": code.group(1)})
    assert token.status_code == 201
    async with db.session() as s:
        logged = await s.scalar(select(SmsMessage).order_by(SmsMessage.id.desc()).limit(1))
    assert logged is not None
    assert logged.status == "accepted"
    assert logged.backend == "kannel"
    # Neither the number nor the code reaches the logs (httpx logs URLs at INFO).
    assert phone[3:] not in caplog.text
    assert code.group(1) not in caplog.text


async def test_chinese_text_is_sent_as_ucs2(
    db: Database, kannel_backend: Kannel, new_phone: Any
) -> None:
    phone = new_phone()
    async with db.session() as s:
        await send_sms(s, to=phone, text="【Mobimart】您的验证码是 123456")
    _, receiver, text = kannel_backend.next_message()
    assert receiver == phone
    assert text == "【Mobimart】您的验证码是 123456"


async def test_gateway_refusal_is_a_503_and_logged_as_failed(
    client: httpx.AsyncClient, db: Database, kannel_backend: Kannel, new_phone: Any
) -> None:
    get_settings().kannel_password = type(get_settings().kannel_password)("wrong")
    response = await client.post("/api/v1/auth/otp", json={"phone": new_phone()})
    assert response.status_code == 503
    assert response.json()["code"] == "sms_unavailable"
    async with db.session() as s:
        logged = await s.scalar(select(SmsMessage).order_by(SmsMessage.id.desc()).limit(1))
    assert logged is not None
    assert logged.status == "failed"
    assert logged.gateway_reply.startswith("403")


async def test_unreachable_gateway_is_a_503(
    client: httpx.AsyncClient, new_phone: Any, tmp_path: Path
) -> None:
    settings = get_settings()
    settings.sms_backend = "kannel"
    settings.kannel_sendsms_url = "http://127.0.0.1:9/cgi-bin/sendsms"
    response = await client.post("/api/v1/auth/otp", json={"phone": new_phone()})
    assert response.status_code == 503
