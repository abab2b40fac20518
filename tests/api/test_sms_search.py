"""Search by text message: the inbound endpoint Kannel's sms-service calls."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_from_bytes

import httpx
from sqlalchemy import select

from mobimart.accounts import privacy
from mobimart.accounts.domain import Channel
from mobimart.catalog import service as catalog
from mobimart.db import Database
from mobimart.infra.sms.models import SmsMessage
from mobimart.settings import get_settings
from tests import factories

URL = "/api/v1/sms/inbound"


def _params(sender: str, text: str, message_id: str = "") -> dict[str, str]:
    return {
        "secret": get_settings().sms_inbound_secret.get_secret_value(),
        "from": sender,
        "text": text,
        "id": message_id,
    }


async def _texts_to(db: Database, phone: str) -> list[str]:
    from mobimart.infra.pii import get_vault

    async with db.session() as s:
        rows = await s.scalars(
            select(SmsMessage)
            .where(SmsMessage.to_hash == get_vault().lookup_hash(phone))
            .order_by(SmsMessage.id)
        )
        return [m.text for m in rows]


async def test_a_text_is_a_search_answered_with_three_short_links(
    client: httpx.AsyncClient, db: Database, make_user: Any, new_phone: Any
) -> None:
    merchant = await factories.merchant(db, await make_user(), admin=await make_user(admin=True))
    async with db.session() as s:
        for name, price in [
            ("Steel Kettle", 9900),
            ("Electric Kettle 1.7 L", 15900),
            ("Kettle Descaler", 1500),
            ("Whistling Kettle", 8800),
            ("Tea Cup", 500),
        ]:
            await catalog.create_product(
                s, merchant=merchant, name=name, price_minor=price, stock=1, publish=True
            )
    phone = new_phone()
    response = await client.get(URL, params=_params(phone, "kettel", "m-1"))
    assert response.status_code == 200
    [reply] = await _texts_to(db, phone)
    lines = reply.splitlines()
    assert lines[0] == "Mobimart: top results for “kettel”:"
    assert len(lines) == 4
    assert all("Kettle" in line and "/p/" in line for line in lines[1:])
    link = lines[1].rsplit(" ", 1)[1]
    assert link.startswith(get_settings().base_url)
    page = await client.get(link.removeprefix(get_settings().base_url), follow_redirects=True)
    assert page.status_code == 200
    assert lines[1].split(". ", 1)[1].split(" ¥")[0] in page.text
    # Kannel retrying the same message gets no second reply.
    await client.get(URL, params=_params(phone, "kettel", "m-1"))
    assert len(await _texts_to(db, phone)) == 1
    await client.get(URL, params=_params(phone, "zebra crossing", "m-2"))
    assert "nothing found" in (await _texts_to(db, phone))[-1]


async def test_stop_keywords_opt_out_and_are_not_searches(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    user = await make_user()
    async with db.session() as s:
        await privacy.set_consent(s, user_id=user.id, channel=Channel.sms, granted=True, source="t")
    for n, word in enumerate(["STOP", "退订", " td "]):
        await client.get(URL, params=_params(user.phone, word, f"stop-{n}"))
    texts = await _texts_to(db, user.phone)
    assert len(texts) == 3
    assert all("no more marketing texts" in t for t in texts)
    async with db.session() as s:
        assert not await privacy.has_consent(s, user_id=user.id, channel=Channel.sms)


async def test_chinese_arrives_as_ucs2_bytes(
    client: httpx.AsyncClient, db: Database, new_phone: Any
) -> None:
    phone = new_phone()
    secret = get_settings().sms_inbound_secret.get_secret_value()
    text = quote_from_bytes("保温杯".encode("utf-16-be"))
    response = await client.get(
        f"{URL}?secret={secret}&from={phone}&coding=2&charset=UTF-16BE&text={text}"
    )
    assert response.status_code == 200
    assert "“保温杯”" in (await _texts_to(db, phone))[0]


async def test_wrong_secret_is_refused_and_sends_nothing(
    client: httpx.AsyncClient, db: Database, new_phone: Any
) -> None:
    phone = new_phone()
    response = await client.get(URL, params={**_params(phone, "kettle"), "secret": "guess"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await _texts_to(db, phone) == []
