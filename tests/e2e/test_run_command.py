"""`make run`'s steps on a fresh directory: serving within a minute, with the demo data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import Server


def test_first_page_within_a_minute_with_demo_data(server: Server) -> None:
    assert server.seconds_to_first_page < 60
    home = httpx.get(server.url + "/")
    assert home.status_code == 200
    assert "Mobimart" in home.text
    shops = {s["name"] for s in httpx.get(server.url + "/api/v1/shops").json()}
    assert {"Retrospot Home 红点家居", "Lantern & Co 灯笼小铺", "Pantry Gifts 食品柜礼品"} <= shops
    count, cursor = 0, None
    while True:
        page = httpx.get(
            server.url + "/api/v1/products",
            params={"limit": 100, **({"cursor": cursor} if cursor else {})},
        ).json()
        count += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert count >= 200


def test_demo_accounts_sign_in_with_the_printed_password(server: Server) -> None:
    for phone in ("+8613900139000", "+8613800138000", "+8613700137001"):
        response = httpx.post(
            server.url + "/api/v1/auth/password-token",
            json={"phone": phone, "password": "mobimart-demo"},
        )
        assert response.status_code == 201, response.text
    admin = httpx.post(
        server.url + "/api/v1/auth/password-token",
        json={"phone": "+8613900139000", "password": "mobimart-demo"},
    ).json()
    assert admin["user"]["is_admin"]


def test_server_log_holds_no_codes_or_numbers(server: Server) -> None:
    httpx.post(server.url + "/api/v1/auth/otp", json={"phone": "+8613612347001"})
    log = server.log.read_text()
    assert "13612347001" not in log
    assert "Your code" not in log


def test_catalog_import_command_reports_bad_rows(server: Server, tmp_path: Path) -> None:
    csv_file = tmp_path / "products.csv"
    csv_file.write_text("name,price,stock\nStoneware Teapot,88.00,5\nBroken Row,free,1\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mobimart",
            "catalog",
            "import",
            str(csv_file),
            "--merchant",
            "1",
            "--publish",
        ],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "1 products imported." in result.stdout
    assert "1 rows not imported" in result.stdout
    assert "not a number" in result.stdout
    found = httpx.get(server.url + "/api/v1/products", params={"q": "stoneware teapot"}).json()
    assert found["items"][0]["name"] == "Stoneware Teapot"  # demo teapots follow it
