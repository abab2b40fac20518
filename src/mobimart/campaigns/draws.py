"""Lucky draws: a merchant's prize pool, entries decided by the provably fair roll of
`draw_rules`, prizes taken by conditional updates (never more awarded than stocked), and
the claims of physical prizes (kept encrypted; the merchant sees phones masked)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.domain import mask_phone, normalize_phone
from mobimart.accounts.models import User
from mobimart.campaigns import draw_rules, events
from mobimart.campaigns.draw_rules import Refusal
from mobimart.campaigns.models import Draw, DrawEntry, DrawPrize, QrCode
from mobimart.catalog import follows
from mobimart.catalog.models import Shop
from mobimart.checkout.domain import Status
from mobimart.checkout.models import Order
from mobimart.db import insert_or_skip, utcnow
from mobimart.engagement import points
from mobimart.errors import Conflict, DomainError, Forbidden, NotFound
from mobimart.promotions import service as promotions
from mobimart.promotions.models import Promotion
from mobimart.text import clean, clean_name

KINDS = ("coupon", "points", "physical")
SOURCES = ("qr", "link", "page")
MAX_PRIZES = 20
MAX_DAYS = 366  # a draw runs at most a year: its seed stays secret no longer
OUT_OF_STOCK = "out_of_stock"  # the roll landed on a prize already all given out

_REFUSALS = {
    Refusal.not_open: "This draw has not opened yet.",
    Refusal.closed: "This draw has closed.",
    Refusal.must_follow: "Follow the shop to enter this draw.",
    Refusal.min_order: "This draw is for customers with a recent order of the minimum amount.",
}


@dataclass(frozen=True)
class PrizeSpec:
    name: str
    kind: str
    chance_ppm: int
    quantity: int
    promotion_id: int | None = None
    points: int | None = None


@dataclass(frozen=True)
class DrawSpec:
    name: str
    opens_at: dt.datetime
    closes_at: dt.datetime
    prizes: Sequence[PrizeSpec]
    rules: dict[str, Any] = field(default_factory=dict)


def _invalid(detail: str) -> DomainError:
    return DomainError("invalid_draw", detail, 422)


def check_rules(raw: dict[str, Any]) -> draw_rules.Rules:
    try:
        return draw_rules.parse_rules(raw)
    except ValueError as exc:
        raise _invalid(str(exc)) from None


async def _check_prizes(
    session: AsyncSession, *, merchant_id: int, prizes: Sequence[PrizeSpec]
) -> None:
    if not 1 <= len(prizes) <= MAX_PRIZES:
        raise _invalid(f"A draw has 1 to {MAX_PRIZES} prizes.")
    try:
        draw_rules.bands([(i, p.chance_ppm) for i, p in enumerate(prizes)])
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    for prize in prizes:
        if not clean_name(prize.name, 80):
            raise _invalid("Give every prize a name.")
        if prize.kind not in KINDS:
            raise _invalid("A prize is a coupon, points or a physical prize.")
        if not 1 <= prize.quantity <= 1_000_000:
            raise _invalid("A prize's quantity is 1 to 1,000,000.")
        if prize.kind == "points" and not (prize.points and 1 <= prize.points <= 1_000_000):
            raise _invalid("A points prize gives 1 to 1,000,000 points.")
        if prize.kind == "coupon":
            if prize.promotion_id is None:
                raise _invalid("Choose the coupon a coupon prize gives.")
            await usable_coupon(session, merchant_id=merchant_id, promotion_id=prize.promotion_id)


async def usable_coupon(session: AsyncSession, *, merchant_id: int, promotion_id: int) -> Promotion:
    """One of the merchant's own ended coupons (with a code), a template each winner gets a
    live single-use copy of. A live coupon is refused: anyone who knows its code could use it
    without winning, and the prize's stock would mean nothing."""
    row = await session.get(Promotion, promotion_id)
    if row is None or row.merchant_id != merchant_id or row.code is None:
        raise _invalid("The coupon prize must be one of your coupons (a promotion with a code).")
    if row.active:
        raise _invalid(
            f"The coupon {row.code} is live: anyone who knows its code can use it without "
            "winning. End it first: an ended coupon is used only as a prize."
        )
    if row.ends_at is not None and row.ends_at <= utcnow():
        raise _invalid("That coupon's end date has passed: its copies would not work.")
    return row


async def coupons(session: AsyncSession, *, merchant_id: int) -> list[Promotion]:
    """Coupons a prize can give: the merchant's ended ones with a code (prize templates),
    newest first, without the single-use copies given out (one use, one person)."""
    rows = await session.scalars(
        select(Promotion)
        .where(
            Promotion.merchant_id == merchant_id,
            Promotion.code.is_not(None),
            Promotion.active.is_(False),
            or_(Promotion.ends_at.is_(None), Promotion.ends_at > utcnow()),
            or_(
                func.coalesce(Promotion.total_uses, 0) != 1,
                func.coalesce(Promotion.per_person, 0) != 1,
            ),
        )
        .order_by(Promotion.id.desc())
        .limit(50)
    )
    return list(rows)


def _check_times(opens_at: dt.datetime, closes_at: dt.datetime, now: dt.datetime) -> None:
    if closes_at <= opens_at:
        raise _invalid("The draw must close after it opens.")
    if closes_at <= now:
        raise _invalid("The draw must close in the future.")
    if closes_at - min(opens_at, now) > dt.timedelta(days=MAX_DAYS):
        raise _invalid(f"A draw runs at most {MAX_DAYS} days.")


async def create(session: AsyncSession, *, merchant_id: int, spec: DrawSpec) -> Draw:
    """A draw and its prizes; its seed is made now and only its hash is public until it
    closes."""
    name = clean_name(spec.name, 80)
    if not name:
        raise _invalid("Give the draw a name.")
    rules = check_rules(spec.rules)
    _check_times(spec.opens_at, spec.closes_at, utcnow())
    await _check_prizes(session, merchant_id=merchant_id, prizes=spec.prizes)
    seed = draw_rules.new_seed()
    draw = Draw(
        merchant_id=merchant_id,
        name=name,
        rules=rules.as_json(),
        seed=seed,
        seed_hash=draw_rules.seed_hash(seed),
        opens_at=spec.opens_at,
        closes_at=spec.closes_at,
    )
    session.add(draw)
    await session.flush()
    for position, prize in enumerate(spec.prizes):
        session.add(
            DrawPrize(
                draw_id=draw.id,
                name=clean_name(prize.name, 80),
                kind=prize.kind,
                chance_ppm=prize.chance_ppm,
                quantity=prize.quantity,
                promotion_id=prize.promotion_id if prize.kind == "coupon" else None,
                points=prize.points if prize.kind == "points" else None,
                position=position,
            )
        )
    await session.commit()
    return draw


async def get(session: AsyncSession, *, draw_id: int) -> Draw:
    draw = await session.get(Draw, draw_id)
    if draw is None:
        raise NotFound("Draw")
    return draw


async def owned(session: AsyncSession, *, merchant_id: int, draw_id: int) -> Draw:
    draw = await session.get(Draw, draw_id)
    if draw is None or draw.merchant_id != merchant_id:
        raise NotFound("Draw")
    return draw


async def listed(
    session: AsyncSession, *, merchant_id: int, before_id: int | None, limit: int
) -> list[Draw]:
    query = select(Draw).where(Draw.merchant_id == merchant_id)
    if before_id is not None:
        query = query.where(Draw.id < before_id)
    return list(await session.scalars(query.order_by(Draw.id.desc()).limit(limit)))


async def prizes_of(session: AsyncSession, *, draw_id: int) -> list[DrawPrize]:
    rows = await session.scalars(
        select(DrawPrize)
        .where(DrawPrize.draw_id == draw_id)
        .order_by(DrawPrize.position, DrawPrize.id)
    )
    return list(rows)


def bands_of(prizes: Sequence[DrawPrize]) -> list[draw_rules.Band]:
    return draw_rules.bands([(p.id, p.chance_ppm) for p in prizes])


def is_closed(draw: Draw, now: dt.datetime | None = None) -> bool:
    return draw_rules.revealed(draw.closes_at, now or utcnow())


def public_seed(draw: Draw, now: dt.datetime | None = None) -> str | None:
    """The seed, once the draw has closed; None before."""
    return draw.seed if is_closed(draw, now) else None


async def entry_count(session: AsyncSession, *, draw_id: int) -> int:
    count = await session.scalar(
        select(func.count()).select_from(DrawEntry).where(DrawEntry.draw_id == draw_id)
    )
    return int(count or 0)


async def entry_counts(session: AsyncSession, *, draw_ids: Sequence[int]) -> dict[int, int]:
    """Entries per draw for a page of draws, in one query."""
    if not draw_ids:
        return {}
    rows = await session.execute(
        select(DrawEntry.draw_id, func.count())
        .where(DrawEntry.draw_id.in_(list(draw_ids)))
        .group_by(DrawEntry.draw_id)
    )
    counts = {draw_id: int(n) for draw_id, n in rows}
    return {draw_id: counts.get(draw_id, 0) for draw_id in draw_ids}


async def rename(session: AsyncSession, *, merchant_id: int, draw_id: int, name: str) -> Draw:
    draw = await owned(session, merchant_id=merchant_id, draw_id=draw_id)
    draw.name = clean_name(name, 80)
    if not draw.name:
        raise _invalid("Give the draw a name.")
    await session.commit()
    return draw


async def close(session: AsyncSession, *, merchant_id: int, draw_id: int) -> Draw:
    """Close now (closing again changes nothing): entries stop and the seed is revealed.
    A closed draw never reopens, since everyone may know its seed."""
    draw = await owned(session, merchant_id=merchant_id, draw_id=draw_id)
    now = utcnow()
    await session.execute(
        update(Draw).where(Draw.id == draw.id, Draw.closes_at > now).values(closes_at=now)
    )
    await session.commit()
    await session.refresh(draw)
    return draw


async def remove(session: AsyncSession, *, merchant_id: int, draw_id: int) -> None:
    """Only a draw nobody entered: entries are results people hold and the public checks."""
    draw = await owned(session, merchant_id=merchant_id, draw_id=draw_id)
    if await entry_count(session, draw_id=draw.id):
        raise Conflict("draw_has_entries", "People entered this draw; close it instead.")
    await session.execute(delete(Draw).where(Draw.id == draw.id))
    await session.commit()


# --- entering --------------------------------------------------------------------------------


async def _best_order(
    session: AsyncSession, *, user_id: int, merchant_id: int, days: int, now: dt.datetime
) -> int:
    best = await session.scalar(
        select(func.max(Order.total_minor - Order.refunded_minor)).where(
            Order.user_id == user_id,
            Order.merchant_id == merchant_id,
            Order.paid_at.is_not(None),
            Order.paid_at >= now - dt.timedelta(days=days),
            Order.status != Status.cancelled.value,
        )
    )
    return int(best or 0)


async def _shop_id(session: AsyncSession, *, merchant_id: int) -> int | None:
    return await session.scalar(select(Shop.id).where(Shop.merchant_id == merchant_id))


async def eligibility(
    session: AsyncSession, *, draw: Draw, user_id: int, now: dt.datetime
) -> Refusal | None:
    rules = draw_rules.parse_rules(draw.rules)
    shop_id = await _shop_id(session, merchant_id=draw.merchant_id)
    return draw_rules.refusal(
        rules,
        now=now,
        opens_at=draw.opens_at,
        closes_at=draw.closes_at,
        follows=bool(
            rules.must_follow
            and shop_id is not None
            and await follows.follows(session, user_id=user_id, shop_id=shop_id)
        ),
        best_order_minor=await _best_order(
            session,
            user_id=user_id,
            merchant_id=draw.merchant_id,
            days=rules.order_days,
            now=now,
        )
        if rules.min_order_minor
        else 0,
    )


def refusal_error(why: Refusal) -> DomainError:
    return DomainError(f"draw_{why.value}", _REFUSALS[why], 409 if why is Refusal.closed else 403)


async def current_entry(
    session: AsyncSession, *, draw: Draw, user_id: int, now: dt.datetime | None = None
) -> DrawEntry | None:
    """The person's entry of the current period (today, or the whole draw), if any."""
    key = draw_rules.period(draw_rules.parse_rules(draw.rules), now or utcnow())
    return await session.scalar(
        select(DrawEntry).where(
            DrawEntry.draw_id == draw.id, DrawEntry.user_id == user_id, DrawEntry.period == key
        )
    )


async def _campaign_of(session: AsyncSession, *, draw: Draw, qr_token: str | None) -> int | None:
    """The campaign of the QR code that brought the person, if the code leads to this draw."""
    if not qr_token:
        return None
    row = (
        await session.execute(
            select(QrCode.campaign_id).where(
                QrCode.token == qr_token[:16],
                QrCode.merchant_id == draw.merchant_id,
                QrCode.target_kind == "draw",
                QrCode.target_id == draw.id,
            )
        )
    ).first()
    return row[0] if row else None


async def enter(
    session: AsyncSession,
    *,
    draw_id: int,
    user: User,
    source: str,
    qr_token: str | None = None,
    device: str = "",
) -> DrawEntry:
    """Enter the draw once for the period: eligibility, the entry row (unique per person and
    period, so a second tap gets the first result back, never a second roll), the roll, the
    prize taken by a conditional update (`out_of_stock` when its stock is gone) and awarded,
    the marketing event; all in one transaction, committed here."""
    draw = await get(session, draw_id=draw_id)
    now = utcnow()
    rules = draw_rules.parse_rules(draw.rules)
    key = draw_rules.period(rules, now)
    earlier = await current_entry(session, draw=draw, user_id=user.id, now=now)
    if earlier is not None:
        return earlier
    why = await eligibility(session, draw=draw, user_id=user.id, now=now)
    if why is not None:
        raise refusal_error(why)
    inserted = await session.execute(
        insert_or_skip(session, DrawEntry, index_elements=["draw_id", "user_id", "period"])
        .values(
            draw_id=draw.id,
            user_id=user.id,
            period=key,
            outcome="",
            source=source if source in SOURCES else "page",
            created_at=now,
        )
        .returning(DrawEntry.id)
    )
    entry_id = inserted.scalar_one_or_none()
    if entry_id is None:  # a parallel tap of the same person won the insert: its result
        entry = await current_entry(session, draw=draw, user_id=user.id, now=now)
        await session.commit()
        assert entry is not None
        return entry
    value = draw_rules.roll(draw.seed, draw.id, entry_id)
    prizes = await prizes_of(session, draw_id=draw.id)
    band = draw_rules.band_of(bands_of(prizes), value)
    prize = next((p for p in prizes if band and p.id == band.prize_id), None)
    outcome, code = "lost", None
    if prize is not None:
        outcome, code = await _award(session, draw=draw, prize=prize, user=user, entry_id=entry_id)
    await session.execute(
        update(DrawEntry)
        .where(DrawEntry.id == entry_id)
        .values(
            roll=value,
            prize_id=prize.id if prize else None,
            outcome=outcome,
            coupon_code=code,
        )
    )
    await events.record(
        session,
        kind=events.Kind.draw_entry,
        user_id=user.id,
        merchant_id=draw.merchant_id,
        subject_id=draw.id,
        campaign_id=await _campaign_of(session, draw=draw, qr_token=qr_token),
        device=device,
        at=now,
    )
    await session.commit()
    entry = await session.get(DrawEntry, entry_id, populate_existing=True)
    assert entry is not None
    return entry


async def _award(
    session: AsyncSession, *, draw: Draw, prize: DrawPrize, user: User, entry_id: int
) -> tuple[str, str | None]:
    """Take one of the prize (a conditional update: parallel winners never pass its
    quantity) and give it; (outcome, coupon code)."""
    taken = await session.execute(
        update(DrawPrize)
        .where(DrawPrize.id == prize.id, DrawPrize.awarded < DrawPrize.quantity)
        .values(awarded=DrawPrize.awarded + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return OUT_OF_STOCK, None
    if prize.kind == "points" and prize.points:
        await points.award(
            session,
            user_id=user.id,
            merchant_id=draw.merchant_id,
            delta=prize.points,
            reason=f"draw:{draw.id}",
            key=f"draw-entry:{entry_id}",
        )
    if prize.kind == "coupon" and prize.promotion_id is not None:
        try:
            coupon = await promotions.issue_single_use(session, promotion_id=prize.promotion_id)
        except NotFound:
            # The coupon lost its code or is gone: nothing can be given, and failing the
            # entry would let the person roll again with a new entry id.
            await session.execute(
                update(DrawPrize)
                .where(DrawPrize.id == prize.id)
                .values(awarded=DrawPrize.awarded - 1)
                .execution_options(synchronize_session=False)
            )
            return OUT_OF_STOCK, None
        return "won", coupon.code
    return "won", None


async def my_entry(session: AsyncSession, *, user: User, draw_id: int, entry_id: int) -> DrawEntry:
    entry = await session.get(DrawEntry, entry_id)
    if entry is None or entry.draw_id != draw_id or entry.user_id != user.id:
        raise NotFound("Entry")
    return entry


# --- claims of physical prizes ---------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    name: str
    phone: str  # E.164
    address: str


def claim_of(entry: DrawEntry) -> Claim | None:
    if not entry.address:
        return None
    data = json.loads(entry.address)
    return Claim(data["name"], data["phone"], data["address"])


async def claim(
    session: AsyncSession,
    *,
    user: User,
    draw_id: int,
    entry_id: int,
    name: str,
    phone: str,
    address: str,
) -> DrawEntry:
    """Where a won physical prize goes; it may be corrected until the merchant ships it
    (the console shows the latest)."""
    entry = await my_entry(session, user=user, draw_id=draw_id, entry_id=entry_id)
    prize = await session.get(DrawPrize, entry.prize_id) if entry.prize_id else None
    if entry.outcome != "won" or prize is None or prize.kind != "physical":
        raise Forbidden("Only a won physical prize is claimed with an address.")
    name, address = clean_name(name, 40), clean(address, 200)
    if not name or len(address) < 5:
        raise DomainError("invalid_claim", "Give the recipient's name and a full address.", 422)
    data = {"name": name, "phone": normalize_phone(phone), "address": address}
    entry.address = json.dumps(data, ensure_ascii=False)
    entry.claimed_at = utcnow()
    await session.commit()
    return entry


@dataclass(frozen=True)
class ClaimRow:
    entry_id: int
    prize: str
    name: str
    phone_masked: str
    address: str
    claimed_at: dt.datetime


async def claims(
    session: AsyncSession, *, merchant_id: int, draw_id: int, before_id: int | None, limit: int
) -> list[ClaimRow]:
    """Claims of the draw's physical prizes, newest first; phones masked."""
    draw = await owned(session, merchant_id=merchant_id, draw_id=draw_id)
    query = (
        select(DrawEntry, DrawPrize.name)
        .join(DrawPrize, DrawPrize.id == DrawEntry.prize_id)
        .where(DrawEntry.draw_id == draw.id, DrawEntry.claimed_at.is_not(None))
    )
    if before_id is not None:
        query = query.where(DrawEntry.id < before_id)
    rows = await session.execute(query.order_by(DrawEntry.id.desc()).limit(limit))
    out = []
    for entry, prize_name in rows:
        data = claim_of(entry)
        if data is None or entry.claimed_at is None:
            continue
        out.append(
            ClaimRow(
                entry.id,
                prize_name,
                data.name,
                mask_phone(data.phone),
                data.address,
                entry.claimed_at,
            )
        )
    return out


async def forget(session: AsyncSession, *, user_id: int) -> None:
    """For account deletion: claim addresses go; results stay for the public check."""
    await session.execute(
        update(DrawEntry).where(DrawEntry.user_id == user_id).values(address=None)
    )


# --- the public check ------------------------------------------------------------------------


async def public_entries(
    session: AsyncSession, *, draw_id: int, before_id: int | None, limit: int
) -> list[DrawEntry]:
    """Entries newest first, for the verify page (which shows no personal data)."""
    query = select(DrawEntry).where(DrawEntry.draw_id == draw_id)
    if before_id is not None:
        query = query.where(DrawEntry.id < before_id)
    return list(await session.scalars(query.order_by(DrawEntry.id.desc()).limit(limit)))


@dataclass(frozen=True)
class Check:
    entry_id: int
    recorded_roll: int | None
    recorded_prize_id: int | None
    recorded_outcome: str
    roll: int | None  # recomputed from the revealed seed; None while it is secret
    prize_id: int | None
    matches: bool | None


async def check_entry(session: AsyncSession, *, draw: Draw, entry_id: int) -> Check:
    """Recompute one entry's roll and band from the revealed seed and compare with the
    record."""
    entry = await session.get(DrawEntry, entry_id)
    if entry is None or entry.draw_id != draw.id:
        raise NotFound("Entry")
    seed = public_seed(draw)
    if seed is None:
        return Check(entry.id, entry.roll, entry.prize_id, entry.outcome, None, None, None)
    value = draw_rules.roll(seed, draw.id, entry.id)
    band = draw_rules.band_of(bands_of(await prizes_of(session, draw_id=draw.id)), value)
    prize_id = band.prize_id if band else None
    return Check(
        entry.id,
        entry.roll,
        entry.prize_id,
        entry.outcome,
        value,
        prize_id,
        value == entry.roll and prize_id == entry.prize_id,
    )
