import datetime as dt
from typing import Any

from sqlalchemy import func, select

from mobimart.accounts import service as accounts
from mobimart.accounts.models import AuthToken, OtpCode
from mobimart.accounts.tasks import purge_expired
from mobimart.db import Database, utcnow


async def test_purge_removes_only_old_codes_and_long_dead_tokens(
    db: Database, make_user: Any
) -> None:
    user = await make_user()
    now = utcnow()
    async with db.session() as s:
        for age in (dt.timedelta(hours=2), dt.timedelta(days=2)):
            s.add(
                OtpCode(
                    phone_hash="h",
                    code_digest="d",
                    created_at=now - age,
                    expires_at=now - age + dt.timedelta(minutes=5),
                )
            )
        await s.commit()
        _, live = await accounts.issue_token(s, user=user, kind="api")
        _, dead = await accounts.issue_token(s, user=user, kind="api")
        dead.expires_at = now - dt.timedelta(days=31)
        await s.commit()
    assert await purge_expired(db) == (1, 1, 0)
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(OtpCode)) == 1
        assert list(await s.scalars(select(AuthToken.id))) == [live.id]
