"""An SMS campaign to `--recipients` people through a real Kannel, with delivery reports.

PostgreSQL (a scratch database) gets `--recipients` consented people (phone numbers encrypted
as the app encrypts them, written by COPY), a segment "has SMS consent" evaluated by the app
(INSERT ... SELECT), and a campaign with a personalised text and a short link each. Then the
real processes: Kannel (bearerbox + smsbox from Debian, configured from deploy/kannel), this
script as Kannel's fake SMSC (a TCP client on the fake-SMSC port reading one line per message,
counting each number), the delivery-report receiver under uvicorn, Redis-backed
Huey, and `mobimart worker`, which sends.

Measured in the same run first: Kannel's own ceiling, `ab -k -c16 -n20000` against sendsms
without delivery reports. Then the send: `msgs_per_s` = recipients / (time from the worker's
first claim until the last message Kannel accepted, both as the rows record them). The run
waits for every delivery report, then counts: sent (rows the gateway took), delivered (rows
whose report said delivered), duplicates (numbers the SMSC got more than once), missing
(recipients it never got). `peak_rss_mb` is the worker's peak resident memory (VmHWM).

    python -m bench.campaign [--recipients 1000000] [--pg URL] [--redis URL]

Summary (the last line):
  campaign recipients=N sent=S delivered=D duplicates=0 missing=0 msgs_per_s=R
  kannel_ceiling_per_s=C ratio=R/C peak_rss_mb=M
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import update

from bench.common import (
    ROOT,
    free_port,
    migrated,
    production_env,
    redis_reachable,
    say,
    scratch_dir,
    scratch_postgres,
    uvicorn_command,
)

DEPLOY_CONF = ROOT / "deploy" / "kannel" / "kannel.conf"
CEILING_TO = "+8610000000000"  # the ceiling's messages, kept out of the campaign's counts
TEMPLATE = "Hi {name}, {shop} sale today only: {link} Reply STOP to opt out"
USERS_CHUNK = 20_000
# The send is done when every message is accepted; the run fails if nothing moves this long.
STALL_S = 120


# --- Kannel and its fake SMSC --------------------------------------------------------------------


@dataclass
class Smsc:
    """Kannel's SMSC, played by a socket: counts each receiver, keeps a few texts."""

    sock: socket.socket
    seen: set[int] = field(default_factory=set)
    lines: int = 0
    duplicates: int = 0
    ceiling: int = 0
    samples: list[str] = field(default_factory=list)
    last_at: float = 0.0

    def run(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                receiver = line.split(b" ", 3)[1]
                if receiver == CEILING_TO.encode():
                    self.ceiling += 1
                    continue
                number = int(receiver.lstrip(b"+"))
                if number in self.seen:
                    self.duplicates += 1
                else:
                    self.seen.add(number)
                if len(self.samples) < 3:
                    self.samples.append(line.decode(errors="replace"))
                self.lines += 1
            self.last_at = time.time()


def _kannel_conf(var: Path, ports: dict[str, int], password: str) -> str:
    text = DEPLOY_CONF.read_text()
    replacements = {
        r"admin-port = \d+": f"admin-port = {ports['admin']}",
        r"smsbox-port = \d+": f"smsbox-port = {ports['box']}",
        r"bearerbox-port = \d+": f"bearerbox-port = {ports['box']}",
        r"sendsms-port = \d+": f"sendsms-port = {ports['sendsms']}",
        r"(?m)^port = \d+": f"port = {ports['smsc']}",
        r'log-file = "/var/log/kannel/(\w+)\.log"': rf'log-file = "{var}/\1.log"',
        r"password = change-me-sendsms": f"password = {password}",
    }
    for pattern, value in replacements.items():
        text, n = re.subn(pattern, value, text)
        assert n, pattern
    return text


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port}")


@dataclass
class Kannel:
    sendsms_url: str
    password: str
    smsc: Smsc
    pids: list[int]


@contextmanager
def kannel(var: Path) -> Iterator[Kannel]:
    if not Path("/usr/sbin/bearerbox").exists():
        raise SystemExit("Kannel not installed (apt-get install kannel kannel-extras)")
    ports = {name: free_port() for name in ("admin", "box", "sendsms", "smsc")}
    password = secrets.token_hex(8)
    conf = var / "kannel.conf"
    conf.write_text(_kannel_conf(var, ports, password))
    quiet = subprocess.DEVNULL
    procs = [subprocess.Popen(["/usr/sbin/bearerbox", str(conf)], stdout=quiet, stderr=quiet)]
    try:
        _wait_port(ports["smsc"])
        smsc = Smsc(socket.create_connection(("127.0.0.1", ports["smsc"])))
        threading.Thread(target=smsc.run, daemon=True).start()
        procs.append(subprocess.Popen(["/usr/sbin/smsbox", str(conf)], stdout=quiet, stderr=quiet))
        _wait_port(ports["sendsms"])
        deadline = time.monotonic() + 15
        while (
            "online"
            not in httpx.get(
                f"http://127.0.0.1:{ports['admin']}/status.txt",
                params={"password": "change-me-status"},
            ).text
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("Kannel's SMSC link is not online")
            time.sleep(0.1)
        yield Kannel(
            f"http://127.0.0.1:{ports['sendsms']}/cgi-bin/sendsms",
            password,
            smsc,
            [p.pid for p in procs],
        )
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def kannel_ceiling(k: Kannel) -> float:
    """ab -k -c16 -n20000 against sendsms, no delivery reports."""
    if shutil.which("ab") is None:
        raise SystemExit("ab not installed (apt-get install apache2-utils)")
    url = (
        f"{k.sendsms_url}?username=mobimart&password={k.password}&from=10690000"
        f"&to=%2B{CEILING_TO[1:]}&text=ceiling"
    )
    out = subprocess.run(
        ["ab", "-q", "-k", "-c16", "-n20000", url], capture_output=True, text=True, check=True
    ).stdout
    failed = re.search(r"Failed requests:\s+(\d+)", out)
    assert failed, out
    assert failed.group(1) == "0", out
    found = re.search(r"Requests per second:\s+([\d.]+)", out)
    assert found, out
    return float(found.group(1))


# --- data ----------------------------------------------------------------------------------------


async def make_people(database: object, n: int) -> None:
    """`n` people with encrypted numbers (+86139…), each with SMS consent, by COPY."""
    from mobimart.db import Database
    from mobimart.infra.pii import get_vault

    assert isinstance(database, Database)
    vault = get_vault()
    now = dt.datetime.now(dt.UTC)
    async with database.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        for start in range(0, n, USERS_CHUNK):
            rows = []
            for i in range(start, min(n, start + USERS_CHUNK)):
                phone = f"+86139{i:08d}"
                rows.append(
                    (vault.encrypt(phone), vault.lookup_hash(phone), f"Ann{i}", False, False, now)
                )
            await raw.copy_records_to_table(
                "users",
                records=rows,
                columns=[
                    "phone",
                    "phone_hash",
                    "display_name",
                    "is_admin",
                    "is_creator",
                    "created_at",
                ],
            )
            if (start // USERS_CHUNK) % 10 == 9:
                say(f"  {start + len(rows):,} people")
        await raw.execute(
            "INSERT INTO consents (user_id, channel, granted, source, recorded_at) "
            "SELECT id, 'sms', true, 'bench', $1 FROM users",
            now - dt.timedelta(seconds=1),
        )
        await conn.commit()


async def settle(database: object) -> None:
    """People, consents and the segment stand for a database that has held them a while:
    vacuumed, analysed and checkpointed, as autovacuum and the checkpointer would have them by
    the time a campaign goes out, not still writing a million new rows of each to disk during
    the send. The campaign's messages are made at the send, as in production, unsettled."""
    from mobimart.db import Database

    assert isinstance(database, Database)
    started = time.monotonic()
    async with database.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE")
        await conn.exec_driver_sql("CHECKPOINT")
    say(f"database settled (VACUUM ANALYZE, CHECKPOINT) in {time.monotonic() - started:.1f} s")


async def make_campaign(database: object) -> tuple[int, int, float]:
    """The segment (evaluated by the app), the campaign and its messages (`sending.start`);
    returns (campaign id, members, seconds the start took)."""
    from mobimart.campaigns import segments, sending
    from mobimart.campaigns.models import Campaign, Segment
    from mobimart.db import Database

    assert isinstance(database, Database)
    async with database.session() as s:
        segment = Segment(name="SMS consent", rules=[{"kind": "has_consent", "channel": "sms"}])
        s.add(segment)
        await s.commit()
        started = time.monotonic()
        members = await segments.evaluate(s, segment_id=segment.id)
        say(f"segment evaluated: {members:,} members in {time.monotonic() - started:.1f} s")
        await settle(database)
        campaign = Campaign(
            name="Bench sale",
            channel="sms",
            segment_id=segment.id,
            template=TEMPLATE,
            link_url="/",
            status="sending",
        )
        s.add(campaign)
        await s.commit()
        started = time.monotonic()
        await sending.start(s, campaign_id=campaign.id)
        took = time.monotonic() - started
        # Paused until the timed send begins: the worker's tick would otherwise start it.
        await s.execute(update(Campaign).where(Campaign.id == campaign.id).values(status="paused"))
        await s.commit()
        return campaign.id, members, took


async def resume(database: object, campaign_id: int) -> None:
    from mobimart.campaigns.models import Campaign
    from mobimart.db import Database

    assert isinstance(database, Database)
    async with database.session() as s:
        await s.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="sending"))
        await s.commit()


async def counts(database: object, campaign_id: int) -> dict[str, int]:
    from sqlalchemy import func, select

    from mobimart.campaigns.models import CampaignMessage
    from mobimart.db import Database

    assert isinstance(database, Database)
    async with database.session() as s:
        rows = await s.execute(
            select(CampaignMessage.status, func.count())
            .where(CampaignMessage.campaign_id == campaign_id)
            .group_by(CampaignMessage.status)
        )
        out = {status: int(n) for status, n in rows.all()}
        out["_sent"] = int(
            await s.scalar(
                select(func.count()).where(
                    CampaignMessage.campaign_id == campaign_id,
                    CampaignMessage.sent_at.is_not(None),
                )
            )
            or 0
        )
        first, last = (
            await s.execute(
                select(
                    func.min(CampaignMessage.claimed_at), func.max(CampaignMessage.sent_at)
                ).where(CampaignMessage.campaign_id == campaign_id)
            )
        ).one()
        out["_first_claim_us"] = int(first.timestamp() * 1e6) if first else 0
        out["_last_sent_at_us"] = int(last.timestamp() * 1e6) if last else 0
    return out


def cpu_s(pids: int | list[int]) -> float:
    """User + system CPU seconds of processes so far."""
    total = 0
    for pid in [pids] if isinstance(pids, int) else pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of each PostgreSQL process now running (the server's, backends included)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if stat.read_text().split(" ", 2)[1] == "(postgres)":
                out[int(stat.parent.name)] = cpu_s(int(stat.parent.name))
    return out


def machine_busy_s() -> float:
    """CPU seconds every core has spent busy since boot (/proc/stat, idle and iowait aside)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the run -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "MOBIMART_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        ),
        help="an existing database on the server to use; a scratch one is made beside it",
    )
    # A database of its own on the Redis server: tests flush theirs.
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument(
        "--connections", type=int, default=None, help="to smsbox (default: the setting's)"
    )
    args = parser.parse_args()
    # Stopped with SIGTERM, stop Kannel, the worker and the receiver and drop the database too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not redis_reachable(args.redis):
        raise SystemExit(f"Redis not reachable at {args.redis}")
    n = args.recipients
    var = scratch_dir()
    with scratch_postgres(args.pg) as url, kannel(var) as k:
        dlr_port = free_port()
        env = production_env(url, var) | {
            "MOBIMART_REDIS_URL": args.redis,
            "MOBIMART_REDIS_PREFIX": f"bench-{secrets.token_hex(4)}:",
            "MOBIMART_SMS_BACKEND": "kannel",
            "MOBIMART_KANNEL_SENDSMS_URL": k.sendsms_url,
            "MOBIMART_KANNEL_USERNAME": "mobimart",
            "MOBIMART_KANNEL_PASSWORD": k.password,
            "MOBIMART_SMS_DLR_URL": f"http://127.0.0.1:{dlr_port}/api/v1/sms/dlr",
            "MOBIMART_BASE_URL": "https://m.example.cn",
            # The bench runs at any hour; quiet hours would defer everyone at night.
            "MOBIMART_QUIET_HOURS": "00:00-00:00",
        }
        if args.connections:
            env["MOBIMART_KANNEL_CONNECTIONS"] = str(args.connections)
        asyncio.run(asyncio.run(migrated(env)).dispose())
        from mobimart.db import Database

        # First, while the machine is idle: the database's writes after loading people and
        # messages would slow ab and flatter the ratio.
        say("Kannel's ceiling: ab -k -c16 -n20000 on sendsms, no delivery reports")
        ceiling = kannel_ceiling(k)
        deadline = time.monotonic() + 60
        while k.smsc.ceiling < 20_000 and time.monotonic() < deadline:
            time.sleep(0.2)
        say(f"  {ceiling:,.0f} requests/s ({k.smsc.ceiling:,} reached the SMSC)")

        # A connection per use: this script runs each step in an event loop of its own.
        database = Database(url, null_pool=True)
        say(f"scratch database, Kannel up; making {n:,} consented people")
        started = time.monotonic()
        asyncio.run(make_people(database, n))
        say(f"  {n:,} people in {time.monotonic() - started:.1f} s")
        campaign_id, members, start_s = asyncio.run(make_campaign(database))
        assert members == n, members
        say(f"campaign {campaign_id}: {n:,} messages made in {start_s:.1f} s")

        dlr_app = serve_dlr(env, dlr_port)
        worker = subprocess.Popen(
            [sys.executable, "-m", "mobimart", "worker", "--workers", "2"],
            env=env,
            cwd=ROOT,
            stdout=(var / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            with dlr_app as dlr_pid:
                cpu: dict[str, int | list[int]] = {
                    "worker": worker.pid,
                    "smsbox+bearerbox": k.pids,
                    "dlr receiver": dlr_pid,
                }
                before = {name: cpu_s(pids) for name, pids in cpu.items()}
                postgres_before, busy_before = postgres_cpu(), machine_busy_s()
                result = send(database, env, campaign_id, n, k, worker)
                used = {name: cpu_s(pids) - before[name] for name, pids in cpu.items()}
                used["postgres"] = sum(
                    s - postgres_before.get(pid, 0) for pid, s in postgres_cpu().items()
                )
                used["whole machine"] = machine_busy_s() - busy_before
                say(
                    "CPU seconds during the send: "
                    + ", ".join(f"{name} {seconds:.0f}" for name, seconds in used.items())
                )
        finally:
            worker.terminate()
            worker.wait(20)
        asyncio.run(database.dispose())
    msgs_per_s, sent, delivered, peak = result
    say(f"SMSC samples: {k.smsc.samples[:2]}")
    missing = n - len(k.smsc.seen)
    print(
        f"campaign recipients={n} sent={sent} delivered={delivered} "
        f"duplicates={k.smsc.duplicates} missing={missing} msgs_per_s={msgs_per_s:.0f} "
        f"kannel_ceiling_per_s={ceiling:.0f} ratio={msgs_per_s / ceiling:.2f} "
        f"peak_rss_mb={peak:.0f}",
        flush=True,
    )


@contextmanager
def serve_dlr(env: dict[str, str], port: int) -> Iterator[int]:
    """The delivery-report receiver under uvicorn on `port`, where the dlr-url points (the
    app's own route does the same work with the whole app's routing around it)."""
    # The same options as every benchmarked server, and a deep backlog: Kannel opens report
    # callbacks in bursts, and a refused connection waits out its retry delay.
    cmd = uvicorn_command("mobimart.campaigns.dlr_api:receiver", port, env, factory=True)
    cmd += ["--backlog", "4096"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def send(
    database: object,
    env: dict[str, str],
    campaign_id: int,
    n: int,
    k: Kannel,
    worker: subprocess.Popen[bytes],
) -> tuple[float, int, int, float]:
    """Enqueue the send, follow it, wait for every report; (msgs/s, sent, delivered, peak MB)."""
    from mobimart.campaigns import tasks

    time.sleep(2)  # the worker's consumer is up
    t0 = time.time()
    asyncio.run(resume(database, campaign_id))
    tasks.enqueue_send(campaign_id)
    say(f"send enqueued; {n:,} messages")
    last_progress, last_seen = time.monotonic(), -1
    started_at: float = t0
    accepted_at: float | None = None
    c: dict[str, int] = {}
    polled = 0.0
    while True:
        time.sleep(2)
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.returncode}")
        smsc = len(k.smsc.seen)
        # Counting a million rows takes the database ~0.2 s: while the send is timed, only
        # when the SMSC has had every message or every 30 s, and every 6 s afterwards.
        if smsc >= n or time.monotonic() - polled >= (30 if accepted_at is None else 6):
            c, polled = asyncio.run(counts(database, campaign_id)), time.monotonic()
        done = c.get("delivered", 0) + c.get("failed", 0)
        say(
            f"  {time.time() - t0:6.1f} s: at SMSC {smsc:,}  (as of {time.monotonic() - polled:.0f}"
            f" s ago: sent {c.get('_sent', 0):,}  delivered {c.get('delivered', 0):,}  queued "
            f"{c.get('queued', 0):,})  worker rss {rss_mb(worker.pid, 'VmRSS'):.0f} MB"
        )
        if accepted_at is None and c.get("_sent", 0) >= n:
            # The send starts when the worker claims its first batch: Huey's consumer,
            # idle, polls the queue with a back-off of up to 10 s.
            started_at = c["_first_claim_us"] / 1e6
            accepted_at = c["_last_sent_at_us"] / 1e6
            say(
                f"  every message accepted by Kannel {accepted_at - started_at:.1f} s after "
                f"the first claim ({started_at - t0:.1f} s after the enqueue)"
            )
        if done >= n:
            break
        progress = c.get("_sent", 0) + done + smsc
        if progress != last_seen:
            last_progress, last_seen = time.monotonic(), progress
        elif time.monotonic() - last_progress > STALL_S:
            say(f"  no progress for {STALL_S} s; stopping")
            break
    peak = rss_mb(worker.pid, "VmHWM")
    if accepted_at is not None:
        # smsbox answers before bearerbox has the message (immediate-sendsms-reply), so the
        # SMSC may get the last one later than Kannel accepted it.
        took = k.smsc.last_at - started_at
        say(
            f"  the SMSC got the last message {took:.1f} s after the first claim ({n / took:.0f}/s)"
        )
    if accepted_at is None:
        started_at, accepted_at = t0, time.time()
    c = asyncio.run(counts(database, campaign_id))
    return n / (accepted_at - started_at), c["_sent"], c.get("delivered", 0), peak


if __name__ == "__main__":
    main()
