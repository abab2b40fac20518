"""Voice search in Chromium: the page records from the microphone (here Chromium's fake
capture device playing a clip synthesised by espeak-ng), sends it, and opens the results."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.api.test_voice_search import speak
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, Server


async def test_speaking_into_the_phone_finds_the_product(server: Server, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    clip = tmp_path / "said.wav"
    clip.write_bytes(speak("white hanging heart", tmp_path))
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={clip}%noloop",
    ]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=args)
        context = await browser.new_context(**PHONE, base_url=server.url)
        await context.grant_permissions(["microphone"])
        page = await context.new_page()
        await page.goto("/search")
        await page.click("#record")
        await asyncio.sleep(3.5)  # the clip lasts about two seconds
        async with page.expect_navigation(url="**/search?q=*"):
            await page.click("#record")
        assert "white hanging heart" in await page.locator("h1").inner_text()
        assert "White Hanging Heart T-Light Holder" in await page.locator("#products").inner_text()
        await browser.close()
