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
from tests.e2e.conftest import free_port, start_server
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


def test_search_by_text_message_through_kannel(tmp_path: Path) -> None:
    """A phone texts the service number; Kannel calls the server; the server answers through
    Kannel with the top three products and their short links."""
    port = free_port()
    secret = "inbound-test-secret"
    inbound = f"http://127.0.0.1:{port}/api/v1/sms/inbound?secret={secret}"
    (tmp_path / "kannel").mkdir()
    with running_kannel(tmp_path / "kannel", inbound=inbound) as kannel:
        proc, server = start_server(
            tmp_path / "var",
            port=port,
            MOBIMART_SMS_BACKEND="kannel",
            MOBIMART_KANNEL_SENDSMS_URL=kannel.sendsms_url,
            MOBIMART_KANNEL_USERNAME=kannel.username,
            MOBIMART_KANNEL_PASSWORD=kannel.password,
            MOBIMART_SMS_INBOUND_SECRET=secret,
            MOBIMART_BASE_URL=f"http://127.0.0.1:{port}",
        )
        try:
            kannel.receive("+8613912345678", "10690000", "cake stand")
            _, receiver, reply = kannel.next_text(timeout=20)
            assert receiver in {"+8613912345678", "8613912345678", "13912345678"}
            lines = reply.splitlines()
            assert "top results" in lines[0]
            assert len(lines) == 4
            assert all("Cake" in line.title() for line in lines[1:])
            link = lines[1].rsplit(" ", 1)[1]
            assert link.startswith(server.url + "/p/")
            page = httpx.get(link, follow_redirects=True)
            assert page.status_code == 200
            assert lines[1].split(". ", 1)[1].split(" ¥")[0] in page.text
            kannel.receive("+8613912345678", "10690000", "STOP")
            _, _, confirmation = kannel.next_text(timeout=20)
            assert "no more marketing texts" in confirmation
            log = server.log.read_text()
            assert secret not in log  # the callback URL carries the secret and the number
            assert "13912345678" not in log
        finally:
            proc.terminate()
            proc.wait(10)
