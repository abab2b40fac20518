"""Voice search over HTTP: a clip spoken by espeak-ng is recognised against the catalogue's
vocabulary and searched."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from mobimart.catalog import service as catalog
from mobimart.db import Database
from tests import factories
from tests.api.test_pages import csrf_of
from tests.conftest import absent

NAMES = [
    "Steel Kettle",
    "Ceramic Tea Mug",
    "Wooden Cutting Board",
    "Red Running Shoes",
    "Paper Lantern",
    "Glass Water Bottle",
]


def speak(text: str, tmp: Path) -> bytes:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        absent("espeak-ng and sox are needed to synthesise speech (apt-get install espeak-ng sox)")
    raw, clip = tmp / "raw.wav", tmp / "clip.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "120", "-w", str(raw), text], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(clip), "pad", "0.5", "0.5"],
        check=True,
    )
    return clip.read_bytes()


async def _catalogue(db: Database, make_user: Any) -> None:
    merchant = await factories.merchant(db, await make_user(), admin=await make_user(admin=True))
    async with db.session() as s:
        for name in NAMES:
            await catalog.create_product(
                s, merchant=merchant, name=name, price_minor=1000, stock=1, publish=True
            )


async def test_spoken_catalogue_phrases_find_their_products(
    client: httpx.AsyncClient, db: Database, make_user: Any, tmp_path: Path
) -> None:
    await _catalogue(db, make_user)
    heard = {}
    for name in NAMES[:5]:
        response = await client.post(
            "/api/v1/search/voice",
            files={"audio": ("clip.wav", speak(name, tmp_path), "audio/wav")},
        )
        assert response.status_code in (200, 422), response.text
        body = response.json()
        heard[name] = body.get("text", "")
        if heard[name] == name.lower():
            assert body["items"][0]["name"] == name
    exact = [n for n, text in heard.items() if text == n.lower()]
    assert len(exact) >= 4, heard


async def test_unsupported_or_empty_audio_gets_a_clear_message(
    client: httpx.AsyncClient, db: Database, make_user: Any
) -> None:
    await _catalogue(db, make_user)
    junk = await client.post(
        "/api/v1/search/voice", files={"audio": ("x.webm", b"\x00" * 500, "audio/webm")}
    )
    assert junk.status_code == 415
    assert junk.json()["code"] == "unsupported_audio"
    page = await client.get("/search")
    refused = await client.post(
        "/search/voice",
        data={"csrf_token": csrf_of(page.text)},
        files={"audio": ("x.webm", b"\x00" * 500, "audio/webm")},
    )
    assert refused.status_code == 415
    assert 'role="alert"' in refused.text


async def test_the_voice_form_without_script_redirects_to_results(
    client: httpx.AsyncClient, db: Database, make_user: Any, tmp_path: Path
) -> None:
    await _catalogue(db, make_user)
    page = await client.get("/search")
    answer = await client.post(
        "/search/voice",
        data={"csrf_token": csrf_of(page.text)},
        files={"audio": ("clip.wav", speak("paper lantern", tmp_path), "audio/wav")},
    )
    assert answer.status_code == 303
    results = await client.get(answer.headers["location"])
    assert "You said “paper lantern”" in results.text
    assert "Paper Lantern" in results.text
