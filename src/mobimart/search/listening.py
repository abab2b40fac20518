"""Voice search as a service: the recogniser's vocabulary is the catalogue's (product names,
brands, categories, tags), rebuilt when the catalogue changes, in the background while the
previous one keeps answering."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.catalog import feed
from mobimart.catalog.view import ProductView
from mobimart.errors import DomainError
from mobimart.search import voice
from mobimart.search.analysis import head

PHRASE_WORDS = 3
# The grammar keeps the phrases most products share: measured on 50,000 real product titles,
# 10,000 phrases recognise 6 of 8 spoken product types in about 0.3 s, and every phrase of the
# catalogue (40,000) 1 of 5 in about 0.9 s (bench/RESULTS.md).
VOCABULARY = 10_000
_WORD = re.compile(r"[^\W\d_]+")


def name_phrases(name: str) -> set[str]:
    """The start of a product name ("white hanging heart") and what the product is (the end of
    the name's head: "copper pipe" in "1/2 in. x 10 ft. Copper Pipe for Water")."""
    words = _WORD.findall(name.casefold())
    kind = _WORD.findall(head(name).casefold())
    found = {" ".join(words[:n]) for n in range(1, min(PHRASE_WORDS, len(words)) + 1)}
    return found | {" ".join(kind[-n:]) for n in range(1, min(PHRASE_WORDS, len(kind)) + 1)}


def phrases(view: ProductView) -> set[str]:
    """How a shopper may ask for the product: by name, brand, category or tag."""
    found = name_phrases(view.name)
    found |= {view.brand_name.casefold(), *(t.casefold() for t in view.tags)}
    found |= {c.name_en.casefold() for c in view.categories}
    return {p for p in found if p}


def most_shared(per_product: Iterable[set[str]], limit: int = VOCABULARY) -> list[str]:
    """The phrases that the most products share, at most `limit`."""
    shared = Counter(p for found in per_product for p in found)
    return [p for p, _ in shared.most_common(limit)]


class _Ears:
    """The replica's follower for voice: phrases per product and the current recogniser."""

    def __init__(self) -> None:
        self.phrases_of: dict[int, set[str]] = {}
        self.recognizer: voice.Recognizer | None = None
        self.stale = True
        self.rebuilding: asyncio.Task[None] | None = None

    def apply(self, changed: list[ProductView], removed: list[int]) -> None:
        for view in changed:
            self.phrases_of[view.id] = phrases(view)
        for product_id in removed:
            self.phrases_of.pop(product_id, None)
        self.stale = True

    async def rebuild(self) -> None:
        self.stale = False
        vocabulary = most_shared(self.phrases_of.values())
        self.recognizer = await asyncio.to_thread(voice.Recognizer.build, vocabulary)

    async def current(self) -> voice.Recognizer:
        if self.recognizer is None:
            await self.rebuild()
        elif self.stale and (self.rebuilding is None or self.rebuilding.done()):
            self.rebuilding = asyncio.create_task(self.rebuild())
        assert self.recognizer is not None
        return self.recognizer


async def hear(session: AsyncSession, *, audio: bytes) -> str:
    """The words spoken in a recording (WebM/Opus, Ogg, MP4/AAC or WAV), in the catalogue's
    vocabulary. Nothing recognised is a 422 with advice."""
    pcm = await asyncio.to_thread(voice.decode_audio, audio)
    ears = feed.follower(await feed.replica(session), "voice", _Ears)
    recognizer = await ears.current()
    text = await asyncio.to_thread(recognizer.recognize, pcm)
    if not text:
        raise DomainError(
            "not_understood", "No words were recognised; speak closer to the microphone.", 422
        )
    return text
