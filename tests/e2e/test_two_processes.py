"""Two API processes on one database: a product published through one is found by search
and listed by the other within a second (each keeps its own catalogue replica)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from mobimart.demo.load import DEMO_PASSWORD, MERCHANTS
from tests.e2e.conftest import Server, free_port, wait_http


def test_published_product_is_found_by_the_other_process_within_a_second(
    server: Server,
) -> None:
    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-m", "mobimart", "serve", "--port", str(port)],
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        second = f"http://127.0.0.1:{port}"
        wait_http(second + "/", 60, other)
        assert httpx.get(second + "/api/v1/products", params={"q": "zither"}).json()["total"] == 0
        phone = MERCHANTS[0][0]
        token = httpx.post(
            server.url + "/api/v1/auth/password-token",
            json={"phone": phone, "password": DEMO_PASSWORD},
        ).json()["access_token"]
        me = httpx.get(
            server.url + "/api/v1/merchants", headers={"Authorization": f"Bearer {token}"}
        )
        merchant_id = me.json()[0]["id"]
        made = httpx.post(
            f"{server.url}/api/v1/merchants/{merchant_id}/products",
            headers={"Authorization": f"Bearer {token}"},
            json={"name": "Concert Zither", "price_minor": 99900, "stock": 2, "publish": True},
        )
        assert made.status_code == 201, made.text
        published = time.monotonic()
        while True:
            found = httpx.get(second + "/api/v1/products", params={"q": "zithr"}).json()
            if found["total"]:
                break
            assert time.monotonic() - published < 1.0, "not found within a second"
            time.sleep(0.02)
        assert found["items"][0]["name"] == "Concert Zither"
        print(f"found by the other process after {time.monotonic() - published:.3f} s")
    finally:
        other.terminate()
        other.wait(10)
