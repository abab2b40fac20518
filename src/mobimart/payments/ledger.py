"""Posting to the double-entry ledger, and checking it.

A posting is one transaction row, unique on (kind, reference), and one entry per leg. Each
leg moves its account's balance with one conditional UPDATE that refuses to leave a
non-clearing account below zero, so two payments from one wallet at once can never both
spend the same money. Accounts are updated in id order, so two postings never wait on each
other's rows in opposite orders (PostgreSQL would report a deadlock).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.db import unique_or
from mobimart.errors import DomainError
from mobimart.payments import domain
from mobimart.payments.domain import AccountRef, Leg
from mobimart.payments.models import LedgerAccount, LedgerEntry, LedgerTransaction


class AlreadyPosted(Exception):
    """The (kind, reference) was posted before: the movement it stands for has happened."""


class InsufficientFunds(DomainError):
    def __init__(self) -> None:
        super().__init__("insufficient_funds", "Not enough money in the account.", 409)


async def account_id(session: AsyncSession, ref: AccountRef, currency: str) -> int:
    where = (
        LedgerAccount.kind == ref.kind.value,
        LedgerAccount.currency == currency,
        LedgerAccount.owner_id == ref.owner_id,
    )
    found = await session.scalar(select(LedgerAccount.id).where(*where))
    if found is not None:
        return found
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(LedgerAccount)
        .values(
            kind=ref.kind.value,
            owner_id=ref.owner_id,
            currency=currency,
            balance_minor=0,
            allow_negative=ref.kind in domain.NEGATIVE_ALLOWED,
        )
        .on_conflict_do_nothing()
    )
    created = await session.scalar(select(LedgerAccount.id).where(*where))
    assert created is not None
    return created


async def post(
    session: AsyncSession, *, kind: str, reference: str, currency: str, legs: Sequence[Leg]
) -> LedgerTransaction:
    """Post `legs` in the caller's transaction (the caller commits). Raises AlreadyPosted
    or InsufficientFunds; on either the caller rolls back."""
    if not domain.balanced(legs):
        raise ValueError(f"unbalanced posting {kind}:{reference}")
    transaction = LedgerTransaction(kind=kind, reference=reference, currency=currency)
    async with unique_or(session, AlreadyPosted(f"{kind}:{reference}")):
        session.add(transaction)
    totals: dict[int, int] = defaultdict(int)
    for leg in legs:
        totals[await account_id(session, leg.account, currency)] += leg.amount
    for account, amount in sorted(totals.items()):
        balance = await session.scalar(
            update(LedgerAccount)
            .where(
                LedgerAccount.id == account,
                or_(
                    LedgerAccount.allow_negative,
                    LedgerAccount.balance_minor + amount >= 0,
                ),
            )
            .values(balance_minor=LedgerAccount.balance_minor + amount)
            .returning(LedgerAccount.balance_minor)
            .execution_options(synchronize_session=False)
        )
        if balance is None:
            raise InsufficientFunds()
        session.add(
            LedgerEntry(
                transaction_id=transaction.id,
                account_id=account,
                amount_minor=amount,
                balance_after_minor=balance,
            )
        )
    await session.flush()
    return transaction


async def balance(session: AsyncSession, ref: AccountRef, currency: str) -> int:
    where = [
        LedgerAccount.kind == ref.kind.value,
        LedgerAccount.currency == currency,
        LedgerAccount.owner_id == ref.owner_id,
    ]
    return await session.scalar(select(LedgerAccount.balance_minor).where(*where)) or 0


async def entries(
    session: AsyncSession, ref: AccountRef, currency: str, *, before: int | None, limit: int
) -> list[tuple[LedgerEntry, LedgerTransaction]]:
    query = (
        select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerAccount.kind == ref.kind.value,
            LedgerAccount.currency == currency,
            LedgerAccount.owner_id == ref.owner_id,
        )
        .order_by(LedgerEntry.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(LedgerEntry.id < before)
    return [(e, t) for e, t in (await session.execute(query)).all()]


@dataclass
class Report:
    transactions: int = 0
    entries: int = 0
    accounts: int = 0
    total_by_currency: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def check(session: AsyncSession) -> Report:
    """Every entry sums to zero, per currency and per transaction; every balance is the sum
    of its entries; no account is below zero that may not be."""
    report = Report()
    report.transactions = await session.scalar(select(func.count(LedgerTransaction.id))) or 0
    report.entries = await session.scalar(select(func.count(LedgerEntry.id))) or 0
    report.accounts = await session.scalar(select(func.count(LedgerAccount.id))) or 0
    for currency, total in await session.execute(
        select(LedgerAccount.currency, func.sum(LedgerEntry.amount_minor))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .group_by(LedgerAccount.currency)
    ):
        report.total_by_currency[currency] = int(total)
        if total != 0:
            report.problems.append(f"{currency} entries add up to {total}, not 0")
    unbalanced = await session.execute(
        select(
            LedgerTransaction.kind, LedgerTransaction.reference, func.sum(LedgerEntry.amount_minor)
        )
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .group_by(LedgerTransaction.id, LedgerTransaction.kind, LedgerTransaction.reference)
        .having(func.sum(LedgerEntry.amount_minor) != 0)
    )
    for kind, reference, total in unbalanced:
        report.problems.append(f"transaction {kind}:{reference} adds up to {total}")
    sums = (
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_minor).label("total"))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    for account in await session.scalars(select(LedgerAccount).order_by(LedgerAccount.id)):
        if account.balance_minor < 0 and not account.allow_negative:
            report.problems.append(f"account {account.id} ({account.kind}) is below zero")
    mismatched = await session.execute(
        select(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.balance_minor, sums.c.total)
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.balance_minor != func.coalesce(sums.c.total, 0))
    )
    for account_id_, kind, balance_, total in mismatched:
        report.problems.append(
            f"account {account_id_} ({kind}) balance {balance_} but its entries add up to "
            f"{total or 0}"
        )
    return report
