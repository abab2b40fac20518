"""One-time codes, tokens and passwords against a real database (SQLite and PostgreSQL)."""

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update

from mobimart.accounts import service as accounts
from mobimart.accounts.models import OtpCode, User
from mobimart.db import Database
from mobimart.errors import DomainError, Unauthorized
from mobimart.settings import get_settings


async def test_first_code_creates_the_account_once(
    db: Database, new_phone: Callable[[], str], read_code: Any
) -> None:
    phone = new_phone()
    async with db.session() as s:
        await accounts.request_code(s, phone=phone, ip="1.1.1.1")
    async with db.session() as s:
        user = await accounts.verify_code(s, phone=phone, code=await read_code(phone))
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 1
        stored = await s.get(User, user.id)
        assert stored is not None
        assert stored.phone == phone


async def test_code_is_single_use(db: Database, new_phone: Any, read_code: Any) -> None:
    phone = new_phone()
    async with db.session() as s:
        await accounts.request_code(s, phone=phone, ip="1.1.1.1")
    code = await read_code(phone)
    async with db.session() as s:
        await accounts.verify_code(s, phone=phone, code=code)
    async with db.session() as s:
        with pytest.raises(DomainError) as err:
            await accounts.verify_code(s, phone=phone, code=code)
    assert err.value.code == "code_used"


async def test_concurrent_use_of_one_code_signs_in_once(
    db: Database, new_phone: Any, read_code: Any
) -> None:
    phone = new_phone()
    async with db.session() as s:
        await accounts.request_code(s, phone=phone, ip="1.1.1.1")
    code = await read_code(phone)

    async def attempt() -> str:
        async with db.session() as s:
            try:
                await accounts.verify_code(s, phone=phone, code=code)
                return "ok"
            except DomainError as exc:
                return exc.code

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert results.count("ok") == 1
    assert set(results) == {"ok", "code_used"}


async def test_five_wrong_tries_lock_the_code(db: Database, new_phone: Any, read_code: Any) -> None:
    phone = new_phone()
    async with db.session() as s:
        await accounts.request_code(s, phone=phone, ip="1.1.1.1")
    code = await read_code(phone)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    codes = []
    for _ in range(5):
        async with db.session() as s:
            with pytest.raises(DomainError) as err:
                await accounts.verify_code(s, phone=phone, code=wrong)
            codes.append(err.value.code)
    assert codes == ["wrong_code"] * 4 + ["code_locked"]
    async with db.session() as s:
        with pytest.raises(DomainError) as err:
            await accounts.verify_code(s, phone=phone, code=code)  # even the right code now
    assert err.value.code == "code_locked"


async def test_expired_code_is_refused(db: Database, new_phone: Any, read_code: Any) -> None:
    phone = new_phone()
    async with db.session() as s:
        await accounts.request_code(s, phone=phone, ip="1.1.1.1")
        await s.execute(
            update(OtpCode).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await s.commit()
    async with db.session() as s:
        with pytest.raises(DomainError) as err:
            await accounts.verify_code(s, phone=phone, code=await read_code(phone))
    assert err.value.code == "code_expired"


async def test_resend_waits_and_hourly_limit_per_number(db: Database, new_phone: Any) -> None:
    phone = new_phone()
    async with db.session() as s:
        await accounts.request_code(s, phone=phone, ip="1.1.1.1")
        with pytest.raises(DomainError) as err:
            await accounts.request_code(s, phone=phone, ip="1.1.1.1")
    assert err.value.status == 429
    assert err.value.extra["retry_after"] > 0

    get_settings().otp_resend_seconds = 0
    async with db.session() as s:
        for _ in range(get_settings().otp_per_phone_per_hour - 1):
            await accounts.request_code(s, phone=phone, ip="1.1.1.1")
        with pytest.raises(DomainError) as err:
            await accounts.request_code(s, phone=phone, ip="1.1.1.1")
    assert err.value.status == 429
    assert "number" in err.value.detail


async def test_hourly_limit_per_ip(db: Database, new_phone: Any) -> None:
    get_settings().otp_per_ip_per_hour = 3
    async with db.session() as s:
        for _ in range(3):
            await accounts.request_code(s, phone=new_phone(), ip="9.9.9.9")
        with pytest.raises(DomainError) as err:
            await accounts.request_code(s, phone=new_phone(), ip="9.9.9.9")
        assert "network" in err.value.detail
        await accounts.request_code(s, phone=new_phone(), ip="8.8.8.8")  # other IPs unaffected


async def test_token_expiry_and_revocation(db: Database, make_user: Any) -> None:
    user = await make_user()
    async with db.session() as s:
        token, row = await accounts.issue_token(s, user=user, kind="api")
        assert (await accounts.authenticate(s, token=token, kind="api"))[0].id == user.id
        with pytest.raises(Unauthorized):
            await accounts.authenticate(s, token=token, kind="session")  # kinds do not mix
        await accounts.revoke_token(s, user_id=user.id, token_id=row.id)
        with pytest.raises(Unauthorized):
            await accounts.authenticate(s, token=token, kind="api")

        token2, row2 = await accounts.issue_token(s, user=user, kind="api")
        row2.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await s.commit()
        with pytest.raises(Unauthorized):
            await accounts.authenticate(s, token=token2, kind="api")


async def test_password_sign_in(db: Database, make_user: Any) -> None:
    user = await make_user()
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        await accounts.set_password(
            s, user=fresh, password="a good passphrase", current_password=None
        )
        assert fresh.password_hash
        assert "a good passphrase" not in fresh.password_hash
        signed = await accounts.password_sign_in(s, phone=user.phone, password="a good passphrase")
        assert signed.id == user.id
        for phone, password in [(user.phone, "wrong password"), ("+8613999999999", "whatever1")]:
            with pytest.raises(DomainError) as err:
                await accounts.password_sign_in(s, phone=phone, password=password)
            assert err.value.code == "wrong_credentials"
        with pytest.raises(DomainError) as err:
            await accounts.set_password(
                s, user=fresh, password="another one 2", current_password="nope"
            )
        assert err.value.code == "wrong_password"
