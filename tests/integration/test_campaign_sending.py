"""Campaign sending against real databases: making the messages, claiming them, screening,
quiet hours, the gateway path (a stand-in sendsms server), delivery reports and what a dead
worker leaves behind."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from mobimart.accounts.domain import Channel
from mobimart.accounts.models import User
from mobimart.accounts.privacy import set_consent
from mobimart.campaigns import dlr, sending, tasks
from mobimart.campaigns.models import Campaign, CampaignMessage, Segment, SegmentMember
from mobimart.db import Database, utcnow
from mobimart.infra.pii import get_vault
from mobimart.infra.sms.models import SmsMessage
from mobimart.settings import get_settings

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


async def _campaign(
    db: Database,
    users: list[User],
    *,
    channel: str = "sms",
    template: str = "Hi {name}, {shop} sale: {link} Reply STOP to opt out",
    link_url: str | None = "/p/1",
    throttle: int | None = None,
) -> int:
    async with db.session() as s:
        segment = Segment(name="everyone", rules=[])
        s.add(segment)
        await s.flush()
        s.add_all(SegmentMember(segment_id=segment.id, user_id=u.id) for u in users)
        campaign = Campaign(
            name="Sale",
            channel=channel,
            segment_id=segment.id,
            template=template,
            link_url=link_url,
            status="sending",
            throttle_per_s=throttle,
        )
        s.add(campaign)
        await s.commit()
        return campaign.id


async def _people(make_user: Callable[..., Any], n: int, **kw: Any) -> list[User]:
    users = []
    for i in range(n):
        user = await make_user(name=f"Ann{i}", **kw)
        users.append(user)
    return users


async def _grant(db: Database, users: list[User], granted: bool = True) -> None:
    async with db.session() as s:
        for user in users:
            await set_consent(
                s, user_id=user.id, channel=Channel.sms, granted=granted, source="test"
            )


async def _messages(db: Database, campaign_id: int) -> dict[int, CampaignMessage]:
    async with db.session() as s:
        rows = await s.scalars(
            select(CampaignMessage).where(CampaignMessage.campaign_id == campaign_id)
        )
        return {m.user_id: m for m in rows}


@pytest.fixture(autouse=True)
def _daytime(monkeypatch: pytest.MonkeyPatch) -> None:
    """No quiet hours unless a test sets them: the tests run at any hour."""
    monkeypatch.setattr(get_settings(), "quiet_hours", "00:00-00:00")


@pytest.fixture(autouse=True)
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sends the tick hands to the worker (the tests run them themselves)."""
    calls: list[int] = []
    monkeypatch.setattr(tasks, "enqueue_send", calls.append)
    return calls


async def test_start_makes_one_message_per_member_and_is_idempotent(
    db: Database, make_user: Callable[..., Any]
) -> None:
    users = await _people(make_user, 3)
    campaign_id = await _campaign(db, users)
    async with db.session() as s:
        assert await sending.start(s, campaign_id=campaign_id) == 3
    first = await _messages(db, campaign_id)
    tokens = {m.link_token for m in first.values()}
    assert len(tokens) == 3
    assert all(t and len(t) == 11 for t in tokens)
    assert {m.status for m in first.values()} == {"queued"}
    async with db.session() as s:
        assert await sending.start(s, campaign_id=campaign_id) == 3
        late = await make_user()
        segment_id = (await s.get(Campaign, campaign_id)).segment_id  # type: ignore[union-attr]
        s.add(SegmentMember(segment_id=segment_id, user_id=late.id))
        await s.commit()
        assert await sending.start(s, campaign_id=campaign_id) == 4
    again = await _messages(db, campaign_id)
    assert {u: m.link_token for u, m in again.items() if u in first} == {
        u: m.link_token for u, m in first.items()
    }
    async with db.session() as s:
        campaign = await s.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaign.status == "sending"
        assert campaign.started_at is not None


async def test_no_link_no_token(db: Database, make_user: Callable[..., Any]) -> None:
    users = await _people(make_user, 2)
    campaign_id = await _campaign(db, users, template="Hi {name}", link_url=None)
    async with db.session() as s:
        await sending.start(s, campaign_id=campaign_id)
    assert {m.link_token for m in (await _messages(db, campaign_id)).values()} == {None}


async def test_concurrent_claimers_never_share_a_row(
    db: Database, make_user: Callable[..., Any]
) -> None:
    users = await _people(make_user, 60)
    campaign_id = await _campaign(db, users)
    async with db.session() as s:
        await sending.start(s, campaign_id=campaign_id)

    async def claimer() -> list[int]:
        got: list[int] = []
        while True:
            async with db.session() as s:
                batch = await sending.claim(s, campaign_id=campaign_id, limit=7, now=utcnow())
            if not batch:
                return got
            got += [c.id for c in batch]
            await asyncio.sleep(0)

    results = await asyncio.gather(*(claimer() for _ in range(5)))
    every = [i for r in results for i in r]
    assert len(every) == len(set(every)) == 60
    assert {m.status for m in (await _messages(db, campaign_id)).values()} == {"sending"}


async def test_outbox_send_screens_and_personalises(
    db: Database, make_user: Callable[..., Any]
) -> None:
    ok, never, opted_out, capped = await _people(make_user, 4)
    await _grant(db, [ok, opted_out, capped])
    await _grant(db, [opted_out], granted=False)
    # `capped` got the weekly maximum of texts already.
    async with db.session() as s:
        for n in range(get_settings().marketing_cap_per_week):
            old = Campaign(name=f"old{n}", channel="sms", template="x", status="sent")
            s.add(old)
            await s.flush()
            s.add(
                CampaignMessage(
                    campaign_id=old.id, user_id=capped.id, status="delivered", sent_at=utcnow()
                )
            )
        await s.commit()
    campaign_id = await _campaign(db, [ok, never, opted_out, capped])
    tally = await tasks.send(db, campaign_id)
    assert tally["sent"] == 1
    assert tally["skipped"] == 3
    messages = await _messages(db, campaign_id)
    assert messages[ok.id].status == "accepted"
    assert messages[ok.id].parts == 1
    assert (messages[never.id].status, messages[never.id].reason) == ("skipped", "no_consent")
    assert (messages[opted_out.id].status, messages[opted_out.id].reason) == (
        "skipped",
        "no_consent",
    )
    assert (messages[capped.id].status, messages[capped.id].reason) == ("skipped", "capped")
    async with db.session() as s:
        texts = list(
            await s.scalars(
                select(SmsMessage.text).where(
                    SmsMessage.to_hash == get_vault().lookup_hash(ok.phone or "")
                )
            )
        )
        campaign = await s.get(Campaign, campaign_id)
    token = messages[ok.id].link_token
    assert texts == [
        f"Hi Ann0, Mobimart sale: {get_settings().base_url}/s/{token} Reply STOP to opt out"
    ]
    assert campaign is not None
    assert campaign.status == "sent"
    # A second run finds nothing to send.
    assert (await tasks.send(db, campaign_id))["sent"] == 0


async def test_quiet_hours_defer_then_send(
    db: Database, make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    (user,) = await _people(make_user, 1)
    await _grant(db, [user])
    local = utcnow().astimezone(SHANGHAI)
    start, end = local - dt.timedelta(hours=1), local + dt.timedelta(hours=1)
    monkeypatch.setattr(
        get_settings(), "quiet_hours", f"{start:%H:%M}-{end:%H:%M}"
    )  # +86 numbers are in Asia/Shanghai (UTC+8, no DST)
    campaign_id = await _campaign(db, [user])
    tally = await tasks.send(db, campaign_id)
    assert tally["sent"] == 0
    message = (await _messages(db, campaign_id))[user.id]
    assert message.status == "deferred"
    assert message.not_before is not None
    assert abs(message.not_before - end.replace(second=0, microsecond=0)) < dt.timedelta(seconds=1)
    async with db.session() as s:
        assert (await s.get(Campaign, campaign_id)).status == "sending"  # type: ignore[union-attr]
    # Still night: the tick wakes nothing.
    assert (await tasks.tick(db))["woken"] == 0
    monkeypatch.setattr(get_settings(), "quiet_hours", "00:00-00:00")
    async with db.session() as s:
        woken = await sending.wake_deferred(
            s, campaign_id=campaign_id, now=message.not_before + dt.timedelta(seconds=1)
        )
        await s.commit()
    assert woken == 1
    assert (await tasks.send(db, campaign_id))["sent"] == 1
    assert (await _messages(db, campaign_id))[user.id].status == "accepted"


async def test_inbox_campaign_lands_in_the_inbox_once(
    db: Database, make_user: Callable[..., Any]
) -> None:
    from mobimart.notifications.models import Notification

    (user,) = await _people(make_user, 1)
    async with db.session() as s:
        await set_consent(s, user_id=user.id, channel=Channel.in_app, granted=True, source="t")
    campaign_id = await _campaign(db, [user], channel="inbox", template="Hi {name}: {link}")
    assert (await tasks.send(db, campaign_id))["sent"] == 1
    assert (await tasks.send(db, campaign_id))["sent"] == 0
    message = (await _messages(db, campaign_id))[user.id]
    assert message.status == "delivered"
    async with db.session() as s:
        notes = list(await s.scalars(select(Notification).where(Notification.user_id == user.id)))
    assert len(notes) == 1
    assert notes[0].link == f"/s/{message.link_token}"


# --- the gateway path, against a stand-in for smsbox --------------------------------------------


class FakeSmsbox:
    """Answers sendsms like Kannel (202 "0: Accepted for delivery") over keep-alive HTTP/1.1
    and keeps every request's parameters."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.refuse: set[str] = set()
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head.split(b" ", 2)[1].decode()
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query))
                self.requests.append(query)
                if query.get("to") in self.refuse:
                    body, status = b"Denied", b"403 Forbidden"
                else:
                    body, status = b"0: Accepted for delivery", b"202 Accepted"
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


@pytest.fixture
async def smsbox(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSmsbox]:
    fake = FakeSmsbox()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = get_settings()
    monkeypatch.setattr(settings, "sms_backend", "kannel")
    monkeypatch.setattr(settings, "kannel_sendsms_url", f"http://127.0.0.1:{port}/cgi-bin/sendsms")
    monkeypatch.setattr(settings, "kannel_connections", 4)
    yield fake
    server.close()


async def test_gateway_send_signs_each_report_url(
    db: Database, make_user: Callable[..., Any], smsbox: FakeSmsbox
) -> None:
    users = await _people(make_user, 25)
    await _grant(db, users)
    smsbox.refuse.add(users[3].phone or "")
    campaign_id = await _campaign(db, users)
    tally = await tasks.send(db, campaign_id)
    assert (tally["sent"], tally["failed"]) == (24, 1)
    assert len(smsbox.requests) == 25
    assert smsbox.connections <= 4  # kept alive, not one connection a message
    messages = await _messages(db, campaign_id)
    by_phone = {u.phone: messages[u.id] for u in users}
    for query in smsbox.requests:
        message = by_phone[query["to"]]
        assert query["dlr-mask"] == "31"
        report = urllib.parse.urlsplit(query["dlr-url"])
        params = dict(urllib.parse.parse_qsl(report.query))
        assert params["m"] == str(message.id)
        assert dlr.verify(message.id, params["k"])
        assert params["s"] == "%d"
        assert query["text"].startswith("Hi Ann")
        assert message.link_token in query["text"]
    assert messages[users[3].id].status == "failed"
    assert {m.status for u, m in messages.items() if u != users[3].id} == {"accepted"}


async def test_throttle_spaces_the_sends(
    db: Database, make_user: Callable[..., Any], smsbox: FakeSmsbox
) -> None:
    users = await _people(make_user, 6)
    await _grant(db, users)
    campaign_id = await _campaign(db, users, throttle=20)
    started = asyncio.get_running_loop().time()
    assert (await tasks.send(db, campaign_id))["sent"] == 6
    assert asyncio.get_running_loop().time() - started >= 5 / 20


# --- delivery reports and a dead worker's rows ------------------------------------------------


async def _sending_rows(db: Database, make_user: Callable[..., Any], n: int) -> list[int]:
    users = await _people(make_user, n)
    campaign_id = await _campaign(db, users)
    async with db.session() as s:
        await sending.start(s, campaign_id=campaign_id)
        claimed = await sending.claim(s, campaign_id=campaign_id, limit=n, now=utcnow())
    return [c.id for c in claimed]


async def _row(db: Database, message_id: int) -> CampaignMessage:
    async with db.session() as s:
        row = await s.get(CampaignMessage, message_id)
    assert row is not None
    return row


async def test_delivery_reports_move_a_message_forward_only(
    client: httpx.AsyncClient, db: Database, make_user: Callable[..., Any]
) -> None:
    (message_id,) = await _sending_rows(db, make_user, 1)

    async def report(status: int, key: str | None = None) -> int:
        params = {"m": message_id, "k": key or dlr.signature(message_id), "s": status}
        return (await client.get("/api/v1/sms/dlr", params=params)).status_code

    assert await report(8, key="0" * 24) == 403
    assert (await _row(db, message_id)).status == "sending"
    assert await report(8) == 200
    acked = await _row(db, message_id)
    assert (acked.status, acked.dlr_status) == ("accepted", 8)
    assert acked.sent_at is not None
    assert await report(1) == 200
    delivered = await _row(db, message_id)
    assert (delivered.status, delivered.dlr_status) == ("delivered", 1)
    assert delivered.delivered_at is not None
    for late in (1, 8, 2):  # Kannel's retries and stragglers change nothing
        assert await report(late) == 200
        again = await _row(db, message_id)
        assert (again.status, again.dlr_status, again.delivered_at) == (
            "delivered",
            1,
            delivered.delivered_at,
        )


async def test_reports_committed_together(
    client: httpx.AsyncClient, db: Database, make_user: Callable[..., Any]
) -> None:
    ids = await _sending_rows(db, make_user, 30)
    responses = await asyncio.gather(
        *(
            client.get("/api/v1/sms/dlr", params={"m": i, "k": dlr.signature(i), "s": s})
            for i in ids
            for s in (8, 1)
        )
    )
    assert {r.status_code for r in responses} == {200}
    for i in ids[::7]:
        assert (await _row(db, i)).status == "delivered"


async def test_failed_report(
    client: httpx.AsyncClient, db: Database, make_user: Callable[..., Any]
) -> None:
    (message_id,) = await _sending_rows(db, make_user, 1)
    params = {"m": message_id, "k": dlr.signature(message_id), "s": 16}
    assert (await client.get("/api/v1/sms/dlr", params=params)).status_code == 200
    row = await _row(db, message_id)
    assert (row.status, row.dlr_status, row.delivered_at) == ("failed", 16, None)


async def test_a_dead_workers_rows_are_settled_by_reports_or_sent_again(
    db: Database, make_user: Callable[..., Any], enqueued: list[int]
) -> None:
    reported, silent, fresh = await _sending_rows(db, make_user, 3)
    long_ago = utcnow() - dt.timedelta(seconds=get_settings().campaign_resolve_after_s + 5)
    async with db.session() as s:
        await s.execute(
            update(CampaignMessage)
            .where(CampaignMessage.id.in_([reported, silent]))
            .values(claimed_at=long_ago)
        )
        await dlr.record(s, [(reported, 8)])
        await s.commit()
    counts = await tasks.tick(db)
    assert counts["requeued"] == 1
    assert (await _row(db, reported)).status == "accepted"
    assert (await _row(db, silent)).status == "queued"
    assert (await _row(db, fresh)).status == "sending"  # its worker may still be on it
    assert len(enqueued) == 1


async def test_a_dead_workers_rows_wait_for_the_reports_to_catch_up(
    db: Database, make_user: Callable[..., Any]
) -> None:
    """In a large send Kannel's reports can run minutes behind: a silent row is sent again
    only once the rows sent after it have their reports, else it might have gone already."""
    silent, behind, later = await _sending_rows(db, make_user, 3)
    after_s = get_settings().campaign_resolve_after_s
    now = utcnow()
    claimed = {silent: 200, behind: 190, later: 150}  # seconds ago
    async with db.session() as s:
        for message_id, ago in claimed.items():
            await s.execute(
                update(CampaignMessage)
                .where(CampaignMessage.id == message_id)
                .values(claimed_at=now - dt.timedelta(seconds=ago))
            )
        # Kannel took the two later ones; their reports have not come yet.
        await sending.mark_sent(s, by_parts={1: [behind, later]}, now=now)
    campaign_id = (await _row(db, silent)).campaign_id

    async def requeue(*, reported: bool = True, at: dt.datetime = now) -> int:
        async with db.session() as s:
            n = await sending.requeue_stale(
                s, campaign_id=campaign_id, now=at, after_s=after_s, reported=reported
            )
            await s.rollback()
        return n

    assert await requeue() == 0
    # Without reports to wait for (the outbox, Web Push), silence after after_s is enough.
    assert await requeue(reported=False) == 1
    async with db.session() as s:
        await dlr.record(s, [(behind, 8)])
        await s.commit()
    # `later` was claimed 50 s after it: within after_s / 2, its report could still be on
    # its way behind the silent row's.
    assert await requeue() == 0
    async with db.session() as s:
        await dlr.record(s, [(later, 1)])
        await s.commit()
    assert await requeue() == 1
    # A report missing for LOST_AFTER_S no longer holds anyone back.
    async with db.session() as s:
        await s.execute(
            update(CampaignMessage)
            .where(CampaignMessage.id == later)
            .values(status="accepted", dlr_status=None)
        )
        await s.commit()
    assert await requeue() == 0
    assert await requeue(at=now + dt.timedelta(seconds=sending.LOST_AFTER_S)) == 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_reports_and_the_write_back_never_deadlock(
    db: Database, make_user: Callable[..., Any]
) -> None:
    """The receiver's group (several statements, one per status) and the worker's write-back
    take rows of the same batch at the same moment, in any order."""
    ids = await _sending_rows(db, make_user, 40)
    rng = random.Random(6)
    for _ in range(25):
        reports = [(i, rng.choice((8, 1, 16))) for i in rng.sample(ids, 30)]
        written = rng.sample(ids, 30)

        async def receiver(reports: list[tuple[int, int]] = reports) -> None:
            async with db.session() as s:
                await dlr.record(s, reports)
                await s.commit()

        async def worker(written: list[int] = written) -> None:
            async with db.session() as s:
                await sending.mark_sent(
                    s, by_parts={1: written[:15], 2: written[15:]}, now=utcnow()
                )

        await asyncio.gather(receiver(), worker(), receiver(reports[::-1]))
    async with db.session() as s:
        unsent = await s.scalar(
            select(func.count()).where(
                CampaignMessage.id.in_(ids), CampaignMessage.sent_at.is_(None)
            )
        )
    assert unsent == 0


async def test_bare_receiver_records_reports_like_the_route(
    db: Database, make_user: Callable[..., Any]
) -> None:
    from mobimart.campaigns.dlr_api import Receiver

    (message_id,) = await _sending_rows(db, make_user, 1)
    transport = httpx.ASGITransport(app=Receiver(db))
    async with httpx.AsyncClient(transport=transport, base_url="http://kannel") as kannel:

        async def report(query: str, path: str = dlr.PATH) -> int:
            return (await kannel.get(f"{path}?{query}")).status_code

        good = f"m={message_id}&k={dlr.signature(message_id)}"
        assert await report(f"m={message_id}&k={'0' * 24}&s=1") == 403
        assert await report(f"{good}&s=1", path="/elsewhere") == 404
        assert await report(f"{good}&s=1&x=2") == 400
        assert await report(f"m=99999999999&k={dlr.signature(1)}&s=1") == 400
        assert (await _row(db, message_id)).status == "sending"
        assert await report(f"{good}&s=1") == 200
        assert await report(f"{good}&s=8") == 200
    row = await _row(db, message_id)
    assert (row.status, row.dlr_status) == ("delivered", 1)


@pytest.mark.parametrize(
    "number",
    [
        "+8613800138000",
        "+85291234567",
        "+12125550123",  # New York
        "+14155550123",  # Los Angeles: the US has many zones
        "+61412345678",  # Australia too
        "+447911123456",
        "+79161234567",
        "+999123",  # no such country
    ],
)
def test_zone_shortcut_agrees_with_the_rule(number: str) -> None:
    from mobimart.campaigns.limits import zone_for_number

    assert sending.zone_of(number) == zone_for_number(number)


async def test_the_tick_hands_a_just_started_campaign_to_a_worker_rather_than_ending_it(
    db: Database, make_user: Callable[..., Any], enqueued: list[int]
) -> None:
    """ "Send now" only marks the campaign sending: until a worker has made its messages, the
    minute tick must not take "no message left" for "all sent"."""
    users = await _people(make_user, 2)
    await _grant(db, users)
    campaign_id = await _campaign(db, users)
    await tasks.tick(db)
    assert enqueued == [campaign_id]
    async with db.session() as s:
        assert (await s.get(Campaign, campaign_id)).status == "sending"  # type: ignore[union-attr]
    await sending.run(db, campaign_id=campaign_id)
    assert {m.status for m in (await _messages(db, campaign_id)).values()} == {"accepted"}
    await tasks.tick(db)
    async with db.session() as s:
        assert (await s.get(Campaign, campaign_id)).status == "sent"  # type: ignore[union-attr]
