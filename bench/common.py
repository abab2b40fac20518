"""What every benchmark needs: a real server process, a ceiling app, wrk, and the summary line;
and for the ones that buy: a migrated scratch database (SQLite file or PostgreSQL database),
buyers with tokens, addresses and wallet money."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from mobimart.infra.pii import new_key_spec

if TYPE_CHECKING:
    from mobimart.db import Database

ROOT = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def production_env(database_url: str, var: Path) -> dict[str, str]:
    """Production settings with fresh secrets: what an operator would run."""
    return {
        **os.environ,
        "MOBIMART_ENVIRONMENT": "production",
        "MOBIMART_DATABASE_URL": database_url,
        "MOBIMART_VAR_DIR": str(var),
        "MOBIMART_SECRET_KEY": os.urandom(24).hex(),
        "MOBIMART_PII_KEYS": new_key_spec("b1"),
        "MOBIMART_PII_HASH_KEY": os.urandom(24).hex(),
        "MOBIMART_SMS_INBOUND_SECRET": os.urandom(24).hex(),
        "MOBIMART_CARRIER_SECRET": os.urandom(24).hex(),
        "MOBIMART_SMS_DLR_SECRET": os.urandom(24).hex(),
        "MOBIMART_PAYMENT_GATEWAY": "none",
    }


def uvicorn_command(app: str, port: int, env: dict[str, str], factory: bool) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]
    return cmd + (["--factory"] if factory else [])


@contextmanager
def serve(
    app: str, env: dict[str, str], *, factory: bool = False, startup_s: float = 30
) -> Iterator[str]:
    """Run an ASGI app under uvicorn with the same options for the app and its ceiling."""
    port = free_port()
    proc = subprocess.Popen(uvicorn_command(app, port, env, factory), env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{app} exited with {proc.returncode}")
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk(
    url: str,
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
) -> Load:
    """wrk with 2 threads; `script` is a Lua file choosing each request (a mix of URLs)."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(re.search(r"(?m)^\s+50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        p99_ms=_ms(re.search(r"(?m)^\s+99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="mobimart-bench-"))


def percentile(values: list[float], q: float) -> float:
    """The value below which a share `q` of `values` lies (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


async def migrated(env: dict[str, str]) -> Database:
    """Take `env` as this process's settings, migrate its database and open it; the caller
    disposes of it. Modules reading settings are imported after this."""
    os.environ.update(env)
    from mobimart.db import Database
    from mobimart.infra.pii import get_vault
    from mobimart.migrate import upgrade
    from mobimart.settings import get_settings

    get_settings.cache_clear()
    get_vault.cache_clear()
    await asyncio.to_thread(upgrade, env["MOBIMART_DATABASE_URL"])
    return Database(env["MOBIMART_DATABASE_URL"])


@dataclass(frozen=True)
class Buyer:
    user_id: int
    token: str
    address_id: int


async def make_buyers(database: Database, count: int, *, wallet_minor: int = 0) -> list[Buyer]:
    """`count` people with a default address and an API token each, and `wallet_minor` in
    their wallets posted to the ledger as a gateway top-up would post it."""
    from mobimart.accounts import service as accounts
    from mobimart.accounts.models import User
    from mobimart.checkout.models import Address
    from mobimart.payments import domain, ledger
    from mobimart.settings import get_settings

    people: list[tuple[int, int]] = []
    async with database.session() as s:
        for n in range(count):
            phone = f"+86139{n:08d}"
            user = User(phone=phone, phone_hash=accounts.phone_hash(phone))
            s.add(user)
            await s.flush()
            address = Address(
                user_id=user.id,
                recipient=f"Buyer {n}",
                phone=phone,
                region="上海市",
                detail=f"{n} 号",
                is_default=True,
            )
            s.add(address)
            await s.flush()
            if wallet_minor:
                await ledger.post(
                    s,
                    kind="top_up",
                    reference=f"bench:{user.id}",
                    currency=get_settings().default_currency,
                    legs=domain.top_up(wallet_minor, user_id=user.id),
                )
            people.append((user.id, address.id))
        await s.commit()
    buyers: list[Buyer] = []
    async with database.session() as s:
        for user_id, address_id in people:
            user = await s.get(User, user_id)
            assert user is not None
            token, _ = await accounts.issue_token(s, user=user, kind="api")
            buyers.append(Buyer(user_id, token, address_id))
    return buyers


async def _admin(admin_url: str, sql: str) -> None:
    from sqlalchemy import text

    from mobimart.db import Database

    database = Database(admin_url, null_pool=True)
    try:
        async with database.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await database.dispose()


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database next to `admin_url`'s, dropped afterwards."""
    name = f"mobimart_bench_{os.urandom(4).hex()}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


def redis_reachable(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False
