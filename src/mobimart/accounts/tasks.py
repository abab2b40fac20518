"""Housekeeping: spent codes and dead tokens are removed; they protect nothing once expired."""

from __future__ import annotations

import datetime as dt

from huey import crontab
from sqlalchemy import delete

from mobimart.accounts.models import AuthToken, OtpCode
from mobimart.db import Database, utcnow
from mobimart.infra import idempotency, throttle
from mobimart.infra.jobs import huey, run_with_db

# Spent codes are kept a day, for support questions ("I never got my code").
OTP_KEEP = dt.timedelta(days=1)
TOKEN_KEEP = dt.timedelta(days=30)


async def purge_expired(database: Database) -> tuple[int, int, int]:
    now = utcnow()
    async with database.session() as session:
        codes = await session.execute(delete(OtpCode).where(OtpCode.created_at < now - OTP_KEEP))
        tokens = await session.execute(
            delete(AuthToken).where(AuthToken.expires_at < now - TOKEN_KEEP)
        )
        # Every limit's window is an hour: a day-old counter limits nothing.
        counters = await throttle.purge(session, older_than=OTP_KEEP)
        # Idempotency keys are replayed for a day; a client retrying later is not retrying.
        await idempotency.purge(session)
        await session.commit()
    return codes.rowcount, tokens.rowcount, counters  # type: ignore[attr-defined]


@huey.periodic_task(crontab(minute="17"))  # type: ignore[untyped-decorator]
def purge_expired_task() -> tuple[int, int, int]:
    return run_with_db(purge_expired)
