"""Order housekeeping every minute: unpaid orders give their stock back, ended flash sales
return their unsold units, orders delivered `auto_complete_days` ago complete (settling their
merchants), gateway refunds the provider did not confirm are asked again, and merchants'
webhooks go out (first tries and retries)."""

from __future__ import annotations

from huey import crontab

from mobimart.checkout import service as checkout
from mobimart.db import Database, settled
from mobimart.infra.jobs import huey, run_with_db
from mobimart.logistics import service as logistics
from mobimart.payments import service as payments
from mobimart.promotions import flashsale
from mobimart.webhooks import service as webhooks


async def housekeeping(database: Database) -> dict[str, int]:
    async with database.session() as session:
        released = await checkout.release_expired(session)
    await settled()  # before the job's event loop ends
    async with database.session() as session:
        closed = await flashsale.close_ended(session)
    async with database.session() as session:
        completed = await logistics.complete_delivered(session)
    async with database.session() as session:
        refunds = await payments.retry_refunds(session)
    sent = 0
    async with database.session() as session:
        for delivery_id in await webhooks.due(session):
            sent += await webhooks.send(session, delivery_id=delivery_id)
    return {
        "released": released,
        "closed": closed,
        "completed": completed,
        "refunds_retried": refunds,
        "webhooks_delivered": sent,
    }


@huey.periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
def housekeeping_task() -> dict[str, int]:
    return run_with_db(housekeeping)
