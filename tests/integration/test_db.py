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


async def test_insert_or_skip_skips_a_row_that_is_there(db: Database) -> None:
    """One INSERT ... ON CONFLICT DO NOTHING for both databases (reviews, the rate limiter
    and the word list use it)."""
    from mobimart.db import insert_or_skip
    from mobimart.moderation.models import BlockedWord

    async with db.session() as s:
        first = await s.scalar(
            insert_or_skip(s, BlockedWord, index_elements=["word"])
            .values(word="刷单")
            .returning(BlockedWord.id)
        )
        assert first is not None
        again = await s.execute(
            insert_or_skip(s, BlockedWord, index_elements=["word"]).values(
                [{"word": "刷单"}, {"word": "加微信"}]
            )
        )
        assert again.rowcount == 1  # type: ignore[attr-defined]
        await s.commit()
        assert sorted(await s.scalars(select(BlockedWord.word))) == sorted(["刷单", "加微信"])
