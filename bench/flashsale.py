"""Flash sale under a crowd: the real server (uvicorn, production settings) on SQLite, then on
PostgreSQL (with Redis holding the hot counter when it is reachable), and `--buyers` people
with their own tokens asking for one unit each at the same moment, over HTTP, for `--stock`
units with a limit of one per person.

    python -m bench.flashsale [--buyers 2000] [--stock 100] [--pg URL | --no-pg] [--no-redis]

After each run the orders are counted in the database: units sold, units above the stock
(oversold) and people over their limit must be 100, 0 and 0, or the run fails.

Summary, one line per database, PostgreSQL last:
  flashsale buyers=… stock=… sold=… oversold=… orders_per_s=… p99_ms=… db=sqlite|postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select

from bench.common import (
    Buyer,
    make_buyers,
    migrated,
    percentile,
    production_env,
    redis_reachable,
    say,
    scratch_dir,
    scratch_postgres,
    serve,
)


@dataclass(frozen=True)
class World:
    sale_id: int
    buyers: list[Buyer]


async def _seed(env: dict[str, str], buyers: int, stock: int) -> World:
    """Demo shops, a flash sale and the buyers, through the real services."""
    database = await migrated(env)
    from mobimart.catalog.models import Variant
    from mobimart.demo import load as demo
    from mobimart.promotions import flashsale

    try:
        await demo.load(database)
        async with database.session() as s:
            variant = await s.scalar(
                select(Variant).where(Variant.stock >= stock).order_by(Variant.id).limit(1)
            )
            if variant is None:
                raise SystemExit(f"no demo variant has {stock} units")
            now = dt.datetime.now(dt.UTC)
            sale = await flashsale.create(
                s,
                merchant_id=variant.merchant_id,
                spec=flashsale.SaleSpec(
                    variant_id=variant.id,
                    price_minor=max(1, variant.price_minor // 2),
                    quantity=stock,
                    per_person=1,
                    starts_at=now - dt.timedelta(seconds=1),
                    ends_at=now + dt.timedelta(hours=1),
                ),
            )
        return World(sale.id, await make_buyers(database, buyers))
    finally:
        await database.dispose()


async def _count(env: dict[str, str], sale_id: int) -> tuple[int, int]:
    """(units sold, people over their limit), from the orders themselves."""
    from mobimart.checkout.models import Order, OrderLine
    from mobimart.db import Database

    database = Database(env["MOBIMART_DATABASE_URL"], null_pool=True)
    try:
        async with database.session() as s:
            per_person = (
                await s.execute(
                    select(Order.user_id, func.sum(OrderLine.quantity))
                    .join(Order, Order.id == OrderLine.order_id)
                    .where(OrderLine.flash_sale_id == sale_id, Order.status != "cancelled")
                    .group_by(Order.user_id)
                )
            ).all()
    finally:
        await database.dispose()
    return sum(int(q) for _, q in per_person), sum(1 for _, q in per_person if q > 1)


@dataclass(frozen=True)
class Run:
    created: int
    sold_out: int
    other: dict[int, int]
    seconds: float
    p99_ms: float


async def _crowd(url: str, world: World) -> Run:
    """Every buyer connected and waiting, then all released at once."""
    start = asyncio.Event()
    latencies: list[float] = []
    statuses: list[tuple[int, str]] = []
    finished: list[float] = []
    limits = httpx.Limits(max_connections=len(world.buyers), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def buy(buyer: Buyer) -> None:
            await start.wait()
            began = time.perf_counter()
            response = await client.post(
                f"/api/v1/flash-sales/{world.sale_id}/orders",
                json={"address_id": buyer.address_id},
                headers={
                    "Authorization": f"Bearer {buyer.token}",
                    "Idempotency-Key": uuid.uuid4().hex,
                },
            )
            done = time.perf_counter()
            latencies.append((done - began) * 1000)
            finished.append(done)
            code = response.json().get("code", "") if response.status_code >= 400 else ""
            statuses.append((response.status_code, code))

        tasks = [asyncio.create_task(buy(b)) for b in world.buyers]
        await asyncio.sleep(0.5)
        t0 = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
    other: dict[int, int] = {}
    for status, code in statuses:
        if status not in (201,) and code != "sold_out":
            other[status] = other.get(status, 0) + 1
    return Run(
        created=sum(1 for s, _ in statuses if s == 201),
        sold_out=sum(1 for _, c in statuses if c == "sold_out"),
        other=other,
        seconds=max(finished) - t0,
        p99_ms=percentile(latencies, 0.99),
    )


def measure(db: str, database_url: str, args: argparse.Namespace, redis_url: str | None) -> str:
    env = production_env(database_url, scratch_dir())
    if redis_url:
        env["MOBIMART_REDIS_URL"] = redis_url
    say(f"{db}: seeding the demo shops, a sale of {args.stock} and {args.buyers} buyers")
    world = asyncio.run(_seed(env, args.buyers, args.stock))
    with serve("mobimart.app:create_app", env, factory=True, startup_s=120) as url:
        httpx.get(f"{url}/api/v1/flash-sales/{world.sale_id}", timeout=30)  # warm the process
        say(f"{db}: {args.buyers} buyers at once" + (" (counter in Redis)" if redis_url else ""))
        run = asyncio.run(_crowd(url, world))
    sold, over_limit = asyncio.run(_count(env, world.sale_id))
    oversold = max(0, sold - args.stock)
    say(
        f"  {run.created} orders, {run.sold_out} told sold out, other answers {run.other}; "
        f"{run.seconds:.2f} s, p99 {run.p99_ms:.0f} ms; counted in the database: {sold} sold, "
        f"{over_limit} people over their limit"
    )
    if run.other or run.created != sold or over_limit or sold != args.stock:
        raise SystemExit(f"{db}: the sale went wrong (see above)")
    return (
        f"flashsale buyers={args.buyers} stock={args.stock} sold={sold} oversold={oversold} "
        f"orders_per_s={sold / run.seconds:.1f} p99_ms={run.p99_ms:.0f} db={db}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()

    lines = [measure("sqlite", f"sqlite+aiosqlite:///{scratch_dir()}/bench.db", args, None)]
    if not args.no_pg:
        redis_url = None if args.no_redis or not redis_reachable(args.redis) else args.redis
        with scratch_postgres(args.pg) as url:
            lines.append(measure("postgresql", url, args, redis_url))
    for line in lines:
        print(line, flush=True)


if __name__ == "__main__":
    main()
