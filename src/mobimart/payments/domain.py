"""The ledger's rules. Pure: each money movement is a set of legs that add up to zero, built
here and posted by the service with one conditional UPDATE per account.

Sign: an account's balance is the sum of its entries. What the platform owes (a wallet, a
merchant's money) is positive; money held at a payment provider is the other side, so the
gateway clearing account runs negative by what the provider holds for us. Only clearing
accounts may go below zero; every other balance is refused below zero by its UPDATE.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class AccountKind(enum.StrEnum):
    wallet = "wallet"  # a consumer's stored value; owner: user
    merchant_pending = "merchant_pending"  # paid orders not yet completed; owner: merchant
    merchant_available = "merchant_available"  # settled, can be paid out; owner: merchant
    commission = "commission"  # the platform's income; no owner
    gateway_clearing = "gateway_clearing"  # held at the payment provider; no owner


NEGATIVE_ALLOWED = frozenset({AccountKind.gateway_clearing})


@dataclass(frozen=True)
class AccountRef:
    kind: AccountKind
    owner_id: int = 0  # 0: the platform's own


@dataclass(frozen=True)
class Leg:
    account: AccountRef
    amount: int  # signed minor units


def wallet(user_id: int) -> AccountRef:
    return AccountRef(AccountKind.wallet, user_id)


def pending(merchant_id: int) -> AccountRef:
    return AccountRef(AccountKind.merchant_pending, merchant_id)


def available(merchant_id: int) -> AccountRef:
    return AccountRef(AccountKind.merchant_available, merchant_id)


COMMISSION = AccountRef(AccountKind.commission)
CLEARING = AccountRef(AccountKind.gateway_clearing)


def source(method: str, payer_id: int) -> AccountRef:
    """Where a payer's money comes from and where a refund goes back to."""
    return wallet(payer_id) if method == "wallet" else CLEARING


def move(amount: int, frm: AccountRef, to: AccountRef) -> tuple[Leg, Leg]:
    if amount <= 0:
        raise ValueError("a movement is a positive amount")
    return Leg(frm, -amount), Leg(to, amount)


def top_up(amount: int, *, user_id: int) -> tuple[Leg, ...]:
    return move(amount, CLEARING, wallet(user_id))


def pay(parts: Mapping[int, int], *, method: str, payer_id: int) -> tuple[Leg, ...]:
    """One payment split over the merchants it pays (merchant -> amount), held as pending
    until each order completes."""
    frm = source(method, payer_id)
    legs = [Leg(frm, -sum(parts.values()))]
    legs += [Leg(pending(m), amount) for m, amount in sorted(parts.items()) if amount]
    return tuple(legs)


def refund(amount: int, *, merchant_id: int, method: str, payer_id: int) -> tuple[Leg, ...]:
    return move(amount, pending(merchant_id), source(method, payer_id))


def commission_of(amount: int, bps: int) -> int:
    """The platform's share in whole fen, rounded half up (a 5 % commission on ¥0.10 is 1 fen
    only when it reaches half a fen)."""
    return (amount * bps + 5_000) // 10_000


def settle(amount: int, *, merchant_id: int, commission_bps: int) -> tuple[Leg, ...]:
    """A completed order's money: the merchant's share becomes available, the platform's
    commission is taken."""
    cut = commission_of(amount, commission_bps)
    legs = [Leg(pending(merchant_id), -amount), Leg(available(merchant_id), amount - cut)]
    if cut:
        legs.append(Leg(COMMISSION, cut))
    return tuple(legs)


def payout(amount: int, *, merchant_id: int) -> tuple[Leg, ...]:
    return move(amount, available(merchant_id), CLEARING)


def daily_totals(
    entries: Sequence[tuple[dt.datetime, int]], *, today: dt.date, days: int
) -> list[tuple[dt.date, int]]:
    """Money in per UTC day over the last `days` days, oldest first, empty days at 0: the
    merchant's income chart."""
    first = today - dt.timedelta(days=days - 1)
    totals = {first + dt.timedelta(days=n): 0 for n in range(days)}
    for at, amount in entries:
        day = at.astimezone(dt.UTC).date()
        if day in totals and amount > 0:
            totals[day] += amount
    return sorted(totals.items())


def balanced(legs: Sequence[Leg]) -> bool:
    return bool(legs) and sum(leg.amount for leg in legs) == 0


def refusable(balance_after: int, account: AccountRef) -> bool:
    """True when a balance may not end where a posting would leave it."""
    return balance_after < 0 and account.kind not in NEGATIVE_ALLOWED


# --- face to face ----------------------------------------------------------------------------


def in_store(
    amount: int, *, merchant_id: int, payer_id: int, commission_bps: int
) -> tuple[Leg, ...]:
    """A wallet payment at the counter. The goods changed hands there and then, so there is no
    order to complete: the money is the merchant's at once, less the commission an order would
    have paid at settlement."""
    cut = commission_of(amount, commission_bps)
    legs = [Leg(wallet(payer_id), -amount)]
    if amount - cut:
        legs.append(Leg(available(merchant_id), amount - cut))
    if cut:
        legs.append(Leg(COMMISSION, cut))
    return tuple(legs)


def trade_no() -> str:
    """Our number for a payment or refund at the provider: random, so it says nothing about
    volumes."""
    return secrets.token_hex(12)


PAYMENT_CODE_DIGITS = 18


def new_payment_code() -> str:
    """18 digits, never starting with 0: what scanner guns and the staff's keypad type, as
    with the big wallets' codes (about 2^60 values, while one lives for a minute)."""
    low = 10 ** (PAYMENT_CODE_DIGITS - 1)
    return str(low + secrets.randbelow(9 * low))


def normalize_payment_code(text: str) -> str | None:
    """The digits a person typed or a scanner sent, spaces and dashes dropped; None if it
    cannot be a code."""
    digits = "".join(ch for ch in text if ch not in " -")
    if len(digits) != PAYMENT_CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def payment_code_digest(secret: str, code: str) -> str:
    """Codes are stored as a keyed digest: a leaked table yields no codes to charge."""
    return hmac.new(secret.encode(), f"paycode:{code}".encode(), hashlib.sha256).hexdigest()
