"""`Idempotency-Key` for requests that move money or stock: the first response is stored with
a hash of the request and replayed to every retry with the same key; the same key with a
different request is refused with 422.

The key's row is inserted before the work, in the work's transaction, so a parallel retry
waits on the unique index until the first commits and then replays its result instead of
doing the work again. Errors are stored too: a retry of a refused payment is refused alike.
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
from mobimart.errors import PROBLEM_CONTENT_TYPE, DomainError, problem

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


def _problem(exc: DomainError) -> dict[str, Any]:
    from http import HTTPStatus

    title = HTTPStatus(exc.status).phrase
    return problem(exc.status, exc.code, title, exc.detail, **exc.extra)


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
    except IntegrityError:
        await session.rollback()
        return await _replay(session, where, digest)
    try:
        result = jsonable_encoder(await work())
        code = status
    except DomainError as exc:
        if exc.status >= 500:
            raise
        await session.rollback()  # the work and its placeholder row go
        result, code = _problem(exc), exc.status
        try:
            session.add(
                IdempotencyRecord(
                    user_id=user_id,
                    scope=scope,
                    key=key,
                    request_hash=digest,
                    status_code=code,
                    body=result,
                )
            )
            await session.commit()
        except IntegrityError:  # a parallel retry got in first; answer as it was answered
            await session.rollback()
            return await _replay(session, where, digest)
        return _response(code, result, replayed=False)
    await session.execute(
        update(IdempotencyRecord).where(*where).values(status_code=code, body=result)
    )
    await session.commit()
    return _response(code, result, replayed=False)


async def _replay(session: AsyncSession, where: Any, digest: str) -> JSONResponse:
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
            raise DomainError("idempotency_conflict", "Retry the request.", 409)
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
