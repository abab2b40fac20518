"""Real processes and a real browser: the server started as `make run` starts it, and Debian's
Chromium driven by Playwright at a phone viewport."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobimart.accounts.domain import mask_phone
from tests.conftest import absent

CHROMIUM = os.environ.get("MOBIMART_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


@dataclass
class Server:
    url: str
    env: dict[str, str]
    seconds_to_first_page: float
    log: Path


def mobimart(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobimart", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )


def start_server(
    var: Path, port: int | None = None, **extra_env: str
) -> tuple[subprocess.Popen[bytes], Server]:
    """migrate, load the demo, serve: the same three steps as `make run`."""
    port = port or free_port()
    env = {
        **os.environ,
        "MOBIMART_ENVIRONMENT": "development",
        "MOBIMART_VAR_DIR": str(var),
        "MOBIMART_DATABASE_URL": f"sqlite+aiosqlite:///{var}/mobimart.db",
        "MOBIMART_DB_POOL": "default",
        **extra_env,
    }
    started = time.monotonic()
    mobimart("migrate", env=env)
    mobimart("demo", env=env)
    log = var / "server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mobimart", "serve", "--port", str(port)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/", 60, proc)
    return proc, Server(url, env, time.monotonic() - started, log)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    proc, srv = start_server(tmp_path_factory.mktemp("e2e-var"))
    yield srv
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        absent(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def phone_context(browser: Any, server: Server) -> AsyncIterator[Any]:
    contexts: list[Any] = []

    async def make(locale: str = "en-US") -> Any:
        context = await browser.new_context(**PHONE, locale=locale, base_url=server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


def screenshot_dir() -> Path:
    path = Path(os.environ.get("MOBIMART_SCREENSHOTS", "var/screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


async def read_outbox_code(page: Any, phone: str) -> str:
    """Open the development SMS outbox and read the newest code sent to the number."""
    await page.goto("/dev/outbox")
    item = page.locator("#outbox li", has_text=mask_phone(phone)).first
    text = await item.locator(".text").inner_text()

    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)
