"""The campaigns domain's background jobs: sending a campaign, and a tick every minute that
starts scheduled campaigns when due, wakes messages whose quiet hours are over, queues again
what a dead worker left unconfirmed, and restarts sends that have work and no worker.

The tick reads only `campaigns` (a handful of rows are `scheduled` or `sending` at once) and
the (campaign_id, status, id) index of `campaign_messages`: nothing to do costs a few
indexed lookups a minute."""

from __future__ import annotations

import asyncio
import logging

import uvloop
from huey import crontab
from sqlalchemy import select

from mobimart.campaigns import automations, segments, sending
from mobimart.campaigns.models import Campaign
from mobimart.db import Database, utcnow
from mobimart.errors import DomainError
from mobimart.infra.jobs import huey, run_with_db
from mobimart.settings import get_settings

log = logging.getLogger(__name__)


async def send(database: Database, campaign_id: int) -> dict[str, int]:
    tally = await sending.run(database, campaign_id=campaign_id)
    return tally.as_dict()


@huey.task()  # type: ignore[untyped-decorator]
def send_campaign(campaign_id: int) -> dict[str, int]:
    """On uvloop: the send is thousands of small socket reads and writes a second, which
    uvloop does in about half the CPU of the default loop."""

    async def main() -> dict[str, int]:
        database = Database(get_settings().database_url)  # this loop owns its pool
        try:
            return await send(database, campaign_id)
        finally:
            await database.dispose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def enqueue_send(campaign_id: int) -> None:
    """Have a worker send the campaign (call after the commit that made it sending or
    scheduled). Enqueueing twice is harmless: runs share the work, never a message."""
    send_campaign(campaign_id)


async def tick(database: Database) -> dict[str, int]:
    now = utcnow()
    settings = get_settings()
    after_s = settings.campaign_resolve_after_s
    counts = {"started": 0, "woken": 0, "requeued": 0, "resumed": 0, "finished": 0}
    to_send: set[int] = set()
    async with database.session() as session:
        due = await session.scalars(
            select(Campaign.id).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
        )
        for campaign_id in list(due):
            try:
                await sending.start(session, campaign_id=campaign_id)
            except DomainError as exc:  # e.g. its segment was deleted: the others still go
                await session.rollback()
                log.warning("campaign %s not started: %s", campaign_id, exc.code)
                continue
            counts["started"] += 1
            to_send.add(campaign_id)
        in_progress = (
            await session.execute(
                select(Campaign.id, Campaign.channel).where(Campaign.status == "sending")
            )
        ).all()
        for campaign_id, channel in in_progress:
            woken = await sending.wake_deferred(session, campaign_id=campaign_id, now=now)
            requeued = await sending.requeue_stale(
                session,
                campaign_id=campaign_id,
                now=now,
                after_s=after_s,
                reported=sending.reported(channel, settings),
            )
            await session.commit()
            counts["woken"] += woken
            counts["requeued"] += requeued
            if woken or requeued or not await sending.has_messages(session, campaign_id):
                # Made sending but its messages not made yet: the send makes them first.
                to_send.add(campaign_id)
            elif await sending.has_status(
                session, campaign_id=campaign_id, status="queued"
            ) and not await sending.has_status(session, campaign_id=campaign_id, status="sending"):
                # Work and nobody on it (its worker died and its rows were settled): resume.
                counts["resumed"] += 1
                to_send.add(campaign_id)
            elif await sending.finish_if_done(session, campaign_id=campaign_id):
                counts["finished"] += 1
    for campaign_id in sorted(to_send):
        enqueue_send(campaign_id)
    return counts


@huey.periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
def campaigns_tick() -> dict[str, int]:
    return run_with_db(tick)


# --- Automations: due runs and abandoned carts -----------------------------------------------


async def automations_tick(database: Database) -> int:
    """Due automation runs, a batch at a time until none is left (at most 50 batches of
    200 a minute: a backlog is worked off over the next ticks)."""
    taken = 0
    async with database.session() as session:
        for _ in range(50):
            batch = await automations.run_due(session)
            taken += batch
            if batch < automations.RUN_BATCH:
                break
    return taken


@huey.periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
def run_automations() -> int:
    return run_with_db(automations_tick)


async def abandoned_carts_tick(database: Database) -> int:
    async with database.session() as session:
        return await automations.find_abandoned_carts(session)


@huey.periodic_task(crontab(minute="*/15"))  # type: ignore[untyped-decorator]
def find_abandoned_carts() -> int:
    return run_with_db(abandoned_carts_tick)


# --- Upkeep: segments' expiring members and automation runs a crash left running ------------


async def upkeep(database: Database) -> dict[str, int]:
    async with database.session() as session:
        rechecked = await segments.sweep(session)
    async with database.session() as session:
        unstuck = await automations.sweep_stuck(session)
    return {"segment_members_rechecked": rechecked, "automation_runs_unstuck": unstuck}


@huey.periodic_task(crontab(minute="*/5"))  # type: ignore[untyped-decorator]
def campaigns_upkeep() -> dict[str, int]:
    return run_with_db(upkeep)
