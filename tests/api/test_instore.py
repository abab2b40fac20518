"""Face-to-face payments over the API and the pages: the shop's QR (a collection) and the
customer's payment code, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image
from pyzbar.pyzbar import ZBarSymbol, decode
from sqlalchemy import func, select, update

from mobimart.accounts import service as accounts
from mobimart.accounts.models import User
from mobimart.db import Database, utcnow
from mobimart.merchants.models import Merchant
from mobimart.payments import domain, instore, ledger
from mobimart.payments.models import Collection, Payment, PaymentCode
from mobimart.settings import get_settings
from mobimart.web.deps import SESSION_COOKIE
from mobimart.web.templating import CSRF_COOKIE
from tests import factories

_refs = itertools.count(1)
CSRF = "c" * 43


def read_qr(png: bytes) -> str:
    """What a phone's scanner reads from the image (zbar, QR symbols only)."""
    found = decode(Image.open(io.BytesIO(png)), symbols=[ZBarSymbol.QRCODE])
    assert len(found) == 1, found
    return str(found[0].data.decode())


def data_uri_png(html: str, element_id: str) -> bytes:
    match = re.search(rf'src="data:image/png;base64,([^"]+)"[^>]*id="{element_id}"', html)
    assert match, f"no inline QR #{element_id}"
    return base64.b64decode(match.group(1))


@dataclass
class Shop:
    merchant: Merchant
    owner: User
    staff: User
    owner_headers: dict[str, str]
    staff_headers: dict[str, str]


async def _shop(db: Database, make_user: Any, auth_headers: Any, n: int = 1) -> Shop:
    admin = await make_user(admin=True)
    owner, staff = await make_user(), await make_user()
    merchant = await factories.merchant(db, owner, admin=admin, n=n)
    await factories.add_staff(db, merchant, owner, staff)
    return Shop(merchant, owner, staff, await auth_headers(owner), await auth_headers(staff))


async def _consumer(
    db: Database, make_user: Any, auth_headers: Any, money: int = 0
) -> tuple[User, dict[str, str]]:
    user = await make_user(name="Walk-in")
    if money:
        await factories.credit(db, user, money, f"test:{next(_refs)}")
    return user, await auth_headers(user)


async def _balances(db: Database, merchant_id: int) -> tuple[int, int, int]:
    """(available, pending, platform commission)"""
    async with db.session() as s:
        return (
            await ledger.balance(s, domain.available(merchant_id), "CNY"),
            await ledger.balance(s, domain.pending(merchant_id), "CNY"),
            await ledger.balance(s, domain.COMMISSION, "CNY"),
        )


async def _wallet(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return int((await client.get("/api/v1/me/wallet", headers=headers)).json()["balance_minor"])


async def _collection(
    client: httpx.AsyncClient, shop: Shop, amount: int, note: str = ""
) -> dict[str, Any]:
    made = await client.post(
        f"/api/v1/merchants/{shop.merchant.id}/collections",
        json={"amount_minor": amount, "note": note},
        headers=shop.staff_headers,
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


# --- the shop's QR ---------------------------------------------------------------------------


async def test_collection_qr_encodes_the_public_pay_url(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    before = utcnow()
    made = await _collection(client, shop, 1250, "table 4")
    assert made["url"] == f"{get_settings().base_url}/pay/c/{made['token']}"
    assert len(made["token"]) >= 22
    expires = dt.datetime.fromisoformat(made["expires_at"])
    assert before + dt.timedelta(minutes=4) < expires <= utcnow() + instore.COLLECTION_TTL
    assert made["status"] == "open"

    png = await client.get(
        f"/api/v1/merchants/{shop.merchant.id}/collections/{made['id']}/qr.png",
        headers=shop.owner_headers,
    )
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert read_qr(png.content) == made["url"]

    seen = await client.get(f"/api/v1/collections/{made['token']}")  # no sign-in needed to look
    assert seen.json() == {
        "shop_name": "Test shop 1",
        "amount_minor": 1250,
        "currency": "CNY",
        "note": "table 4",
        "status": "open",
        "expires_at": made["expires_at"],
    }
    assert (await client.get("/api/v1/collections/" + "x" * 22)).status_code == 404


async def test_collection_is_paid_once_when_many_pay_at_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    made = await _collection(client, shop, 2000)
    payers = [await _consumer(db, make_user, auth_headers, 5000) for _ in range(3)]
    url = f"/api/v1/collections/{made['token']}/pay"
    answers = await asyncio.gather(
        *(
            client.post(
                url,
                json={"amount_minor": 2000},
                headers={**headers, "Idempotency-Key": f"tap-{n}"},
            )
            for n, (_, headers) in enumerate(payers * 2)  # each payer taps twice, new key each
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 5, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"collection_paid"}
    paid = next(a.json() for a in answers if a.status_code == 201)
    assert paid["purpose"] == "in_store"
    assert paid["status"] == "succeeded"
    assert paid["amount_minor"] == 2000

    wallets = [await _wallet(client, headers) for _, headers in payers]
    assert sorted(wallets) == [3000, 5000, 5000]
    async with db.session() as s:
        assert await s.scalar(select(func.count(Payment.id))) == 1
        payment = await s.get(Payment, paid["id"])
        assert payment is not None
        assert payment.merchant_id == shop.merchant.id
        row = await s.get(Collection, made["id"])
        assert row is not None
        assert row.payment_id == paid["id"]
    # In-store money is the merchant's at once, less the 5 % commission.
    assert await _balances(db, shop.merchant.id) == (1900, 0, 100)
    balance = await client.get(
        f"/api/v1/merchants/{shop.merchant.id}/balance", headers=shop.owner_headers
    )
    assert balance.json()["available_minor"] == 1900
    status = await client.get(
        f"/api/v1/merchants/{shop.merchant.id}/collections/{made['id']}",
        headers=shop.staff_headers,
    )
    assert status.json()["status"] == "paid"
    assert status.json()["payment_id"] == paid["id"]


async def test_collection_pay_replays_its_key_and_refuses_it_for_another_body(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    made = await _collection(client, shop, 1500)
    _, headers = await _consumer(db, make_user, auth_headers, 2000)
    url = f"/api/v1/collections/{made['token']}/pay"
    wrong = await client.post(url, json={"amount_minor": 1499}, headers=headers)
    assert wrong.status_code == 409
    assert wrong.json()["code"] == "amount_mismatch"

    keyed = {**headers, "Idempotency-Key": "counter-1"}
    first = await client.post(url, json={"amount_minor": 1500}, headers=keyed)
    again = await client.post(url, json={"amount_minor": 1500}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    other = await client.post(url, json={"amount_minor": 1}, headers=keyed)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert await _wallet(client, headers) == 500
    unkeyed = await client.post(url, json={"amount_minor": 1500}, headers=headers)
    assert unkeyed.status_code == 409
    assert unkeyed.json()["code"] == "collection_paid"


async def test_expired_collection_is_gone_and_moves_no_money(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    made = await _collection(client, shop, 800)
    _, headers = await _consumer(db, make_user, auth_headers, 1000)
    async with db.session() as s:
        await s.execute(
            update(Collection)
            .where(Collection.id == made["id"])
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        await s.commit()
    paid = await client.post(
        f"/api/v1/collections/{made['token']}/pay", json={"amount_minor": 800}, headers=headers
    )
    assert paid.status_code == 410
    assert paid.json()["code"] == "collection_expired"
    assert (await client.get(f"/api/v1/collections/{made['token']}")).json()["status"] == "expired"
    assert await _wallet(client, headers) == 1000
    assert await _balances(db, shop.merchant.id) == (0, 0, 0)


async def test_short_wallet_leaves_the_collection_payable(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    made = await _collection(client, shop, 3000)
    user, headers = await _consumer(db, make_user, auth_headers, 1000)
    url = f"/api/v1/collections/{made['token']}/pay"
    short = await client.post(url, json={"amount_minor": 3000}, headers=headers)
    assert short.status_code == 409
    assert short.json()["code"] == "insufficient_funds"
    async with db.session() as s:
        assert await s.scalar(select(func.count(Payment.id))) == 0
    await factories.credit(db, user, 2000, f"test:{next(_refs)}")
    assert (await client.post(url, json={"amount_minor": 3000}, headers=headers)).status_code == 201
    assert await _wallet(client, headers) == 0


async def test_only_an_approved_merchant_collects(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    owner = await make_user()
    pending = await factories.merchant(db, owner, status="pending", n=3)
    headers = await auth_headers(owner)
    made = await client.post(
        f"/api/v1/merchants/{pending.id}/collections", json={"amount_minor": 100}, headers=headers
    )
    assert made.status_code == 403
    assert made.json()["code"] == "merchant_not_approved"
    charged = await client.post(
        f"/api/v1/merchants/{pending.id}/payment-codes/charge",
        json={"code": "1" * 18, "amount_minor": 100},
        headers=headers,
    )
    assert charged.status_code == 403


# --- the customer's payment code -------------------------------------------------------------


async def _code(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    made = await client.post("/api/v1/me/payment-codes", headers=headers)
    assert made.status_code == 201, made.text
    body = made.json()
    left = dt.datetime.fromisoformat(body["expires_at"]) - utcnow()
    assert dt.timedelta(seconds=55) < left <= dt.timedelta(seconds=60)
    assert re.fullmatch(r"[1-9]\d{17}", body["code"])
    return str(body["code"])


async def test_payment_code_is_charged_once_by_two_tills_at_once(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    user, headers = await _consumer(db, make_user, auth_headers, 10_000)
    code = await _code(client, headers)
    async with db.session() as s:
        stored = await s.scalar(select(PaymentCode).where(PaymentCode.user_id == user.id))
        assert stored is not None
        assert code not in stored.code_hash  # only a keyed digest is kept

    url = f"/api/v1/merchants/{shop.merchant.id}/payment-codes/charge"
    spaced = " ".join(code[i : i + 4] for i in range(0, 18, 4))  # as typed from the screen
    answers = await asyncio.gather(
        client.post(
            url,
            json={"code": spaced, "amount_minor": 4200, "note": "2 coffees"},
            headers={**shop.owner_headers, "Idempotency-Key": "till-1"},
        ),
        client.post(
            url,
            json={"code": code, "amount_minor": 4200},
            headers={**shop.staff_headers, "Idempotency-Key": "till-2"},
        ),
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["code"] == "payment_code_used"
    paid = next(a for a in answers if a.status_code == 201).json()
    assert paid["purpose"] == "in_store"
    assert await _wallet(client, headers) == 10_000 - 4200
    assert await _balances(db, shop.merchant.id) == (3990, 0, 210)
    async with db.session() as s:
        payment = await s.get(Payment, paid["id"])
        assert payment is not None
        assert (payment.payer_id, payment.merchant_id) == (user.id, shop.merchant.id)
        record = await s.scalar(select(Collection).where(Collection.payment_id == paid["id"]))
        assert record is not None  # the till's record of who charged what
        assert record.amount_minor == 4200
        assert record.created_by in {shop.owner.id, shop.staff.id}
        stored = await s.scalar(select(PaymentCode).where(PaymentCode.user_id == user.id))
        assert stored is not None
        assert stored.used_at is not None
        assert stored.payment_id == paid["id"]

    # The winning till's retry replays; the same key for another amount is refused.
    winner = answers.index(next(a for a in answers if a.status_code == 201))
    till = [shop.owner_headers, shop.staff_headers][winner]
    key = {**till, "Idempotency-Key": f"till-{winner + 1}"}
    body = [
        {"code": spaced, "amount_minor": 4200, "note": "2 coffees"},
        {"code": code, "amount_minor": 4200},
    ][winner]
    replay = await client.post(url, json=body, headers=key)
    assert replay.status_code == 201
    assert replay.json()["id"] == paid["id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    reused = await client.post(url, json={**body, "amount_minor": 4300}, headers=key)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert await _wallet(client, headers) == 10_000 - 4200


async def test_payment_code_expires_after_a_minute(
    client: httpx.AsyncClient,
    db: Database,
    make_user: Any,
    auth_headers: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    _, headers = await _consumer(db, make_user, auth_headers, 1000)
    code = await _code(client, headers)
    later = utcnow() + dt.timedelta(seconds=61)
    monkeypatch.setattr(instore, "utcnow", lambda: later)
    charged = await client.post(
        f"/api/v1/merchants/{shop.merchant.id}/payment-codes/charge",
        json={"code": code, "amount_minor": 100},
        headers=shop.staff_headers,
    )
    assert charged.status_code == 410
    assert charged.json()["code"] == "payment_code_expired"
    assert await _wallet(client, headers) == 1000


async def test_a_new_code_voids_the_last_and_unknown_codes_are_refused(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    _, headers = await _consumer(db, make_user, auth_headers, 1000)
    old = await _code(client, headers)
    new = await _code(client, headers)
    assert old != new
    url = f"/api/v1/merchants/{shop.merchant.id}/payment-codes/charge"
    for code in (old, "12345", "abcdefghijklmnopqr"):
        refused = await client.post(
            url, json={"code": code, "amount_minor": 100}, headers=shop.staff_headers
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_payment_code"
    over = await client.post(
        url,
        json={"code": new, "amount_minor": instore.CODE_LIMIT + 1},
        headers=shop.staff_headers,
    )
    assert over.status_code == 422
    assert over.json()["code"] == "invalid_amount"
    ok = await client.post(url, json={"code": new, "amount_minor": 100}, headers=shop.staff_headers)
    assert ok.status_code == 201, ok.text


async def test_short_wallet_refuses_the_charge_and_keeps_the_code(
    client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    user, headers = await _consumer(db, make_user, auth_headers, 500)
    code = await _code(client, headers)
    url = f"/api/v1/merchants/{shop.merchant.id}/payment-codes/charge"
    short = await client.post(
        url,
        json={"code": code, "amount_minor": 900},
        headers={**shop.staff_headers, "Idempotency-Key": "short-1"},
    )
    assert short.status_code == 409
    assert short.json()["code"] == "insufficient_funds"
    async with db.session() as s:
        assert await s.scalar(select(func.count(Payment.id))) == 0
        assert await s.scalar(select(func.count(Collection.id))) == 0
    await factories.credit(db, user, 400, f"test:{next(_refs)}")
    # Refusals are not stored under their key: the retry is decided afresh.
    retry = await client.post(
        url,
        json={"code": code, "amount_minor": 900},
        headers={**shop.staff_headers, "Idempotency-Key": "short-1"},
    )
    assert retry.status_code == 201, retry.text
    assert await _wallet(client, headers) == 0


# --- pages -----------------------------------------------------------------------------------


@asynccontextmanager
async def _browser(app: Any, db: Database, user: User | None) -> AsyncIterator[httpx.AsyncClient]:
    cookies = {CSRF_COOKIE: CSRF}
    if user is not None:
        async with db.session() as s:
            fresh = await s.get(User, user.id)
            assert fresh is not None
            cookies[SESSION_COOKIE], _ = await accounts.issue_token(s, user=fresh, kind="session")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies=cookies
    ) as c:
        yield c


async def test_pay_page_signs_in_then_pays_once(
    app: Any, client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    made = await _collection(client, shop, 1234, "table 9")
    path = f"/pay/c/{made['token']}"
    async with _browser(app, db, None) as anonymous:
        page = await anonymous.get(path)
    assert page.status_code == 200
    assert "Test shop 1" in page.text
    assert "¥12.34" in page.text
    assert "table 9" in page.text
    assert f'href="/signin?next=/pay/c/{made["token"]}"' in page.text

    user, headers = await _consumer(db, make_user, auth_headers, 2000)
    async with _browser(app, db, user) as phone:
        page = await phone.get(path)
        assert "Pay ¥12.34 from wallet" in page.text
        assert page.headers["cache-control"] == "private, no-store"
        forged = await phone.post(path, data={"amount_minor": "1234", "csrf_token": "nope"})
        assert forged.status_code == 403
        paid = await phone.post(path, data={"amount_minor": "1234", "csrf_token": CSRF})
        assert paid.status_code == 303
        done = await phone.get(path)
        assert 'id="paid"' in done.text
        assert "Pay ¥12.34 from wallet" not in done.text
        twice = await phone.post(path, data={"amount_minor": "1234", "csrf_token": CSRF})
        assert twice.status_code == 409
    assert await _wallet(client, headers) == 2000 - 1234


async def test_paycode_page_shows_a_scannable_code_and_then_the_payment(
    app: Any, client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    user, _ = await _consumer(db, make_user, auth_headers, 5000)
    async with _browser(app, db, user) as phone:
        page = await phone.get("/me/paycode")
        assert page.status_code == 200
        code = read_qr(data_uri_png(page.text, "paycode-qr"))
        assert re.fullmatch(r"\d{18}", code)
        assert " ".join(code[i : i + 4] for i in range(0, 18, 4)) in page.text
        assert 'data-countdown="60"' in page.text
        waiting = await phone.get("/me/paycode/status")
        assert waiting.status_code == 200
        assert "data-final" not in waiting.text
        charged = await client.post(
            f"/api/v1/merchants/{shop.merchant.id}/payment-codes/charge",
            json={"code": code, "amount_minor": 1800},
            headers=shop.staff_headers,
        )
        assert charged.status_code == 201, charged.text
        paid = await phone.get("/me/paycode/status")
        assert "data-final" in paid.text
        assert "Paid ¥18.00 to Test shop 1" in paid.text


async def test_till_page_makes_a_qr_and_charges_a_code(
    app: Any, client: httpx.AsyncClient, db: Database, make_user: Any, auth_headers: Any
) -> None:
    shop = await _shop(db, make_user, auth_headers)
    _, headers = await _consumer(db, make_user, auth_headers, 5000)
    base = f"/console/{shop.merchant.id}/collect"
    async with _browser(app, db, shop.staff) as till:
        assert (await till.get(base)).status_code == 200
        bad = await till.post(base, data={"amount": "12.345", "csrf_token": CSRF})
        assert bad.status_code == 422
        assert "Type an amount such as 12.50" in bad.text
        made = await till.post(base, data={"amount": "¥8.80", "note": "tea", "csrf_token": CSRF})
        assert made.status_code == 303
        shown = await till.get(made.headers["location"])
        url = read_qr(data_uri_png(shown.text, "collection-qr"))
        token = url.rsplit("/", 1)[1]
        assert url == f"{get_settings().base_url}/pay/c/{token}"
        assert (await client.get(f"/api/v1/collections/{token}")).json()["amount_minor"] == 880
        status_url = re.search(r'data-poll="([^"]+)"', shown.text)
        assert status_url
        assert "collection-waiting" in (await till.get(status_url.group(1))).text
        await client.post(
            f"/api/v1/collections/{token}/pay", json={"amount_minor": 880}, headers=headers
        )
        assert "collection-paid" in (await till.get(status_url.group(1))).text

        code = (await client.post("/api/v1/me/payment-codes", headers=headers)).json()["code"]
        charged = await till.post(
            base + "/charge", data={"code": code, "amount": "3", "csrf_token": CSRF}
        )
        assert charged.status_code == 303
        receipt = await till.get(charged.headers["location"])
        assert "Charged ¥3.00" in receipt.text
        again = await till.post(
            base + "/charge", data={"code": code, "amount": "3", "csrf_token": CSRF}
        )
        assert again.status_code == 409
        assert "used already" in again.text
        assert code not in again.text
    assert await _wallet(client, headers) == 5000 - 880 - 300


def test_amounts_typed_at_the_till() -> None:
    from mobimart.errors import DomainError
    from mobimart.text import parse_amount

    assert parse_amount("12.5") == 1250
    assert parse_amount(" ¥1,234.56 ") == 123456
    assert parse_amount("3") == 300
    for bad in ("", "0", "-1", "1.001", "abc", "NaN", "Infinity", "1e999"):
        with pytest.raises(DomainError):
            parse_amount(bad)
