"""Promotions: what a cart is priced with, and taking and giving back their limits."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.db import unique_or
from mobimart.errors import Conflict, DomainError, NotFound
from mobimart.promotions import allowance, domain
from mobimart.promotions.domain import Kind, Scope
from mobimart.promotions.models import Promotion
from mobimart.text import clean_name

MAX_CODE = 32


def _subject(promotion_id: int) -> str:
    return f"promotion:{promotion_id}"


def to_rule(row: Promotion) -> domain.Promotion:
    return domain.Promotion(
        id=row.id,
        name=row.name,
        kind=Kind(row.kind),
        scope=Scope(row.scope),
        value=row.value,
        threshold=row.threshold_minor,
        cap=row.cap_minor,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        code=row.code,
        shop_id=None,  # filled by the caller, which knows the merchant's shop
        product_ids=frozenset(row.product_ids) if row.product_ids is not None else None,
        category_ids=frozenset(row.category_ids) if row.category_ids is not None else None,
        priority=row.priority,
        combines=row.combines,
        budget_left=None if row.budget_minor is None else row.budget_minor - row.spent_minor,
        uses_left=None if row.total_uses is None else row.total_uses - row.used,
    )


@dataclass(frozen=True)
class Loaded:
    rules: tuple[domain.Promotion, ...]
    rows: dict[int, Promotion]
    personal: dict[int, int]  # promotion -> uses this person has left
    unknown_codes: tuple[str, ...]


async def for_cart(
    session: AsyncSession,
    *,
    shops: dict[int, int],  # merchant -> shop
    codes: Iterable[str],
    user_id: int | None,
    now: dt.datetime,
) -> Loaded:
    """Live promotions of these merchants and the platform, and the coupons named."""
    wanted = sorted({normalise_code(c) for c in codes if c.strip()})
    window = and_(
        Promotion.active,
        or_(Promotion.starts_at.is_(None), Promotion.starts_at <= now),
        or_(Promotion.ends_at.is_(None), Promotion.ends_at > now),
    )
    owners = or_(Promotion.merchant_id.is_(None), Promotion.merchant_id.in_(list(shops)))
    rows = list(
        await session.scalars(
            select(Promotion).where(
                window,
                owners,
                or_(Promotion.code.is_(None), Promotion.code.in_(wanted)),
            )
        )
    )
    found = {r.code for r in rows if r.code}
    personal: dict[int, int] = {}
    limited = [r for r in rows if r.per_person is not None]
    if limited and user_id is not None:
        taken = await allowance.taken(
            session, subjects=[_subject(r.id) for r in limited], user_id=user_id
        )
        for r in limited:
            assert r.per_person is not None
            personal[r.id] = r.per_person - taken.get(_subject(r.id), 0)
    rules = []
    for row in rows:
        rule = to_rule(row)
        if row.merchant_id is not None:
            rule = _with_shop(rule, shops[row.merchant_id])
        rules.append(rule)
    return Loaded(
        rules=tuple(rules),
        rows={r.id: r for r in rows},
        personal=personal,
        unknown_codes=tuple(c for c in wanted if c not in found),
    )


def _with_shop(rule: domain.Promotion, shop_id: int) -> domain.Promotion:
    from dataclasses import replace

    return replace(rule, shop_id=shop_id)


async def take(
    session: AsyncSession, *, row: Promotion, amount: int, user_id: int, uses: int = 1
) -> None:
    """Take one use and `amount` of budget in the caller's transaction; a promotion whose
    limit was reached since the cart was priced is refused, never overspent."""
    conditions = [Promotion.id == row.id]
    if row.total_uses is not None:
        conditions.append(Promotion.used + uses <= Promotion.total_uses)
    if row.budget_minor is not None:
        conditions.append(Promotion.spent_minor + amount <= Promotion.budget_minor)
    result = await session.execute(
        update(Promotion)
        .where(*conditions)
        .values(used=Promotion.used + uses, spent_minor=Promotion.spent_minor + amount)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "promotion_used_up",
            f"“{row.name}” has just run out; your cart has been priced again without it.",
        )
    if row.per_person is not None and not await allowance.take(
        session, subject=_subject(row.id), user_id=user_id, n=uses, limit=row.per_person
    ):
        raise Conflict("promotion_limit", f"You have already used “{row.name}”.")


async def give_back(
    session: AsyncSession, *, promotion_id: int, amount: int, user_id: int, uses: int = 1
) -> None:
    row = await session.get(Promotion, promotion_id)
    if row is None:
        return
    await session.execute(
        update(Promotion)
        .where(Promotion.id == promotion_id)
        .values(used=Promotion.used - uses, spent_minor=Promotion.spent_minor - amount)
        .execution_options(synchronize_session=False)
    )
    if row.per_person is not None:
        await allowance.give_back(session, subject=_subject(row.id), user_id=user_id, n=uses)


# --- management ------------------------------------------------------------------------------


def normalise_code(code: str) -> str:
    return code.strip().upper()


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Kind
    scope: Scope
    value: int = 0
    threshold_minor: int = 0
    cap_minor: int | None = None
    code: str | None = None
    product_ids: Sequence[int] | None = None
    category_ids: Sequence[int] | None = None
    priority: int = 0
    combines: bool = False
    budget_minor: int | None = None
    total_uses: int | None = None
    per_person: int | None = None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None


def check(spec: Spec) -> None:
    """Refuse promotions that cannot work as their owner expects."""
    if not clean_name(spec.name, 80):
        raise DomainError("invalid_promotion", "Give the promotion a name.", 422)
    if spec.kind is Kind.percent and not 0 < spec.value <= 10_000:
        raise DomainError(
            "invalid_promotion", "A percentage is 1 to 10000 basis points (100 % = 10000).", 422
        )
    if spec.kind in (Kind.fixed, Kind.spend_save) and spec.value <= 0:
        raise DomainError("invalid_promotion", "The amount off must be more than zero.", 422)
    if spec.kind is Kind.spend_save and spec.threshold_minor <= spec.value:
        raise DomainError(
            "invalid_promotion", "Spend-and-save needs a threshold above the saving.", 422
        )
    if spec.scope is Scope.catalogue and (spec.code or spec.kind not in (Kind.fixed, Kind.percent)):
        raise DomainError(
            "invalid_promotion",
            "A catalogue promotion is a fixed or percentage price cut, without a code.",
            422,
        )
    if spec.starts_at and spec.ends_at and spec.ends_at <= spec.starts_at:
        raise DomainError("invalid_promotion", "The promotion must end after it starts.", 422)
    if spec.code is not None and not (
        1 <= len(normalise_code(spec.code)) <= MAX_CODE and normalise_code(spec.code).isalnum()
    ):
        raise DomainError("invalid_promotion", "A coupon code is 1-32 letters and digits.", 422)
    for name, limit in (
        ("budget", spec.budget_minor),
        ("total uses", spec.total_uses),
        ("uses per person", spec.per_person),
        ("cap", spec.cap_minor),
    ):
        if limit is not None and limit <= 0:
            raise DomainError("invalid_promotion", f"The {name} must be more than zero.", 422)


async def create(session: AsyncSession, *, merchant_id: int | None, spec: Spec) -> Promotion:
    check(spec)
    row = Promotion(
        merchant_id=merchant_id,
        name=clean_name(spec.name, 80),
        kind=spec.kind.value,
        scope=spec.scope.value,
        value=spec.value,
        threshold_minor=spec.threshold_minor,
        cap_minor=spec.cap_minor,
        code=normalise_code(spec.code) if spec.code else None,
        product_ids=list(spec.product_ids) if spec.product_ids is not None else None,
        category_ids=list(spec.category_ids) if spec.category_ids is not None else None,
        priority=spec.priority,
        combines=spec.combines,
        budget_minor=spec.budget_minor,
        total_uses=spec.total_uses,
        per_person=spec.per_person,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
    )
    async with unique_or(session, Conflict("code_taken", "That coupon code is taken.")):
        session.add(row)
    await session.commit()
    return row


async def owned(session: AsyncSession, *, promotion_id: int, merchant_id: int | None) -> Promotion:
    row = await session.get(Promotion, promotion_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound("Promotion")
    return row


async def end(
    session: AsyncSession, *, promotion_id: int, merchant_id: int | None, admin: bool = False
) -> Promotion:
    """Stop a promotion; admins may stop anyone's (a mistaken 100 % off, a scam)."""
    row = await session.get(Promotion, promotion_id) if admin else None
    if row is None:
        row = await owned(session, promotion_id=promotion_id, merchant_id=merchant_id)
    row.active = False
    await session.commit()
    return row


async def listed(
    session: AsyncSession, *, merchant_id: int | None, after: int | None, limit: int
) -> list[Promotion]:
    query = select(Promotion).where(
        Promotion.merchant_id.is_(None)
        if merchant_id is None
        else Promotion.merchant_id == merchant_id
    )
    if after is not None:
        query = query.where(Promotion.id < after)
    return list(await session.scalars(query.order_by(Promotion.id.desc()).limit(limit)))


# Unambiguous on a phone screen or read aloud: no 0/O, 1/I/L.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


async def issue_single_use(session: AsyncSession, *, promotion_id: int) -> Promotion:
    """A personal copy of a coupon with its own random code, good for one use (a draw's prize,
    an automation's gift). Added to the session; the caller commits with what it awards.
    The base may be ended: an ended coupon is a template only, its own code redeems nothing,
    so a prize's stock is the only way to get it; the copy itself is live."""
    base = await session.get(Promotion, promotion_id)
    if base is None or base.code is None:
        raise NotFound("Coupon")
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))  # 31^12 ≈ 2^59
    copy = Promotion(
        merchant_id=base.merchant_id,
        name=base.name,
        kind=base.kind,
        scope=base.scope,
        value=base.value,
        threshold_minor=base.threshold_minor,
        cap_minor=base.cap_minor,
        code=code,
        product_ids=base.product_ids,
        category_ids=base.category_ids,
        priority=base.priority,
        combines=base.combines,
        total_uses=1,
        per_person=1,
        active=True,
        starts_at=base.starts_at,
        ends_at=base.ends_at,
    )
    session.add(copy)
    await session.flush()
    return copy
