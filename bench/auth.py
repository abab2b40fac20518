"""Authenticated API throughput: GET /api/v1/me with a bearer token (token lookup, user load,
decryption of the phone number) on the real server, against a bare Starlette ceiling under the
same uvicorn options and the same wrk load.

    python -m bench.auth [--seconds 10] [--connections 32] [--pg URL | --no-pg]

Summary: auth sqlite_rps=… postgresql_rps=… ceiling_rps=… sqlite_ratio=… postgresql_ratio=…
         sqlite_p99_ms=… postgresql_p99_ms=…
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid

from sqlalchemy import text

from bench.common import Load, production_env, say, scratch_dir, serve, wrk


async def _seed(env: dict[str, str]) -> str:
    """Migrate, create one user and an API token, through the real services."""
    os.environ.update(env)
    from mobimart.accounts import service as accounts
    from mobimart.accounts.models import User
    from mobimart.db import Database
    from mobimart.infra.pii import get_vault
    from mobimart.migrate import upgrade
    from mobimart.settings import get_settings

    get_settings.cache_clear()
    get_vault.cache_clear()
    await asyncio.to_thread(upgrade, env["MOBIMART_DATABASE_URL"])
    database = Database(env["MOBIMART_DATABASE_URL"])
    try:
        async with database.session() as s:
            user = User(phone="+8613800138000", phone_hash=accounts.phone_hash("+8613800138000"))
            s.add(user)
            await s.commit()
            token, _ = await accounts.issue_token(s, user=user, kind="api")
    finally:
        await database.dispose()
    return token


async def _pg(admin_url: str, sql: str) -> None:
    from mobimart.db import Database

    database = Database(admin_url, null_pool=True)
    try:
        async with database.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await database.dispose()


def measure(database_url: str, args: argparse.Namespace) -> Load:
    env = production_env(database_url, scratch_dir())
    token = asyncio.run(_seed(env))
    with serve("mobimart.app:create_app", env, factory=True) as url:
        wrk(
            url + "/api/v1/me",
            seconds=2,
            connections=args.connections,
            headers={"Authorization": f"Bearer {token}"},
        )  # warm-up
        load = wrk(
            url + "/api/v1/me",
            seconds=args.seconds,
            connections=args.connections,
            headers={"Authorization": f"Bearer {token}"},
        )
    if load.non_2xx:
        raise SystemExit(f"{load.non_2xx} requests failed")
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()

    say(f"ceiling: bare Starlette, {args.connections} connections, {args.seconds} s")
    with serve("bench.ceiling_app:app", dict(os.environ)) as url:
        wrk(url + "/api/v1/me", seconds=2, connections=args.connections)
        ceiling = wrk(url + "/api/v1/me", seconds=args.seconds, connections=args.connections)
    say(f"  {ceiling.rps:,.0f} req/s, p99 {ceiling.p99_ms:.1f} ms")

    results: dict[str, Load] = {}

    def run(db: str, url: str) -> None:
        say(f"mobimart on {db}")
        results[db] = load = measure(url, args)
        say(f"  {load.rps:,.0f} req/s, p99 {load.p99_ms:.1f} ms")

    run("sqlite", f"sqlite+aiosqlite:///{scratch_dir()}/bench.db")
    if not args.no_pg:
        name = f"mobimart_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg(args.pg, f'CREATE DATABASE "{name}"'))
        try:
            run("postgresql", args.pg.rsplit("/", 1)[0] + "/" + name)
        finally:
            asyncio.run(_pg(args.pg, f'DROP DATABASE "{name}" WITH (FORCE)'))

    fields = {f"{db}_rps": f"{load.rps:.0f}" for db, load in results.items()}
    fields["ceiling_rps"] = f"{ceiling.rps:.0f}"
    fields |= {f"{db}_ratio": f"{load.rps / ceiling.rps:.3f}" for db, load in results.items()}
    fields |= {f"{db}_p99_ms": f"{load.p99_ms:.1f}" for db, load in results.items()}
    print("auth " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)


if __name__ == "__main__":
    main()
