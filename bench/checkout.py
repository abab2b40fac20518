"""Sustained checkout throughput: the real server (uvicorn, production settings) on SQLite, then
on PostgreSQL, with buyers checking out over HTTP at a fixed concurrency.

The demo shops' catalogue is given ample stock and `--buyers` people wallet money and an
address; then `--concurrency` checkouts are kept in flight for `--seconds`. One checkout is a
buyer's whole path: 1-3 items of one shop put in the cart (`PUT /api/v1/cart/items/{id}`),
`POST /api/v1/orders`, `POST /api/v1/payments` from the wallet (both with an Idempotency-Key),
so one checkout is one paid order; no buyer has two checkouts in flight at once. Ceiling,
measured in the same run by the same client at the same concurrency: `GET /api/v1/health`
(routing and a database connection, nothing else); an authenticated `GET /api/v1/cart` is
measured too, for reference.

    python -m bench.checkout [--seconds 20] [--concurrency 32] [--buyers 1000]
                             [--baseline-seconds 5] [--pg URL | --no-pg]

After each run the database is checked: no stock below zero and every unit taken is on an
order; paid orders are exactly the orders of successful payments (and the client's count);
wallets lost exactly what paid orders cost; `mobimart ledger check` passes. Any failure ends
the run.

Summary, one line per database, PostgreSQL last (p99 of a whole checkout; ratio is orders per
second over ceiling requests per second):
  checkout db=sqlite|postgresql orders_per_s=… p99_ms=… ratio=… errors=…
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bench.common import (
    Buyer,
    make_buyers,
    migrated,
    percentile,
    production_env,
    say,
    scratch_dir,
    scratch_postgres,
    serve,
)

AMPLE = 1_000_000  # units per variant: no checkout in a run can be refused for stock
# ¥10,000 each, about 100 average checkouts: no buyer runs dry in a run. All top-ups together
# stay under 2^31 minor units, because ledger balances are 32-bit integers on PostgreSQL and the
# gateway's clearing account goes negative by every one.
WALLET_MINOR = 1_000_000
_ALL_WALLETS_MINOR = 2_000_000_000
_ITEMS = (1, 3)
_QUANTITY = (1, 2)


@dataclass(frozen=True)
class World:
    buyers: list[Buyer]
    shops: dict[int, list[int]]  # shop id -> variant ids on sale
    stock: int  # units of every variant together, before the run
    wallets: int  # money in every wallet together, before the run


async def _seed(env: dict[str, str], buyers: int) -> World:
    """The demo shops (through the real services) with every variant on sale restocked,
    and the buyers."""
    database = await migrated(env)
    from mobimart.catalog.models import Product, Variant
    from mobimart.demo import load as demo

    try:
        await demo.load(database)
        async with database.session() as s:
            await s.execute(update(Variant).where(Variant.stock > 0).values(stock=AMPLE))
            total = (
                select(func.coalesce(func.sum(Variant.stock), 0))
                .where(Variant.product_id == Product.id)
                .scalar_subquery()
            )
            await s.execute(update(Product).values(stock=total))
            await s.commit()
            shops: dict[int, list[int]] = defaultdict(list)
            for variant_id, shop_id in await s.execute(
                select(Variant.id, Product.shop_id)
                .join(Product, Product.id == Variant.product_id)
                .where(Variant.stock > 0, Product.status == "published")
                .order_by(Variant.id)
            ):
                shops[shop_id].append(variant_id)
            stock = await s.scalar(select(func.sum(Variant.stock))) or 0
        wallet = min(WALLET_MINOR, _ALL_WALLETS_MINOR // buyers)
        people = await make_buyers(database, buyers, wallet_minor=wallet)
        async with database.session() as s:
            wallets = await _wallets(s)
        return World(people, shops, stock, wallets)
    finally:
        await database.dispose()


async def _wallets(session: AsyncSession) -> int:
    from mobimart.payments import domain
    from mobimart.payments.models import LedgerAccount

    where = LedgerAccount.kind == domain.AccountKind.wallet.value
    return await session.scalar(select(func.sum(LedgerAccount.balance_minor)).where(where)) or 0


class _Refused(Exception):
    """An answer the checkout did not expect; its text is the error's kind."""


def _expect(response: httpx.Response, status: int, step: str) -> httpx.Response:
    if response.status_code != status:
        code = ""
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            code = " " + str(response.json().get("code", ""))
        raise _Refused(f"{step} {response.status_code}{code}")
    return response


@dataclass
class Tally:
    """What one phase of the load did."""

    done: int = 0  # units of work that went through (checkouts, or requests for a baseline)
    orders: int = 0  # orders paid
    payments: int = 0  # payments that succeeded
    requests: int = 0
    latencies: list[float] = field(default_factory=list)  # ms per unit of work
    steps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def add(self, other: Tally) -> None:
        self.orders += other.orders
        self.payments += other.payments
        self.errors.update(other.errors)


Work = Callable[[httpx.AsyncClient, Buyer, random.Random, Tally], Awaitable[None]]


async def _timed(tally: Tally, step: str, request: Awaitable[httpx.Response]) -> httpx.Response:
    began = time.perf_counter()
    response = await request
    tally.steps[step].append((time.perf_counter() - began) * 1000)
    tally.requests += 1
    return response


def _checkout(shops: dict[int, list[int]]) -> Work:
    shop_ids = sorted(shops)

    async def work(client: httpx.AsyncClient, buyer: Buyer, rng: random.Random, t: Tally) -> None:
        auth = {"Authorization": f"Bearer {buyer.token}"}
        variants = shops[rng.choice(shop_ids)]
        for variant_id in rng.sample(variants, min(len(variants), rng.randint(*_ITEMS))):
            body = {"quantity": rng.randint(*_QUANTITY)}
            put = client.put(f"/api/v1/cart/items/{variant_id}", json=body, headers=auth)
            _expect(await _timed(t, "PUT /cart/items", put), 200, "PUT /cart/items")
        placed = client.post(
            "/api/v1/orders",
            json={"address_id": buyer.address_id},
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        )
        orders = _expect(await _timed(t, "POST /orders", placed), 201, "POST /orders").json()
        order_ids = [o["id"] for o in orders["orders"]]
        paid = client.post(
            "/api/v1/payments",
            json={"order_ids": order_ids, "method": "wallet"},
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        )
        payment = _expect(await _timed(t, "POST /payments", paid), 201, "POST /payments").json()
        if payment["status"] != "succeeded" or sorted(payment["order_ids"]) != sorted(order_ids):
            raise _Refused(f"POST /payments answered {payment['status']}")
        t.payments += 1
        t.orders += len(order_ids)

    return work


async def _health(client: httpx.AsyncClient, buyer: Buyer, rng: random.Random, t: Tally) -> None:
    _expect(await _timed(t, "GET /health", client.get("/api/v1/health")), 200, "GET /health")


async def _cart(client: httpx.AsyncClient, buyer: Buyer, rng: random.Random, t: Tally) -> None:
    auth = {"Authorization": f"Bearer {buyer.token}"}
    response = await _timed(t, "GET /cart", client.get("/api/v1/cart", headers=auth))
    _expect(response, 200, "GET /cart")


async def _drive(
    url: str,
    buyers: list[Buyer],
    work: Work,
    *,
    label: str,
    seconds: float,
    concurrency: int,
    seed: int,
) -> Tally:
    """`concurrency` loops, each taking the next free buyer, doing `work` and handing the buyer
    back, until `seconds` have passed; a report every 5 s."""
    tally = Tally()
    rng = random.Random(seed)
    free: asyncio.Queue[Buyer] = asyncio.Queue()
    for buyer in buyers:
        free.put_nowait(buyer)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        t0 = time.perf_counter()
        deadline = t0 + seconds

        async def loop() -> None:
            while time.perf_counter() < deadline:
                buyer = free.get_nowait()  # more buyers than loops: never empty
                began = time.perf_counter()
                try:
                    await work(client, buyer, rng, tally)
                except _Refused as exc:
                    tally.errors[str(exc)] += 1
                except httpx.HTTPError as exc:
                    tally.errors[type(exc).__name__] += 1
                else:
                    tally.done += 1
                    tally.latencies.append((time.perf_counter() - began) * 1000)
                finally:
                    free.put_nowait(buyer)

        async def report() -> None:
            while True:
                await asyncio.sleep(5)
                elapsed = time.perf_counter() - t0
                say(
                    f"  {label} {elapsed:4.0f} s: {tally.done} done "
                    f"({tally.done / elapsed:.1f}/s), {sum(tally.errors.values())} errors"
                )

        reporter = asyncio.create_task(report())
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        tally.seconds = time.perf_counter() - t0
        reporter.cancel()
    return tally


def _show(label: str, tally: Tally) -> None:
    say(
        f"  {label}: {tally.done} in {tally.seconds:.1f} s = {tally.rate:.1f}/s "
        f"({tally.requests / tally.seconds:.0f} requests/s), "
        f"p50 {percentile(tally.latencies, 0.5):.1f} ms, "
        f"p99 {percentile(tally.latencies, 0.99):.1f} ms"
    )
    if len(tally.steps) > 1:
        for step, ms in tally.steps.items():
            say(
                f"    {step}: {len(ms)} requests, p50 {percentile(ms, 0.5):.1f} ms, "
                f"p99 {percentile(ms, 0.99):.1f} ms"
            )
    for error, count in tally.errors.most_common():
        say(f"    error: {count} × {error}")


async def _verify(env: dict[str, str], world: World, client_side: Tally) -> list[str]:
    """What the database says after the run; the problems found (none is a pass)."""
    from mobimart.catalog.models import Product, Variant
    from mobimart.checkout.models import Order, OrderLine
    from mobimart.db import Database
    from mobimart.payments.models import Payment

    problems: list[str] = []
    database = Database(env["MOBIMART_DATABASE_URL"], null_pool=True)
    try:
        async with database.session() as s:
            negative = await s.scalar(select(func.count(Variant.id)).where(Variant.stock < 0))
            negative_products = await s.scalar(
                select(func.count(Product.id)).where(Product.stock < 0)
            )
            stock = await s.scalar(select(func.sum(Variant.stock))) or 0
            held = (
                await s.scalar(
                    select(func.sum(OrderLine.quantity))
                    .join(Order, Order.id == OrderLine.order_id)
                    .where(Order.status != "cancelled")
                )
                or 0
            )
            total = (
                select(func.coalesce(func.sum(Variant.stock), 0))
                .where(Variant.product_id == Product.id)
                .scalar_subquery()
            )
            drifted = await s.scalar(select(func.count(Product.id)).where(Product.stock != total))
            by_status = select(Order.status, func.count(Order.id)).group_by(Order.status)
            statuses = dict((await s.execute(by_status)).all())
            paid_total = (
                await s.scalar(select(func.sum(Order.total_minor)).where(Order.status == "paid"))
                or 0
            )
            payments = list(
                await s.execute(
                    select(Payment.order_ids, Payment.amount_minor).where(
                        Payment.purpose == "orders", Payment.status == "succeeded"
                    )
                )
            )
            wallets = await _wallets(s)
    finally:
        await database.dispose()
    paid = statuses.get("paid", 0)
    paid_by_payments = sum(len(ids) for ids, _ in payments)
    charged = sum(amount for _, amount in payments)
    say(
        f"  stock: {negative} variants and {negative_products} products below zero; "
        f"{world.stock - stock} units taken, {held} on orders not cancelled; "
        f"{drifted} products whose stock is not their variants' sum"
    )
    say(
        f"  orders: {statuses}; {len(payments)} successful payments for {paid_by_payments} orders "
        f"(client saw {client_side.payments} for {client_side.orders})"
    )
    expected_wallets = world.wallets - paid_total
    say(
        f"  money: paid orders {paid_total}, payments {charged}, wallets "
        f"{wallets} (expected {expected_wallets})"
    )
    if negative or negative_products:
        problems.append("stock went below zero")
    if world.stock - stock != held:
        problems.append("units taken differ from units on orders")
    if drifted:
        problems.append("product stock differs from its variants' sum")
    if not paid == paid_by_payments == client_side.orders:
        problems.append("paid orders differ from successful payments")
    if len(payments) != client_side.payments:
        problems.append("the database holds other successful payments than the client saw")
    if not paid_total == charged == world.wallets - wallets:
        problems.append("money charged differs from paid orders")
    return problems


def _ledger_check(env: dict[str, str]) -> bool:
    """`mobimart ledger check`, the command an operator runs."""
    done = subprocess.run(
        [sys.executable, "-m", "mobimart", "ledger", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in (done.stdout + done.stderr).splitlines():
        say(f"  ledger check: {line}")
    return done.returncode == 0


def measure(db: str, database_url: str, args: argparse.Namespace) -> str:
    env = production_env(database_url, scratch_dir())
    say(f"{db}: seeding the demo shops with ample stock and {args.buyers} buyers with money")
    world = asyncio.run(_seed(env, args.buyers))
    say(
        f"  {sum(len(v) for v in world.shops.values())} variants on sale in {len(world.shops)} "
        f"shops, {world.stock:,} units"
    )

    def drive(url: str, work: Work, label: str, seconds: float, seed: int) -> Tally:
        return asyncio.run(
            _drive(
                url,
                world.buyers,
                work,
                label=label,
                seconds=seconds,
                concurrency=args.concurrency,
                seed=seed,
            )
        )

    checkout = _checkout(world.shops)
    with serve("mobimart.app:create_app", env, factory=True, startup_s=120) as url:
        say(f"{db}: warming up ({args.concurrency} checkouts in flight, 3 s)")
        warm = drive(url, checkout, "warm-up", 3, 0)
        say(f"  warm-up: {warm.done} checkouts, {sum(warm.errors.values())} errors")
        say(f"{db}: ceiling, GET /api/v1/health, {args.baseline_seconds} s")
        ceiling = drive(url, _health, "health", args.baseline_seconds, 1)
        _show("health", ceiling)
        say(f"{db}: checkouts, {args.concurrency} in flight, {args.seconds} s")
        run = drive(url, checkout, "checkout", args.seconds, 2)
        _show("checkout", run)
        say(f"{db}: for reference, GET /api/v1/cart (authenticated), {args.baseline_seconds} s")
        _show("cart", drive(url, _cart, "cart", args.baseline_seconds, 3))
    total = Tally()
    total.add(warm)
    total.add(run)
    say(f"{db}: checking the database")
    problems = asyncio.run(_verify(env, world, total))
    if not _ledger_check(env):
        problems.append("mobimart ledger check failed")
    for problem in problems:
        say(f"  ✗ {problem}")
    if problems:
        raise SystemExit(f"{db}: the checkouts went wrong (see above)")
    say("  ✓ no stock below zero, paid orders = successful payments, the ledger balances")
    errors = sum(run.errors.values())
    return (
        f"checkout db={db} orders_per_s={run.orders / run.seconds:.1f} "
        f"p99_ms={percentile(run.latencies, 0.99):.0f} "
        f"ratio={run.orders / run.seconds / ceiling.rate:.4f} errors={errors}"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--buyers", type=int, default=1000)
    p.add_argument("--baseline-seconds", type=float, default=5)
    p.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    p.add_argument("--no-pg", action="store_true")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.buyers <= args.concurrency:
        raise SystemExit("--buyers must exceed --concurrency: a buyer checks out once at a time")
    lines = [measure("sqlite", f"sqlite+aiosqlite:///{scratch_dir()}/bench.db", args)]
    if not args.no_pg:
        with scratch_postgres(args.pg) as url:
            lines.append(measure("postgresql", url, args))
    for line in lines:
        print(line, flush=True)


if __name__ == "__main__":
    main()
