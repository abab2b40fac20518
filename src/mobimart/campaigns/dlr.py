"""Delivery reports from Kannel: each campaign SMS carries a `dlr-url` naming its message and
signed for it, and every report Kannel calls back with moves that message on.

Kannel's statuses: 1 delivered, 2 not delivered, 4 buffered at the SMSC, 8 taken by the
SMSC, 16 refused by the SMSC. 4 and 8 prove the gateway has the message (`accepted`); 1, 2
and 16 are final. A report never moves a message back: a repeated or late report changes
nothing, so Kannel's retries are harmless.

Reports arrive at up to twice the send rate (an 8 and a 1 per message). One transaction
each would cap them at the database's commits per second; `Recorder` commits the reports
that arrive while the previous commit runs together, and answers each request only after
its commit (an unanswered report is retried by Kannel, so none is lost)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns.models import CampaignMessage
from mobimart.db import Database, utcnow
from mobimart.settings import Settings, get_settings

DELIVERED, UNDELIVERED, BUFFERED, SMSC_ACK, SMSC_REJECT = 1, 2, 4, 8, 16
INTERIM = (BUFFERED, SMSC_ACK)
FINAL = (DELIVERED, UNDELIVERED, SMSC_REJECT)
PATH = "/api/v1/sms/dlr"
MAX_ID = 2**31 - 1  # message ids are 32-bit integers
# Group commit: a group waits at most this long for more reports (a few ms: Kannel holds
# max-pending-requests reports in flight, 16 in deploy/, so a long wait caps the rate at
# 16 / wait), or until this many.
GROUP_WAIT_S = 0.002
GROUP_MAX = 2000


def signature(message_id: int, settings: Settings | None = None) -> str:
    """HMAC of the message id: only Kannel, which got it from us, can report on a message."""
    secret = (settings or get_settings()).sms_dlr_secret.get_secret_value().encode()
    return hmac.new(secret, b"dlr:%d" % message_id, hashlib.sha256).hexdigest()[:24]


def verify(message_id: int, given: str) -> bool:
    return hmac.compare_digest(signature(message_id).encode(), given.encode())


def url_for(message_id: int, settings: Settings | None = None) -> str:
    """The dlr-url for one message; Kannel puts the report's status where `%d` is."""
    settings = settings or get_settings()
    base = settings.sms_dlr_url or settings.base_url.rstrip("/") + PATH
    return f"{base}?m={message_id}&k={signature(message_id, settings)}&s=%d"


async def lock(session: AsyncSession, ids: Sequence[int]) -> None:
    """Lock the rows `ids` in id order before writing them: reports and the worker's
    write-back update rows of the same batch at once, in transactions of several statements,
    and two that take the same rows in different orders deadlock."""
    m = CampaignMessage
    await session.execute(select(m.id).where(m.id.in_(ids)).order_by(m.id).with_for_update())


async def record(
    session: AsyncSession, reports: Sequence[tuple[int, int]], *, now: Any = None
) -> None:
    """Apply (message id, Kannel status) reports; the caller commits. Three statements at
    most, whatever the number of reports."""
    now = now or utcnow()
    await lock(session, [message_id for message_id, _ in reports])
    by_status: dict[int, list[int]] = defaultdict(list)
    for message_id, status in reports:
        by_status[status].append(message_id)
    m = CampaignMessage
    not_final = or_(m.dlr_status.is_(None), m.dlr_status.in_(INTERIM))
    for status, ids in by_status.items():
        if status in INTERIM:
            values: dict[str, Any] = {
                "status": case(
                    (m.status.in_(("sending", "queued", "deferred")), "accepted"),
                    else_=m.status,
                ),
            }
        elif status == DELIVERED:
            values = {"status": "delivered", "delivered_at": func.coalesce(m.delivered_at, now)}
        elif status in FINAL:
            values = {"status": "failed", "reason": "undelivered"}
        else:
            continue  # a status Kannel does not send with dlr-mask 31
        await session.execute(
            update(m)
            .where(m.id.in_(ids), not_final)
            .values(dlr_status=status, sent_at=func.coalesce(m.sent_at, now), **values)
            .execution_options(synchronize_session=False)
        )


class Recorder:
    """Group commit for one event loop: `submit` returns once the report is committed."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._pending: list[tuple[int, int, asyncio.Future[None]]] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, message_id: int, status: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((message_id, status, future))
        if len(self._pending) >= GROUP_MAX:
            self._full.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_groups())
        await future

    async def _commit_groups(self) -> None:
        """One transaction at a time; the reports that arrive while one commits go together
        in the next. Quiet: a report waits one commit; busy: a group a commit-time long."""
        while self._pending:
            if len(self._pending) < GROUP_MAX:
                # Let the requests already on their way (read by the server in the same
                # turn of the loop) join this group.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), GROUP_WAIT_S)
            self._full.clear()
            group, self._pending = self._pending[:GROUP_MAX], self._pending[GROUP_MAX:]
            try:
                async with self.database.session() as session:
                    await record(session, [(m, s) for m, s, _ in group])
                    await session.commit()
            except Exception as exc:  # each request answers 500; Kannel sends it again
                for _, _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, _, future in group:
                if not future.done():
                    future.set_result(None)


def recorder(state: Any, database: Database) -> Recorder:
    """The app's recorder, made in the loop that serves it (an app in tests may be served by
    several loops one after another)."""
    loop = asyncio.get_running_loop()
    current: tuple[asyncio.AbstractEventLoop, Recorder] | None = getattr(
        state, "dlr_recorder", None
    )
    if current is None or current[0] is not loop:
        current = (loop, Recorder(database))
        state.dlr_recorder = current
    return current[1]
