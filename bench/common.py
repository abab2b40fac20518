"""What every benchmark needs: a real server process, a ceiling app, wrk, and the summary line."""

from __future__ import annotations

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

import httpx

from mobimart.infra.pii import new_key_spec

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
        "MOBIMART_PAYMENT_GATEWAY": "none",
    }


def _uvicorn(app: str, port: int, env: dict[str, str], factory: bool) -> list[str]:
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
    proc = subprocess.Popen(_uvicorn(app, port, env, factory), env=env, cwd=ROOT)
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
