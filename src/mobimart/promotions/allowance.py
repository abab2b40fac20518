"""Per-person limits (a coupon's uses per person, a flash sale's units per buyer) as one
conditional upsert, so parallel requests from one person cannot pass the limit."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.promotions.models import Allowance


async def take(session: AsyncSession, *, subject: str, user_id: int, n: int, limit: int) -> bool:
    """Count `n` more for the person in the caller's transaction; False if over `limit`."""
    if n > limit:
        return False
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Allowance).values(subject=subject, user_id=user_id, taken=n)
    result = await session.execute(
        statement.on_conflict_do_update(
            index_elements=["subject", "user_id"],
            set_={"taken": Allowance.taken + n},
            where=Allowance.taken + n <= limit,
        )
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def give_back(session: AsyncSession, *, subject: str, user_id: int, n: int) -> None:
    await session.execute(
        update(Allowance)
        .where(Allowance.subject == subject, Allowance.user_id == user_id, Allowance.taken >= n)
        .values(taken=Allowance.taken - n)
    )


async def taken(session: AsyncSession, *, subjects: list[str], user_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(Allowance.subject, Allowance.taken).where(
            Allowance.subject.in_(subjects), Allowance.user_id == user_id
        )
    )
    return {subject: count for subject, count in rows}
