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
        signed = await accounts.password_sign_in(
            s, phone=user.phone, password="a good passphrase", ip="1.1.1.1"
        )
        assert signed.id == user.id
        for phone, password in [(user.phone, "wrong password"), ("+8613999999999", "whatever1")]:
            with pytest.raises(DomainError) as err:
                await accounts.password_sign_in(s, phone=phone, password=password, ip="1.1.1.1")
            assert err.value.code == "wrong_credentials"
        with pytest.raises(DomainError) as err:
            await accounts.set_password(
                s, user=fresh, password="another one 2", current_password="nope"
            )
        assert err.value.code == "wrong_password"


async def test_password_tries_are_limited_per_number(db: Database, make_user: Any) -> None:
    get_settings().password_tries_per_phone_per_hour = 3
    user = await make_user()
    codes = []
    for n in range(4):
        async with db.session() as s:
            try:
                await accounts.password_sign_in(
                    s, phone=user.phone, password=f"guess number {n}", ip=f"10.0.0.{n}"
                )
            except DomainError as exc:
                codes.append(exc.code)
    assert codes == ["wrong_credentials"] * 3 + ["rate_limited"]


async def test_changing_the_password_signs_out_other_devices(db: Database, make_user: Any) -> None:
    user = await make_user()
    async with db.session() as s:
        fresh = await s.get(User, user.id)
        assert fresh is not None
        this_token, this_row = await accounts.issue_token(s, user=fresh, kind="api")
        other_token, _ = await accounts.issue_token(s, user=fresh, kind="session")
        await accounts.set_password(
            s,
            user=fresh,
            password="brand new pw 1",
            current_password=None,
            keep_token_id=this_row.id,
        )
        assert (await accounts.authenticate(s, token=this_token, kind="api"))[0].id == user.id
        with pytest.raises(Unauthorized):
            await accounts.authenticate(s, token=other_token, kind="session")


async def test_parallel_code_requests_send_one_text(db: Database, new_phone: Any) -> None:
    """The resend wait holds under a burst: the limiter's UPDATE is the check."""
    from mobimart.infra.sms.models import SmsMessage

    phone = new_phone()

    async def ask(n: int) -> str:
        async with db.session() as s:
            try:
                await accounts.request_code(s, phone=phone, ip=f"10.1.0.{n}")
                return "sent"
            except DomainError as exc:
                return exc.code

    results = await asyncio.gather(*(ask(n) for n in range(10)))
    assert results.count("sent") == 1
    assert set(results) == {"sent", "rate_limited"}
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(SmsMessage)) == 1
