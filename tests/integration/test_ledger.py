"""The ledger on a real database: postings, refusals, idempotent references and the check
that `mobimart ledger check` runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from mobimart.cli import app as cli
from mobimart.db import Database
from mobimart.payments import domain, ledger
from mobimart.payments.models import LedgerAccount
from mobimart.settings import get_settings
from tests.conftest import call_in_thread


async def test_postings_balance_refuse_overdrafts_and_happen_once(
    db: Database, make_user: Any
) -> None:
    user = await make_user()
    async with db.session() as s:
        await ledger.post(
            s,
            kind="top_up",
            reference="t1",
            currency="CNY",
            legs=domain.top_up(5000, user_id=user.id),
        )
        await s.commit()
    async with db.session() as s:
        with pytest.raises(ledger.AlreadyPosted):
            await ledger.post(
                s,
                kind="top_up",
                reference="t1",
                currency="CNY",
                legs=domain.top_up(5000, user_id=user.id),
            )
        await s.rollback()

    async def spend(n: int) -> bool:
        async with db.session() as s:
            try:
                await ledger.post(
                    s,
                    kind="payment",
                    reference=f"p{n}",
                    currency="CNY",
                    legs=domain.pay({1: 2000}, method="wallet", payer_id=user.id),
                )
                await s.commit()
                return True
            except ledger.InsufficientFunds:
                await s.rollback()
                return False

    results = await asyncio.gather(*(spend(n) for n in range(5)))
    assert sum(results) == 2  # 5000 pays two of 2000, never a third
    async with db.session() as s:
        assert await ledger.balance(s, domain.wallet(user.id), "CNY") == 1000
        report = await ledger.check(s)
    assert report.ok, report.problems
    assert report.total_by_currency == {"CNY": 0}


async def test_check_finds_a_tampered_balance_and_the_command_says_so(
    db: Database, make_user: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user()
    async with db.session() as s:
        await ledger.post(
            s,
            kind="top_up",
            reference="t2",
            currency="CNY",
            legs=domain.top_up(700, user_id=user.id),
        )
        await s.commit()
    monkeypatch.setattr(get_settings(), "database_url", database_url)
    ok = call_in_thread(lambda: CliRunner().invoke(cli, ["ledger", "check"]))
    assert ok.exit_code == 0, ok.output
    assert "the ledger balances" in ok.output

    async with db.session() as s:
        await s.execute(
            update(LedgerAccount).where(LedgerAccount.owner_id == user.id).values(balance_minor=-5)
        )
        await s.commit()
    bad = call_in_thread(lambda: CliRunner().invoke(cli, ["ledger", "check"]))
    assert bad.exit_code == 1
    assert "below zero" in bad.output
    assert "entries add up to 700" in bad.output
    async with db.session() as s:  # put it back, or the fixture's own check fails the test
        await s.execute(
            update(LedgerAccount).where(LedgerAccount.owner_id == user.id).values(balance_minor=700)
        )
        await s.commit()


async def test_platform_accounts_hold_more_than_32_bits(db: Database, make_user: Any) -> None:
    """The gateway's clearing account sums every top-up on the platform: past ¥21,474,836.47
    a 32-bit column would refuse the next posting."""
    users = [await make_user(), await make_user()]
    async with db.session() as s:
        for n, user in enumerate(users):
            await ledger.post(
                s,
                kind="top_up",
                reference=f"big:{n}",
                currency="CNY",
                legs=domain.top_up(2_000_000_000, user_id=user.id),
            )
        await s.commit()
    async with db.session() as s:
        assert await ledger.balance(s, domain.CLEARING, "CNY") == -4_000_000_000
        assert (await ledger.check(s)).ok
