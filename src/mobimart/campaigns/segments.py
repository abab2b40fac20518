"""Segments: rules (rules.py) compiled to ONE select of user ids, which serves the live
count preview, the full evaluation (INSERT ... SELECT into segment_members), the incremental
update when an event happens (the same select narrowed to one person) and the sweep of members
whose qualifying event has aged out.

Scope: a merchant's segment sees only that merchant's behaviour (its orders, the events
recorded for it, its shop's followers, its brands); the platform's (merchant_id null) sees all.
The universe of a merchant's segment is its contacts (`_contact_of`: a paid order there, a
follow of its shop, or a marketing event recorded for it), not deleted; the platform's is
every account not deleted."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from mobimart.accounts.domain import mask_phone
from mobimart.accounts.models import Consent, User
from mobimart.campaigns import rules as rule_lang
from mobimart.campaigns.models import Campaign, MarketingEvent, Segment, SegmentMember
from mobimart.campaigns.rules import Condition, RuleError, Rules
from mobimart.catalog.models import Brand, BrandFollow, Category, Product, Shop, ShopFollow
from mobimart.checkout.models import Order, OrderLine
from mobimart.db import UTCDateTime, insert_or_skip, utcnow
from mobimart.errors import DomainError, NotFound
from mobimart.text import clean_name

MAX_SEGMENTS = 200  # per merchant (and for the platform): each is re-checked on events
SWEEP_BATCH = 1000
# Segments that people enter by time passing ("not scanned in 14 days") are re-evaluated in
# full by the sweep at most this often.
FULL_REEVALUATION_EVERY = dt.timedelta(hours=1)
EXPORT_BATCH = 1000


# --- SQL helpers -----------------------------------------------------------------------------


class _plus_days(FunctionElement[dt.datetime]):
    """`moment + N days` (plus a second on SQLite, whose datetime() drops microseconds: a
    recheck a little late is harmless, one before the event ages out would find it still
    there and repeat)."""

    type = UTCDateTime()
    name = "plus_days"
    inherit_cache = True


@compiles(_plus_days, "postgresql")
def _plus_days_pg(element: _plus_days, compiler: SQLCompiler, **kw: Any) -> str:
    moment, days = list(element.clauses)
    start, count = compiler.process(moment, **kw), compiler.process(days, **kw)
    return f"({start} + make_interval(days => {count}))"


@compiles(_plus_days, "sqlite")
def _plus_days_sqlite(element: _plus_days, compiler: SQLCompiler, **kw: Any) -> str:
    moment, days = list(element.clauses)
    return (
        f"datetime({compiler.process(moment, **kw)}, "
        f"'+' || {compiler.process(days, **kw)} || ' days', '+1 seconds')"
    )


@dataclass(frozen=True)
class _Ctx:
    """What every condition's SQL needs: the user id column it correlates to, the merchant
    scope, the moment windows count back from, and an optional narrowing to some people."""

    uid: ColumnElement[int] | InstrumentedAttribute[int]
    merchant_id: int | None
    now: dt.datetime
    user_ids: Sequence[int] | None = None

    def since(self, condition: Condition) -> dt.datetime:
        return self.now - dt.timedelta(days=condition.days or 0)


def _event_filters(c: Condition, ctx: _Ctx, e: Any, kinds: Sequence[str]) -> list[Any]:
    filters: list[Any] = [e.user_id == ctx.uid, e.kind.in_(kinds)]
    if c.days is not None:
        filters.append(e.at >= ctx.since(c))
    if ctx.merchant_id is not None:
        if c.kind == "clicked_campaign":  # links belong to the merchant's campaigns
            filters.append(
                e.campaign_id.in_(
                    select(Campaign.id).where(Campaign.merchant_id == ctx.merchant_id)
                )
            )
        else:
            filters.append(e.merchant_id == ctx.merchant_id)
    subject = {
        "viewed_product": "product_id",
        "scanned_qr": "qr_code_id",
        "joined_wifi": "portal_id",
        "in_geofence": "geofence_id",
    }.get(c.kind)
    if subject and c.int_value(subject) is not None:
        filters.append(e.subject_id == c.int_value(subject))
    if c.kind == "clicked_campaign" and c.int_value("campaign_id") is not None:
        filters.append(e.campaign_id == c.int_value("campaign_id"))
    return filters


_EVENT_KINDS = {
    "viewed_product": ("product_view",),
    "scanned_qr": ("qr_scan",),
    "joined_wifi": ("wifi_signup",),
    "in_geofence": ("geofence_enter",),
    "clicked_campaign": ("link_click",),
}


def _order_filters(c: Condition, ctx: _Ctx) -> list[Any]:
    filters: list[Any] = [Order.user_id == ctx.uid, Order.paid_at.is_not(None)]
    if c.days is not None:
        filters.append(Order.paid_at >= ctx.since(c))
    if ctx.merchant_id is not None:
        filters.append(Order.merchant_id == ctx.merchant_id)
    if c.kind == "bought_in_category":
        category = c.int_value("category_id")
        children = select(Category.id).where(Category.parent_id == category)
        lines = (
            select(OrderLine.order_id)
            .join(Product, Product.id == OrderLine.product_id)
            .where(or_(Product.category_id == category, Product.category_id.in_(children)))
        )
        filters.append(Order.id.in_(lines))
    return filters


def _newest_is_grant(c: Any, channel: str, now: dt.datetime) -> list[Any]:
    """Filters on a consents row `c`: a grant for `channel` with no newer row as of `now`
    (ids grow with time, so a larger id is newer). An anti-join on the (user_id, channel, id)
    index; PostgreSQL hashes it for a million people and estimates its size well, where a
    GROUP BY ... HAVING estimate is off by 200 times and misleads the rest of the plan."""
    newer = aliased(Consent)
    return [
        c.channel == channel,
        c.granted.is_(True),
        c.recorded_at <= now,
        ~exists().where(
            newer.user_id == c.user_id,
            newer.channel == channel,
            newer.id > c.id,
            newer.recorded_at <= now,
        ),
    ]


def consent_grants(
    channel: str, *, now: dt.datetime, user_ids: Sequence[int] | None = None
) -> Select[int]:
    """People whose newest consent row for `channel` as of `now` is a grant."""
    c = aliased(Consent)
    q = select(c.user_id).where(*_newest_is_grant(c, channel, now))
    if user_ids is not None:
        q = q.where(c.user_id.in_(user_ids))
    return q


def _not_consented(ctx: _Ctx, channel: str) -> ColumnElement[bool]:
    """NOT EXISTS, not NOT IN: over a million ids NOT IN would not fit PostgreSQL's hash and
    go quadratic."""
    c = aliased(Consent)
    return ~exists().where(c.user_id == ctx.uid, *_newest_is_grant(c, channel, ctx.now))


def _first_channel(c: Condition, ctx: _Ctx) -> ColumnElement[bool]:
    channel = c.text_value("channel")
    kinds = tuple(rule_lang.FIRST_CHANNEL_OF_KIND)
    e, earlier = aliased(MarketingEvent), aliased(MarketingEvent)

    def scoped(ev: Any) -> list[Any]:
        out: list[Any] = [ev.kind.in_(kinds)]
        if ctx.merchant_id is not None:
            out.append(ev.merchant_id == ctx.merchant_id)
        return out

    if channel == "direct":
        return ~exists().where(e.user_id == ctx.uid, *scoped(e))
    mine = [k for k, ch in rule_lang.FIRST_CHANNEL_OF_KIND.items() if ch == channel]
    return exists().where(
        e.user_id == ctx.uid,
        *scoped(e),
        e.kind.in_(mine),
        ~exists().where(
            earlier.user_id == e.user_id,
            *scoped(earlier),
            or_(earlier.at < e.at, and_(earlier.at == e.at, earlier.id < e.id)),
        ),
    )


def _brand_in_scope(ctx: _Ctx, brand_id: int | None) -> ColumnElement[bool]:
    """A merchant may pick the followers of a brand it manages or sells, no other."""
    if ctx.merchant_id is None:
        return true()
    return or_(
        exists().where(Brand.id == brand_id, Brand.merchant_id == ctx.merchant_id),
        exists().where(Product.brand_id == brand_id, Product.merchant_id == ctx.merchant_id),
    )


def _positive(c: Condition, ctx: _Ctx) -> ColumnElement[bool]:
    """The condition as written, before `not`."""
    kind = c.kind
    if kind in _EVENT_KINDS:
        e = aliased(MarketingEvent)
        return exists().where(*_event_filters(c, ctx, e, _EVENT_KINDS[kind]))
    if kind in ("bought_in_category", "bought_from_shop"):
        return exists().where(*_order_filters(c, ctx))
    if kind == "spent_at_least":
        spenders = (
            select(Order.user_id)
            .where(*_order_filters(c, ctx)[1:])
            .group_by(Order.user_id)
            .having(
                func.sum(Order.total_minor - Order.refunded_minor) >= c.int_value("amount_minor")
            )
        )
        if ctx.user_ids is not None:
            spenders = spenders.where(Order.user_id.in_(ctx.user_ids))
        return ctx.uid.in_(spenders)
    if kind == "has_consent":
        return ctx.uid.in_(
            consent_grants(c.text_value("channel"), now=ctx.now, user_ids=ctx.user_ids)
        )
    if kind == "first_channel":
        return _first_channel(c, ctx)
    if kind == "follows_brand":
        brand_id = c.int_value("brand_id")
        return and_(
            _brand_in_scope(ctx, brand_id),
            exists().where(BrandFollow.user_id == ctx.uid, BrandFollow.brand_id == brand_id),
        )
    if kind == "follows_shop":
        shop = select(Shop.id)
        if ctx.merchant_id is not None:
            shop = shop.where(Shop.merchant_id == ctx.merchant_id)
        if c.int_value("shop_id") is not None:
            shop = shop.where(Shop.id == c.int_value("shop_id"))
        return exists().where(ShopFollow.user_id == ctx.uid, ShopFollow.shop_id.in_(shop))
    raise AssertionError(kind)  # rules.parse admits no other kind


def _condition(c: Condition, ctx: _Ctx) -> ColumnElement[bool]:
    if not c.negate:
        return _positive(c, ctx)
    if c.kind == "has_consent":
        return _not_consented(ctx, c.text_value("channel"))
    if c.kind == "spent_at_least":  # a correlated sum: NOT IN would go quadratic
        spent = select(func.sum(Order.total_minor - Order.refunded_minor)).where(
            *_order_filters(c, ctx)
        )
        return func.coalesce(spent.scalar_subquery(), 0) < c.int_value("amount_minor")
    return ~_positive(c, ctx)


def _contact_of(uid: Any, merchant_id: int) -> ColumnElement[bool]:
    """The person is the merchant's contact: a paid order there, a follow of its shop, or a
    marketing event recorded for it (a scan, a click, a view, a portal sign-up...). Consent is
    stored per channel, not per merchant: without this, "has consent" or any `not` would pick
    every consumer on the platform for every shop."""
    e = aliased(MarketingEvent)
    return or_(
        exists().where(
            Order.user_id == uid, Order.merchant_id == merchant_id, Order.paid_at.is_not(None)
        ),
        exists().where(
            ShopFollow.user_id == uid,
            ShopFollow.shop_id.in_(select(Shop.id).where(Shop.merchant_id == merchant_id)),
        ),
        exists().where(e.user_id == uid, e.merchant_id == merchant_id),
    )


def compile_rules(
    parsed: Rules,
    *,
    merchant_id: int | None,
    now: dt.datetime | None = None,
    user_ids: Sequence[int] | None = None,
) -> Select[int]:
    """ONE select of the ids of the people the rules pick (optionally among `user_ids`):
    among the merchant's contacts for a merchant's segment, among everyone for the
    platform's. Every use (preview, evaluation, on_event, sweep, so the members list and the
    export) goes through here."""
    ctx = _Ctx(User.id, merchant_id, now or utcnow(), user_ids)
    conditions = [_condition(c, ctx) for c in parsed.conditions]
    combined = and_(*conditions) if parsed.match == "all" else or_(*conditions)
    q = select(User.id).where(User.deleted_at.is_(None), combined)
    if merchant_id is not None:
        q = q.where(_contact_of(User.id, merchant_id))
    if user_ids is not None:
        q = q.where(User.id.in_(user_ids))
    return q


def _earliest(c: Condition, ctx: _Ctx) -> Any:
    """When the first event that makes a windowed condition hold ages out (null if none)."""
    assert c.days is not None
    if c.kind in _EVENT_KINDS:
        e = aliased(MarketingEvent)
        first: Select[Any] = select(func.min(e.at)).where(
            *_event_filters(c, ctx, e, _EVENT_KINDS[c.kind])
        )
    else:
        first = select(func.min(Order.paid_at)).where(*_order_filters(c, ctx))
    return _plus_days(first.scalar_subquery(), literal(c.days, Integer))


async def _refresh_recheck(
    session: AsyncSession,
    *,
    segment: Segment,
    parsed: Rules,
    now: dt.datetime,
    user_ids: Sequence[int] | None = None,
) -> None:
    """recheck_at of the segment's members (or some of them): the earliest moment a
    qualifying event of a windowed condition ages out."""
    positive = [c for c in parsed.windowed if not c.negate]
    where = [SegmentMember.segment_id == segment.id]
    if user_ids is not None:
        where.append(SegmentMember.user_id.in_(user_ids))
    current = SegmentMember.recheck_at
    await session.execute(
        update(SegmentMember).where(*where).values(recheck_at=None),
        execution_options={"synchronize_session": False},
    )
    ctx = _Ctx(SegmentMember.user_id, segment.merchant_id, now)
    for c in positive:  # one statement a condition: the pairwise minimum stays small
        moment = _earliest(c, ctx)
        await session.execute(
            update(SegmentMember)
            .where(*where)
            .values(
                recheck_at=case(
                    (current.is_(None), moment), (moment < current, moment), else_=current
                )
            ),
            execution_options={"synchronize_session": False},
        )


# --- the service -------------------------------------------------------------------------------


def parse_rules(match: Any, conditions: Any) -> Rules:
    """rules.parse with its error as a 422."""
    try:
        return rule_lang.parse(match, conditions)
    except RuleError as exc:
        raise DomainError("invalid_rules", str(exc), 422) from None


def _stored(segment: Segment) -> Rules:
    return rule_lang.parse(segment.match, segment.rules)


async def get(session: AsyncSession, *, segment_id: int, merchant_id: int | None) -> Segment:
    """The segment of this merchant (None: the platform's); anyone else's is not found."""
    row = await session.get(Segment, segment_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound("Segment")
    return row


async def listed(
    session: AsyncSession, *, merchant_id: int | None, before: int | None, limit: int
) -> list[Segment]:
    owner = (
        Segment.merchant_id.is_(None) if merchant_id is None else Segment.merchant_id == merchant_id
    )
    q = select(Segment).where(owner).order_by(Segment.id.desc()).limit(limit)
    if before is not None:
        q = q.where(Segment.id < before)
    return list(await session.scalars(q))


def _name(name: str) -> str:
    cleaned = clean_name(name, 80)
    if not cleaned:
        raise DomainError("invalid_name", "Give the segment a name.", 422)
    return cleaned


async def create(
    session: AsyncSession, *, merchant_id: int | None, name: str, match: str, conditions: Any
) -> Segment:
    """Save and evaluate a segment (the caller's transaction is committed)."""
    parsed = parse_rules(match, conditions)
    owner = (
        Segment.merchant_id.is_(None) if merchant_id is None else Segment.merchant_id == merchant_id
    )
    existing = await session.scalar(select(func.count()).select_from(Segment).where(owner))
    if (existing or 0) >= MAX_SEGMENTS:
        raise DomainError(
            "too_many_segments", f"At most {MAX_SEGMENTS} segments: delete some first.", 409
        )
    segment = Segment(
        merchant_id=merchant_id, name=_name(name), match=parsed.match, rules=parsed.to_list()
    )
    session.add(segment)
    await session.flush()
    await evaluate(session, segment_id=segment.id)
    return segment


async def update_segment(
    session: AsyncSession,
    *,
    segment_id: int,
    merchant_id: int | None,
    name: str,
    match: str,
    conditions: Any,
) -> Segment:
    segment = await get(session, segment_id=segment_id, merchant_id=merchant_id)
    parsed = parse_rules(match, conditions)
    segment.name = _name(name)
    segment.match = parsed.match
    segment.rules = parsed.to_list()
    segment.updated_at = utcnow()
    await session.flush()
    await evaluate(session, segment_id=segment.id)
    return segment


async def delete_segment(
    session: AsyncSession, *, segment_id: int, merchant_id: int | None
) -> None:
    segment = await get(session, segment_id=segment_id, merchant_id=merchant_id)
    await session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    await session.delete(segment)
    await session.commit()


async def preview(
    session: AsyncSession, *, merchant_id: int | None, match: str, conditions: Any
) -> int:
    """How many people the rules pick now, without saving anything."""
    parsed = parse_rules(match, conditions)
    picked = compile_rules(parsed, merchant_id=merchant_id).subquery()
    return int(await session.scalar(select(func.count()).select_from(picked)) or 0)


async def evaluate(session: AsyncSession, *, segment_id: int) -> int:
    """Full evaluation: members who no longer match leave, new ones join (INSERT ... SELECT,
    existing members keep their added_at); member_count and evaluated_at are set. Commits;
    returns the number of members."""
    # The segment row is locked for the whole evaluation, and on_event locks it before it
    # writes (`_recheck_people`): a person joining through an event while this runs is then
    # either in the count below or added (+1) after it, never counted and then overwritten.
    segment = await session.scalar(
        select(Segment)
        .where(Segment.id == segment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if segment is None:
        raise NotFound("Segment")
    parsed = _stored(segment)
    now = utcnow()
    picked = compile_rules(parsed, merchant_id=segment.merchant_id, now=now)
    still = picked.where(User.id == SegmentMember.user_id)
    await session.execute(
        delete(SegmentMember).where(SegmentMember.segment_id == segment.id, ~exists(still)),
        execution_options={"synchronize_session": False},
    )
    # Only newcomers: existing members keep their row (and added_at) without a conflict
    # probe each; ON CONFLICT still covers an event that adds someone meanwhile.
    already = select(SegmentMember.user_id).where(
        SegmentMember.segment_id == segment.id, SegmentMember.user_id == User.id
    )
    fill = picked.where(~exists(already)).with_only_columns(
        User.id, literal(segment.id), literal(now, UTCDateTime())
    )
    await session.execute(
        insert_or_skip(session, SegmentMember).from_select(
            ["user_id", "segment_id", "added_at"], fill
        )
    )
    if parsed.windowed:
        await _refresh_recheck(session, segment=segment, parsed=parsed, now=now)
    counted = (
        select(func.count())
        .select_from(SegmentMember)
        .where(SegmentMember.segment_id == segment.id)
        .scalar_subquery()
    )
    count = await session.scalar(
        update(Segment)
        .where(Segment.id == segment.id)
        .values(member_count=counted, evaluated_at=now)
        .returning(Segment.member_count),
        execution_options={"synchronize_session": False},
    )
    await session.commit()
    await session.refresh(segment)
    return int(count or 0)


async def _recheck_people(
    session: AsyncSession,
    *,
    segment: Segment,
    parsed: Rules,
    user_ids: Sequence[int],
    now: dt.datetime,
) -> None:
    """Bring the membership of these people up to date: join, leave, and move the count by
    an atomic increment (two events at once must not lose one). The segment row is locked
    before the first write, as `evaluate` does first: one lock order, no deadlock, and no
    increment lost under evaluate's count."""
    matching = set(
        await session.scalars(
            compile_rules(parsed, merchant_id=segment.merchant_id, now=now, user_ids=user_ids)
        )
    )
    present = set(
        await session.scalars(
            select(SegmentMember.user_id).where(
                SegmentMember.segment_id == segment.id, SegmentMember.user_id.in_(user_ids)
            )
        )
    )
    joining = sorted(matching - present)
    leaving = sorted(present - matching)
    if joining or leaving:
        await session.execute(select(Segment.id).where(Segment.id == segment.id).with_for_update())
    joined = left = 0
    for user_id in joining:
        result = await session.execute(
            insert_or_skip(session, SegmentMember).values(
                segment_id=segment.id, user_id=user_id, added_at=now
            )
        )
        joined += result.rowcount  # type: ignore[attr-defined]
    if leaving:
        result = await session.execute(
            delete(SegmentMember).where(
                SegmentMember.segment_id == segment.id, SegmentMember.user_id.in_(leaving)
            ),
            execution_options={"synchronize_session": False},
        )
        left = result.rowcount  # type: ignore[attr-defined]
    if joined or left:
        await session.execute(
            update(Segment)
            .where(Segment.id == segment.id)
            .values(member_count=Segment.member_count + joined - left),
            execution_options={"synchronize_session": False},
        )
    if matching and parsed.windowed:
        await _refresh_recheck(
            session, segment=segment, parsed=parsed, now=now, user_ids=sorted(matching)
        )


# Changes that are not a merchant's events: a consent or a follow (of a brand a merchant may
# sell without owning it) can change any merchant's segments.
_UNSCOPED = frozenset({rule_lang.CONSENT, rule_lang.FOLLOW})


async def _segments_reading(
    session: AsyncSession,
    kind: str | None,
    *,
    merchant_id: int | None = None,
    whole_of: int | None = None,
) -> list[tuple[Segment, Rules]]:
    """The segments `kind` can change (all when None). A marketing event's kind changes only
    the segments of the merchant it was recorded for and the platform's; `whole_of` adds
    every segment of that merchant (the person entered or left its contacts)."""
    q = select(Segment).order_by(Segment.id)
    if kind is not None:
        # Narrowed in SQL by the names of the rule kinds that read it (a superset: the parsed
        # rules decide), so an event does not load every merchant's segments.
        readers = [k for k, spec in rule_lang.SPECS.items() if kind in spec.reads]
        text = cast(Segment.rules, String)
        reading: ColumnElement[bool] = or_(false(), *(text.like(f'%"{k}"%') for k in readers))
        if kind not in _UNSCOPED:
            owners: list[ColumnElement[bool]] = [Segment.merchant_id.is_(None)]
            if merchant_id is not None:
                owners.append(Segment.merchant_id == merchant_id)
            reading = and_(reading, or_(*owners))
        if whole_of is not None:
            reading = or_(reading, Segment.merchant_id == whole_of)
        q = q.where(reading)
    out = []
    for segment in await session.scalars(q):
        try:
            parsed = _stored(segment)
        except RuleError:
            continue  # saved before a rule changed meaning: evaluate() reports it
        if kind is None or kind in parsed.reads or segment.merchant_id == whole_of:
            out.append((segment, parsed))
    return out


async def _few_touches(session: AsyncSession, *, user_id: int, merchant_id: int) -> bool:
    """At most one event, one paid order and one shop follow at the merchant: the person may
    have just become its contact (or stopped being one), so all its segments may change.
    Three index probes of at most two rows each; true now and then for a regular is only a
    wasted re-check."""

    def upto_two(q: Select[Any]) -> Any:
        return select(func.count()).select_from(q.limit(2).subquery()).scalar_subquery()

    e = aliased(MarketingEvent)
    events = select(e.id).where(e.user_id == user_id, e.merchant_id == merchant_id)
    orders = select(Order.id).where(
        Order.user_id == user_id, Order.merchant_id == merchant_id, Order.paid_at.is_not(None)
    )
    follows = select(ShopFollow.shop_id).where(
        ShopFollow.user_id == user_id,
        ShopFollow.shop_id.in_(select(Shop.id).where(Shop.merchant_id == merchant_id)),
    )
    row = (
        await session.execute(select(upto_two(events), upto_two(orders), upto_two(follows)))
    ).one()
    return all(n <= 1 for n in row)


async def on_event(
    session: AsyncSession, *, user_id: int, kind: str | None, merchant_id: int | None = None
) -> None:
    """Re-evaluate the person's membership of the segments whose rules read `kind` (all of
    them when None). `merchant_id`: the merchant the event was recorded for (or whose shop
    was followed); a marketing event then re-checks only that merchant's segments and the
    platform's, and all of that merchant's when it may be the person's first touch there (a
    merchant's segment covers only its contacts). In the caller's transaction; the caller
    commits."""
    now = utcnow()
    whole_of = None
    if (
        kind is not None
        and merchant_id is not None
        and await _few_touches(session, user_id=user_id, merchant_id=merchant_id)
    ):
        whole_of = merchant_id
    chosen = await _segments_reading(session, kind, merchant_id=merchant_id, whole_of=whole_of)
    for segment, parsed in chosen:
        await _recheck_people(session, segment=segment, parsed=parsed, user_ids=[user_id], now=now)


async def sweep(session: AsyncSession, *, now: dt.datetime | None = None) -> int:
    """The periodic job: re-check members whose qualifying event has aged out (recheck_at
    passed), in batches; and re-evaluate in full the segments people enter by time passing.
    Commits per batch; returns how many members were re-checked."""
    now = now or utcnow()
    checked = 0
    for segment, parsed in await _segments_reading(session, None):
        while True:
            due = list(
                await session.scalars(
                    select(SegmentMember.user_id)
                    .where(
                        SegmentMember.segment_id == segment.id,
                        SegmentMember.recheck_at <= now,
                    )
                    .order_by(SegmentMember.user_id)
                    .limit(SWEEP_BATCH)
                )
            )
            if not due:
                break
            await _recheck_people(session, segment=segment, parsed=parsed, user_ids=due, now=now)
            # Still-qualifying members get a later recheck_at; a due one left unchanged (its
            # event ages out within the second) is cleared so the loop ends.
            await session.execute(
                update(SegmentMember)
                .where(
                    SegmentMember.segment_id == segment.id,
                    SegmentMember.user_id.in_(due),
                    SegmentMember.recheck_at <= now,
                )
                .values(recheck_at=now + dt.timedelta(minutes=1)),
                execution_options={"synchronize_session": False},
            )
            await session.commit()
            checked += len(due)
        stale = (
            segment.evaluated_at is None or segment.evaluated_at <= now - FULL_REEVALUATION_EVERY
        )
        if parsed.entry_by_ageing and stale:
            await evaluate(session, segment_id=segment.id)
    await session.commit()
    return checked


async def members(
    session: AsyncSession, *, segment_id: int, after_user_id: int | None, limit: int
) -> list[int]:
    """Member ids in user id order, `limit` after `after_user_id` (keyset)."""
    q = (
        select(SegmentMember.user_id)
        .where(SegmentMember.segment_id == segment_id)
        .order_by(SegmentMember.user_id)
        .limit(limit)
    )
    if after_user_id is not None:
        q = q.where(SegmentMember.user_id > after_user_id)
    return list(await session.scalars(q))


@dataclass(frozen=True)
class MemberView:
    user_id: int
    phone_masked: str
    display_name: str
    added_at: dt.datetime


async def member_views(
    session: AsyncSession, *, segment_id: int, after_user_id: int | None, limit: int
) -> list[MemberView]:
    """Members with a masked phone (never the whole number: merchants read these)."""
    q = (
        select(SegmentMember.user_id, SegmentMember.added_at, User.phone, User.display_name)
        .join(User, User.id == SegmentMember.user_id)
        .where(SegmentMember.segment_id == segment_id)
        .order_by(SegmentMember.user_id)
        .limit(limit)
    )
    if after_user_id is not None:
        q = q.where(SegmentMember.user_id > after_user_id)
    return [
        MemberView(
            row.user_id,
            mask_phone(row.phone) if row.phone else "",
            row.display_name,
            row.added_at,
        )
        for row in await session.execute(q)
    ]


# A text cell starting with one of these is a formula (or the start of one) to a spreadsheet
# (OWASP's CSV injection list): a masked foreign number starts with "+".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: a leading quote before a formula start."""
    return "'" + text if text.startswith(_FORMULA_START) else text


async def export_csv(session: AsyncSession, *, segment_id: int) -> AsyncIterator[str]:
    """The members as CSV, streamed in batches (a large segment never sits in memory)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["user_id", "phone", "display_name", "added_at"])
    after: int | None = None
    while True:
        rows = await member_views(
            session, segment_id=segment_id, after_user_id=after, limit=EXPORT_BATCH
        )
        for row in rows:
            writer.writerow(
                [
                    row.user_id,
                    _cell(row.phone_masked),
                    _cell(row.display_name),
                    row.added_at.isoformat(),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < EXPORT_BATCH:
            return
        after = rows[-1].user_id
