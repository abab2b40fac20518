"""The word list in bulk: `mobimart words import/export` and the demo's starter list, on
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from mobimart.cli import app as cli
from mobimart.db import Database
from mobimart.errors import DomainError
from mobimart.moderation import service as moderation
from mobimart.moderation import wordlist
from mobimart.moderation.models import BlockedWord
from mobimart.settings import get_settings
from tests.conftest import call_in_thread


async def _listed(db: Database) -> list[str]:
    async with db.session() as s:
        return list(await s.scalars(select(BlockedWord.word).order_by(BlockedWord.id)))


async def test_import_skips_what_would_change_nothing_and_export_reads_back(
    db: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.session() as s:
        await moderation.add_word(s, word="加微信", admin_id=None)
        await s.commit()
    source = tmp_path / "words.txt"
    source.write_text(
        "# contact-bypass spam\n"
        "\n"
        "ＦＲＥＥ Money\n"  # stored normalised
        "free  money\n"  # the same once spaces are ignored
        "加 微 信\n"  # listed already
        "加微信号\n"  # contains a listed word
        "刷单\n"
        "!!!\n"  # nothing to match
        f"{'x' * 61}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    run = call_in_thread(lambda: CliRunner().invoke(cli, ["words", "import", str(source)]))
    assert run.exit_code == 0, run.output
    assert "2 words added" in run.output
    assert "2 listed already, 1 blocked already by a shorter word, 2 invalid" in run.output
    assert "加微信号 (blocked by 加微信)" in run.output
    assert "line 8:" in run.output
    assert await _listed(db) == ["加微信", "free money", "刷单"]

    out = tmp_path / "export.txt"
    exported = call_in_thread(lambda: CliRunner().invoke(cli, ["words", "export", str(out)]))
    assert exported.exit_code == 0, exported.output
    assert out.read_text(encoding="utf-8") == "加微信\nfree money\n刷单\n"
    printed = call_in_thread(lambda: CliRunner().invoke(cli, ["words", "export"]))
    assert printed.output == "加微信\nfree money\n刷单\n"
    again = call_in_thread(lambda: CliRunner().invoke(cli, ["words", "import", str(out)]))
    assert "0 words added" in again.output
    assert await _listed(db) == ["加微信", "free money", "刷单"]


async def test_a_large_file_goes_in_batches_and_is_in_force_at_once(db: Database) -> None:
    words = [f"spamword{n}" for n in range(1, 1001)]
    async with db.session() as s:
        report = await wordlist.import_words(
            s, lines=list(enumerate(words, start=1)), admin_id=None
        )
    assert (report.added, report.listed, report.covered, report.invalid) == (1000, 0, [], [])
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(BlockedWord)) == 1000
        with pytest.raises(DomainError):
            await moderation.screen(s, "buy SPAMWORD999 now")
        await moderation.screen(s, "spamword1000x is not a listed word")


async def test_the_starter_list_is_clean_and_blocks_contact_bypass(db: Database) -> None:
    lines = wordlist.lines_of(wordlist.STARTER.read_text(encoding="utf-8"))
    async with db.session() as s:
        report = await wordlist.import_words(s, lines=lines, admin_id=None)
    assert report.added == len(lines) > 10
    async with db.session() as s:
        for spam in ("加 微 信聊", "Whatsapp me: 123", "好评返现5元"):
            with pytest.raises(DomainError):
                await moderation.screen(s, spam)
        # Complaints get through: they are what the shop needs to hear.
        await moderation.screen(s, "Fake! 假货, not as described. 商家刷好评")
