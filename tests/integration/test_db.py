from typing import Any

import pytest
from sqlalchemy import select

from mobimart.accounts.models import User
from mobimart.db import Database, unique_or
from mobimart.errors import Conflict


async def test_unique_or_keeps_the_transaction_and_its_rollback(
    db: Database, make_user: Any
) -> None:
    """A savepoint that is the transaction's first write must not commit on release (SQLite
    opens transactions lazily)."""
    async with db.session() as s:
        async with unique_or(s, Conflict("x", "x")):
            s.add(User(phone=None, phone_hash="first-write"))
        await s.rollback()
    async with db.session() as s:
        assert await s.scalar(select(User).where(User.phone_hash == "first-write")) is None


async def test_unique_or_turns_a_duplicate_into_the_error_and_goes_on(
    db: Database, make_user: Any
) -> None:
    existing = await make_user()
    async with db.session() as s:
        s.add(User(phone=None, phone_hash="kept"))
        with pytest.raises(Conflict):
            async with unique_or(s, Conflict("taken", "taken")):
                s.add(User(phone=None, phone_hash=existing.phone_hash))
        await s.commit()  # the work before the failed block survives
    async with db.session() as s:
        assert await s.scalar(select(User).where(User.phone_hash == "kept")) is not None
