"""`Idempotency-Key` for requests that move money or stock: the first response is stored with
a hash of the request and replayed to every retry with the same key; the same key with a
different request is refused with 422.

The key's row is inserted before the work, in the work's transaction, so a parallel retry
waits on the unique index until the first commits and then replays its result instead of
doing the work again. Refusals are not stored: a refused request moved nothing, so its
retry is simply decided again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mobimart.db import Base, utcnow
from mobimart.errors import PROBLEM_CONTENT_TYPE, DomainError

# Retries come within minutes; a day covers a phone that was offline overnight.
KEEP = dt.timedelta(days=1)
_IN_PROGRESS = 0
_WAIT_S = 10.0

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=100,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string (a UUID): a retry with the same key replays the first "
        "response instead of moving money again.",
    ),
]


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(80))  # the operation and its target
    key: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]  # 0 while the first request is still running
    body: Mapped[Any] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


def _digest(request: Any) -> str:
    data = json.dumps(jsonable_encoder(request), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def _response(status: int, body: Any, *, replayed: bool) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    media = PROBLEM_CONTENT_TYPE if status >= 400 else "application/json"
    return JSONResponse(body, status_code=status, headers=headers, media_type=media)


async def run(
    session: AsyncSession,
    *,
    user_id: int,
    scope: str,
    key: str | None,
    request: Any,
    work: Callable[[], Awaitable[Any]],
    status: int = 200,
) -> JSONResponse:
    """Do `work` (which commits) once per key; its result is the JSON body."""
    if key is None:
        return _response(status, jsonable_encoder(await work()), replayed=False)
    digest = _digest(request)
    where = (
        IdempotencyRecord.user_id == user_id,
        IdempotencyRecord.scope == scope,
        IdempotencyRecord.key == key,
    )
    for _ in range(3):
        try:
            session.add(
                IdempotencyRecord(
                    user_id=user_id,
                    scope=scope,
                    key=key,
                    request_hash=digest,
                    status_code=_IN_PROGRESS,
                    body=None,
                )
            )
            await session.flush()
            break
        except IntegrityError:
            await session.rollback()
            replayed = await _replay(session, where, digest)
            if replayed is not None:
                return replayed
            # The first request was refused and left nothing: decide this one afresh.
    else:
        raise DomainError("idempotency_conflict", "Retry the request.", 409)
    try:
        result = jsonable_encoder(await work())
    except BaseException:
        await session.rollback()  # the placeholder goes with the work
        raise
    await session.execute(
        update(IdempotencyRecord).where(*where).values(status_code=status, body=result)
    )
    await session.commit()
    return _response(status, result, replayed=False)


async def previous(
    session: AsyncSession, *, user_id: int, scope: str, key: str | None, request: Any
) -> JSONResponse | None:
    """The first answer under this key, if there is one: for routes that refuse late
    requests before doing the work (a sold-out sale), so a retry still gets its answer."""
    if key is None:
        return None
    where = (
        IdempotencyRecord.user_id == user_id,
        IdempotencyRecord.scope == scope,
        IdempotencyRecord.key == key,
    )
    if await session.scalar(select(IdempotencyRecord.id).where(*where)) is None:
        return None  # the usual case, answered without ending the caller's transaction
    return await _replay(session, where, _digest(request))


async def _replay(session: AsyncSession, where: Any, digest: str) -> JSONResponse | None:
    deadline = asyncio.get_running_loop().time() + _WAIT_S
    while True:
        record = (
            await session.execute(
                select(
                    IdempotencyRecord.request_hash,
                    IdempotencyRecord.status_code,
                    IdempotencyRecord.body,
                ).where(*where)
            )
        ).one_or_none()
        await session.rollback()  # a fresh snapshot on the next read
        if record is None:
            return None
        if record.request_hash != digest:
            raise DomainError(
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request; use a new key.",
                422,
            )
        if record.status_code != _IN_PROGRESS:
            return _response(record.status_code, record.body, replayed=True)
        if asyncio.get_running_loop().time() > deadline:
            raise DomainError(
                "idempotency_in_progress", "The first request with this key is still running.", 409
            )
        await asyncio.sleep(0.05)


async def purge(session: AsyncSession) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - KEEP)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
