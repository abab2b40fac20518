from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.audit.models import AuditEntry


def record(
    session: AsyncSession,
    *,
    actor_id: int | None,
    action: str,
    subject_type: str,
    subject_id: int,
    merchant_id: int | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to the caller's transaction: it commits with the decision it records."""
    entry = AuditEntry(
        actor_id=actor_id,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        merchant_id=merchant_id,
        reason=reason,
        data=data or {},
    )
    session.add(entry)
    return entry


async def list_entries(
    session: AsyncSession,
    *,
    merchant_id: int | None = None,
    before_id: int | None = None,
    limit: int,
) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if merchant_id is not None:
        stmt = stmt.where(AuditEntry.merchant_id == merchant_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(await session.scalars(stmt))
