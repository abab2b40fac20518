"""The word list in bulk: `mobimart words import/export` and the demo's starter list.

A list file is UTF-8 text, one word or phrase a line; blank lines and lines starting with "#"
are skipped. An import adds only what changes what is blocked: a word whose compact form is
listed already ("加 微 信" beside "加微信") or that contains a listed word ("加微信号") is
counted and skipped, so importing the same file twice adds nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.db import insert_or_skip
from mobimart.moderation.domain import WordFilter, compact, normalise
from mobimart.moderation.models import BlockedWord

STARTER = Path(__file__).with_name("starter_words.txt")
MAX_LEN = 60  # the column's width
BATCH = 400  # rows per INSERT: 2 parameters each, under SQLite's old limit of 999
INVALID = f"a word is 1 to {MAX_LEN} letters, not only punctuation"


@dataclass
class ImportReport:
    added: int = 0
    listed: int = 0  # the same as a word on the list (or earlier in the file)
    covered: list[tuple[str, str]] = field(default_factory=list)  # (word, the listed word in it)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


def lines_of(text: str) -> list[tuple[int, str]]:
    """(line number, word) for every line that holds one."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        word = line.strip()
        if word and not word.startswith("#"):
            found.append((number, word))
    return found


async def import_words(
    session: AsyncSession,
    *,
    lines: Iterable[tuple[int, str]],
    admin_id: int | None,
    progress: Callable[[int], None] = lambda n: None,
) -> ImportReport:
    """Add the new words in one transaction; one filter build checks the whole file."""
    report = ImportReport()
    listed = list(await session.scalars(select(BlockedWord.word)))
    seen = {compact(w) for w in listed}
    candidates: dict[str, str] = {}  # normalised word -> compact form
    for number, raw in lines:
        word = normalise(raw.strip())
        key = compact(word)
        if not key or len(word) > MAX_LEN:
            report.invalid.append((number, INVALID))
        elif key in seen:
            report.listed += 1
        else:
            seen.add(key)
            candidates[word] = key
    progress(len(report.invalid) + report.listed)

    everything = WordFilter([*listed, *candidates])
    new: list[str] = []
    for word, key in candidates.items():
        inside = next((m.word for m in everything.find(word) if m.word != key), None)
        if inside is None:
            new.append(word)
        else:
            report.covered.append((word, inside))
    progress(len(report.covered))

    for start in range(0, len(new), BATCH):
        chunk = new[start : start + BATCH]
        # A word another admin adds meanwhile is skipped, not an error for the whole file.
        result = await session.execute(
            insert_or_skip(session, BlockedWord, index_elements=["word"]).values(
                [{"word": w, "added_by": admin_id} for w in chunk]
            )
        )
        added = int(result.rowcount)  # type: ignore[attr-defined]
        report.added += added
        report.listed += len(chunk) - added
        progress(len(chunk))
    await session.commit()
    return report


async def export_words(session: AsyncSession) -> list[str]:
    """The list in the order it was built, as an import file takes it back."""
    return list(await session.scalars(select(BlockedWord.word).order_by(BlockedWord.id)))
