"""SMS campaigns through a real Kannel: the server (uvicorn, as `make run` starts it), the
worker (`mobimart worker`) and bearerbox + smsbox, with this test as the SMSC.

A campaign reaches the SMSC with each person's name and short link, the link redirects and
counts the click, delivery reports come back; a recipient's STOP opts them out and the next
campaign skips them; a worker killed mid-send is replaced and nobody gets a second message
or none."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huey.storage import SqliteStorage
from sqlalchemy import select

from mobimart.accounts import service as accounts
from mobimart.accounts.domain import Channel
from mobimart.accounts.models import User
from mobimart.accounts.privacy import set_consent
from mobimart.campaigns import sending, tasks
from mobimart.campaigns.models import Campaign, CampaignMessage, Segment, SegmentMember
from mobimart.db import Database
from mobimart.infra.jobs import huey
from tests.e2e.conftest import PHONE, Server, free_port, start_server
from tests.e2e.kannel import Kannel, running_kannel

RESOLVE_AFTER_S = 4  # a dead worker's unconfirmed rows go out again after this


@dataclass
class Stack:
    server: Server
    kannel: Kannel
    var: Path
    database: Database

    def worker(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "mobimart", "worker", "--workers", "2"],
            env=self.server.env,
            stdout=(self.var / "worker.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def enqueue_send(self, campaign_id: int) -> None:
        """Put the send on the worker's queue (its SQLite file), as `tasks.enqueue_send`
        does in the server."""
        task = tasks.send_campaign.s(campaign_id)
        queue = SqliteStorage("mobimart", filename=str(self.var / "jobs.db"))
        queue.enqueue(huey.serialize_task(task), task.priority)

    def messages(self, count: int, timeout: float = 20) -> list[tuple[str, str]]:
        """(receiver, text) of the next `count` messages at the SMSC."""
        out = []
        for _ in range(count):
            _, receiver, text = self.kannel.next_message(timeout=timeout)
            out.append((receiver, text))
        return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("campaign")
    port = free_port()
    secret = "inbound-campaign-secret"
    (root / "kannel").mkdir()
    with running_kannel(
        root / "kannel", inbound=f"http://127.0.0.1:{port}/api/v1/sms/inbound?secret={secret}"
    ) as kannel:
        var = root / "var"
        proc, server = start_server(
            var,
            port=port,
            MOBIMART_SMS_BACKEND="kannel",
            MOBIMART_KANNEL_SENDSMS_URL=kannel.sendsms_url,
            MOBIMART_KANNEL_USERNAME=kannel.username,
            MOBIMART_KANNEL_PASSWORD=kannel.password,
            MOBIMART_SMS_INBOUND_SECRET=secret,
            MOBIMART_BASE_URL=f"http://127.0.0.1:{port}",
            MOBIMART_QUIET_HOURS="00:00-00:00",  # the test runs at any hour
            MOBIMART_CAMPAIGN_RESOLVE_AFTER_S=str(RESOLVE_AFTER_S),
        )
        database = Database(server.env["MOBIMART_DATABASE_URL"], null_pool=True)
        try:
            yield Stack(server, kannel, var, database)
        finally:
            asyncio.run(database.dispose())
            proc.terminate()
            proc.wait(10)


async def _people(db: Database, phones: list[str], *, consent: bool = True) -> list[int]:
    ids = []
    async with db.session() as s:
        for n, phone in enumerate(phones):
            user = User(phone=phone, phone_hash=accounts.phone_hash(phone), display_name=f"Li{n}")
            s.add(user)
            await s.flush()
            ids.append(user.id)
        await s.commit()
        if consent:
            for user_id in ids:
                await set_consent(
                    s, user_id=user_id, channel=Channel.sms, granted=True, source="test"
                )
    return ids


async def _campaign(db: Database, user_ids: list[int], *, throttle: int | None = None) -> int:
    """A platform SMS campaign to these people, started as `send now` starts it."""
    async with db.session() as s:
        segment = Segment(name="e2e", rules=[{"kind": "has_consent", "channel": "sms"}])
        s.add(segment)
        await s.flush()
        s.add_all(SegmentMember(segment_id=segment.id, user_id=u) for u in user_ids)
        campaign = Campaign(
            name="Weekend",
            channel="sms",
            segment_id=segment.id,
            template="Hi {name}, {shop} weekend deals: {link} Reply STOP to opt out",
            link_url="/search?q=kettle",
            status="sending",
            throttle_per_s=throttle,
        )
        s.add(campaign)
        await s.commit()
        await sending.start(s, campaign_id=campaign.id)
        return int(campaign.id)


async def _rows(db: Database, campaign_id: int) -> dict[int, CampaignMessage]:
    async with db.session() as s:
        rows = await s.scalars(
            select(CampaignMessage).where(CampaignMessage.campaign_id == campaign_id)
        )
        return {r.user_id: r for r in rows}


def _wait_for(check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_campaign_reaches_the_smsc_and_stop_opts_out(stack: Stack) -> None:
    db = stack.database
    phones = [f"+86136550{n:05d}" for n in range(3)]
    user_ids = asyncio.run(_people(db, phones))
    (no_consent,) = asyncio.run(_people(db, ["+8613655099999"], consent=False))
    campaign_id = asyncio.run(_campaign(db, [*user_ids, no_consent]))
    worker = stack.worker()
    try:
        stack.enqueue_send(campaign_id)
        got = dict(stack.messages(3))
        assert set(got) == set(phones)
        rows = asyncio.run(_rows(db, campaign_id))
        for n, (phone, user_id) in enumerate(zip(phones, user_ids, strict=True)):
            link = f"{stack.server.url}/s/{rows[user_id].link_token}"
            assert got[phone] == (f"Hi Li{n}, Mobimart weekend deals: {link} Reply STOP to opt out")
        assert rows[no_consent].status == "skipped"
        assert rows[no_consent].reason == "no_consent"

        # The short link redirects and the click is recorded (a phone's browser: preview
        # bots count for nothing).
        found = re.search(r"http\S+/s/\S+", got[phones[0]])
        assert found
        clicked = httpx.get(found.group(0), headers={"User-Agent": str(PHONE["user_agent"])})
        assert clicked.status_code == 302
        assert clicked.headers["location"].endswith("/search?q=kettle")

        # Delivery reports: Kannel's fake SMSC reports each message delivered.
        def delivered() -> bool:
            rows = asyncio.run(_rows(db, campaign_id))
            return all(rows[u].status == "delivered" for u in user_ids)

        _wait_for(delivered)
        rows = asyncio.run(_rows(db, campaign_id))
        assert rows[user_ids[0]].clicked_at is not None
        assert all(rows[u].dlr_status == 1 and rows[u].parts == 1 for u in user_ids)

        # The first recipient texts STOP: opted out at once, confirmed by reply.
        stack.kannel.receive(phones[0], "10690000", "STOP")
        _, receiver, confirmation = stack.kannel.next_text(timeout=20)
        assert receiver == phones[0]
        assert "no more marketing texts" in confirmation

        # The next campaign skips them.
        second = asyncio.run(_campaign(db, user_ids))
        stack.enqueue_send(second)
        assert {r for r, _ in stack.messages(2)} == set(phones[1:])
        _wait_for(lambda: asyncio.run(_rows(db, second))[user_ids[0]].status == "skipped")
        assert asyncio.run(_rows(db, second))[user_ids[0]].reason == "no_consent"
        with pytest.raises(TimeoutError):
            stack.kannel.next_message(timeout=1.5)
    finally:
        _stop(worker)
    assert phones[0][4:] not in stack.server.log.read_text()  # numbers stay out of logs
    assert phones[0][4:] not in (stack.var / "worker.log").read_text()


def test_a_worker_killed_mid_send_is_replaced_without_doubles_or_gaps(stack: Stack) -> None:
    db = stack.database
    phones = [f"+86136551{n:05d}" for n in range(100)]
    campaign_id = asyncio.run(_campaign(db, asyncio.run(_people(db, phones)), throttle=25))
    received: list[str] = []
    first = stack.worker()
    try:
        stack.enqueue_send(campaign_id)
        received += [r for r, _ in stack.messages(30)]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        _stop(first)
    # What the dead worker handed over before it died still arrives.
    while True:
        try:
            received.append(stack.kannel.next_message(timeout=1.5)[1])
        except TimeoutError:
            break
    assert len(received) < len(phones)  # it really died mid-send
    rows = asyncio.run(_rows(db, campaign_id))
    assert any(r.status == "sending" for r in rows.values())  # left for the reports to settle

    # A new worker, once the dead one's unconfirmed rows are due to go out again.
    time.sleep(RESOLVE_AFTER_S + 0.5)
    second = stack.worker()
    try:
        stack.enqueue_send(campaign_id)
        received += [r for r, _ in stack.messages(len(phones) - len(received), timeout=20)]
        with pytest.raises(TimeoutError):
            stack.kannel.next_message(timeout=1.5)
    finally:
        _stop(second)
    assert sorted(received) == sorted(phones)  # each number exactly once

    def settled() -> bool:
        rows = asyncio.run(_rows(db, campaign_id))
        return all(r.status == "delivered" for r in rows.values())

    _wait_for(settled)

    async def status() -> str:
        async with db.session() as s:
            campaign = await s.get(Campaign, campaign_id)
            assert campaign is not None
            return str(campaign.status)

    assert asyncio.run(status()) == "sent"
