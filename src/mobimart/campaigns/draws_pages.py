"""Lucky draws as pages: the public draw page (entering needs sign-in), the person's result
(coupon code, points, or the claim form of a physical prize), the public verify page that
recomputes any entry, and the merchant's console (list, create, numbers, claims, close)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import draw_rules, draws
from mobimart.campaigns.events import device_class
from mobimart.campaigns.models import Draw, DrawEntry, DrawPrize
from mobimart.catalog import follows
from mobimart.catalog.models import Shop
from mobimart.db import utcnow
from mobimart.engagement import points
from mobimart.errors import DomainError, NotFound
from mobimart.merchants import service as merchants
from mobimart.text import parse_amount
from mobimart.web.deps import OptionalPageUser, PageUser, Session
from mobimart.web.forms import message_of, parse_local, safe_next, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.pagination import page_params, split_page
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Csrf = Annotated[str, Form(max_length=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
Notice = Annotated[str, Query(max_length=20)]
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
PRIZE_ROWS = 5  # blank rows of the create form; a draw rarely has more tiers


def _source(src: str) -> str:
    return src if src in draws.SOURCES else "page"


def _qr(token: str) -> str:
    return token if _TOKEN.match(token) else ""


def _draw_url(draw_id: int, src: str, qr: str) -> str:
    query = {k: v for k, v in (("src", src), ("qr", qr)) if v}
    return f"/draws/{draw_id}" + (f"?{urlencode(query)}" if query else "")


def chance_text(ppm: int) -> str:
    """1,000,000 ppm -> "100%", 2,500 -> "0.25%"."""
    return f"{(Decimal(ppm) / 10_000).normalize():f}%"


def _prize_rows(prizes: list[DrawPrize]) -> list[dict[str, Any]]:
    table = {b.prize_id: b for b in draws.bands_of(prizes)}
    return [
        {
            "prize": p,
            "chance": chance_text(p.chance_ppm),
            "left": max(p.quantity - p.awarded, 0),
            "band": table[p.id],
        }
        for p in prizes
    ]


async def _shop(session: AsyncSession, merchant_id: int) -> Shop | None:
    return await session.scalar(select(Shop).where(Shop.merchant_id == merchant_id))


def _notice(code: str) -> str:
    return {
        "created": _("Draw created. Its seed hash is public; the seed is shown when it closes."),
        "closed": _("Draw closed. Its seed is now public on the verify page."),
        "claimed": _("Thank you. The shop will send your prize to this address."),
    }.get(code, "")


# --- the public draw page and entering ----------------------------------------------------------


async def _draw_page(
    request: Request,
    session: AsyncSession,
    user: User | None,
    draw: Draw,
    *,
    src: str,
    qr: str,
    error: str = "",
    status: int = 200,
) -> Response:
    now = utcnow()
    rules = draw_rules.parse_rules(draw.rules)
    entry = (
        await draws.current_entry(session, draw=draw, user_id=user.id, now=now) if user else None
    )
    here = _draw_url(draw.id, src, qr)
    shop = await _shop(session, draw.merchant_id)
    following = bool(
        user
        and shop
        and rules.must_follow
        and await follows.follows(session, user_id=user.id, shop_id=shop.id)
    )
    return render(
        request,
        "campaigns/draw.html",
        {
            "user": user,
            "tab": "home",
            "draw": draw,
            "shop": shop,
            "following": following,
            "here": here,
            "rules": rules,
            "prizes": _prize_rows(await draws.prizes_of(session, draw_id=draw.id)),
            "entry": entry,
            "state": "upcoming"
            if now < draw.opens_at
            else "closed"
            if now >= draw.closes_at
            else "open",
            "src": src,
            "qr": qr,
            "signin_url": "/signin?next=" + quote(safe_next(here)),
            "error": error,
        },
        status=status,
    )


@router.get("/draws/{draw_id}")
async def draw_page(
    request: Request,
    draw_id: IdPath,
    session: Session,
    user: OptionalPageUser,
    src: Annotated[str, Query(max_length=10)] = "",
    qr: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """Public: the prizes, the rules, the seed hash and the way in. QR codes land here with
    `?src=qr&qr=<token>`, campaign links with `?src=link`."""
    draw = await draws.get(session, draw_id=draw_id)
    return await _draw_page(request, session, user, draw, src=_source(src), qr=_qr(qr))


@router.post("/draws/{draw_id}/enter")
async def enter(
    request: Request,
    draw_id: IdPath,
    session: Session,
    user: OptionalPageUser,
    csrf_token: Csrf,
    src: Annotated[str, Form(max_length=10)] = "",
    qr: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    src, qr = _source(src), _qr(qr)
    if user is None:  # back to the draw page after signing in, not to this POST
        return see_other("/signin?next=" + quote(safe_next(_draw_url(draw_id, src, qr))))
    try:
        entry = await draws.enter(
            session,
            draw_id=draw_id,
            user=user,
            source=src,
            qr_token=qr or None,
            device=device_class(request.headers.get("user-agent", "")),
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        await session.rollback()
        await session.refresh(user)
        draw = await draws.get(session, draw_id=draw_id)
        return await _draw_page(
            request, session, user, draw, src=src, qr=qr, error=message_of(exc), status=exc.status
        )
    return see_other(f"/draws/{draw_id}/entries/{entry.id}")


async def _entry_page(
    request: Request,
    session: AsyncSession,
    user: User,
    entry: DrawEntry,
    *,
    form: dict[str, str] | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    draw = await draws.get(session, draw_id=entry.draw_id)
    prize = await session.get(DrawPrize, entry.prize_id) if entry.prize_id else None
    claim = draws.claim_of(entry)
    return render(
        request,
        "campaigns/draw_entry.html",
        {
            "user": user,
            "tab": "home",
            "draw": draw,
            "entry": entry,
            "prize": prize,
            "balance": await points.balance(session, user_id=user.id, merchant_id=draw.merchant_id)
            if prize and prize.kind == "points"
            else None,
            "form": form
            or (
                {"name": claim.name, "phone": claim.phone, "address": claim.address}
                if claim
                else {}
            ),
            "notice": notice,
            "error": error,
        },
        status=status,
    )


@router.get("/draws/{draw_id}/entries/{entry_id}")
async def entry_page(
    request: Request,
    draw_id: IdPath,
    entry_id: IdPath,
    session: Session,
    user: PageUser,
    notice: Notice = "",
) -> Response:
    """The person's own result: a coupon code to use, points, or where to send a prize."""
    entry = await draws.my_entry(session, user=user, draw_id=draw_id, entry_id=entry_id)
    return await _entry_page(request, session, user, entry, notice=_notice(notice))


@router.post("/draws/{draw_id}/entries/{entry_id}/claim")
async def claim(
    request: Request,
    draw_id: IdPath,
    entry_id: IdPath,
    session: Session,
    user: PageUser,
    csrf_token: Csrf,
    name: Annotated[str, Form(max_length=40)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    address: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    try:
        await draws.claim(
            session,
            user=user,
            draw_id=draw_id,
            entry_id=entry_id,
            name=name,
            phone=phone,
            address=address,
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        await session.rollback()
        await session.refresh(user)
        entry = await draws.my_entry(session, user=user, draw_id=draw_id, entry_id=entry_id)
        return await _entry_page(
            request,
            session,
            user,
            entry,
            form={"name": name, "phone": phone, "address": address},
            error=message_of(exc),
            status=exc.status,
        )
    return see_other(f"/draws/{draw_id}/entries/{entry_id}?notice=claimed")


# --- the public check ------------------------------------------------------------------------


@router.get("/draws/{draw_id}/verify")
async def verify_page(
    request: Request,
    draw_id: IdPath,
    session: Session,
    user: OptionalPageUser,
    cursor: Cursor = None,
    entry: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    """Anyone can check: the seed's hash from the start, the seed once closed, every entry's
    roll and outcome (no personal data), and a form that recomputes one entry."""
    draw = await draws.get(session, draw_id=draw_id)
    prizes = await draws.prizes_of(session, draw_id=draw.id)
    params = page_params(cursor=cursor, limit=50)
    rows = await draws.public_entries(
        session, draw_id=draw.id, before_id=params.before_id, limit=params.fetch
    )
    shown, next_cursor = split_page(rows, params, key=lambda e: e.id)
    check, check_error = None, ""
    if entry:
        try:
            if not entry.isdigit() or not 0 < int(entry) < 2**31:
                raise NotFound("Entry")
            check = await draws.check_entry(session, draw=draw, entry_id=int(entry))
        except NotFound:
            check_error = _("No entry %(id)s in this draw.") % {"id": entry[:12]}
    seed = draws.public_seed(draw)
    return render(
        request,
        "campaigns/draw_verify.html",
        {
            "user": user,
            "tab": "home",
            "draw": draw,
            "seed": seed,
            "seed_ok": seed is not None and draw_rules.seed_hash(seed) == draw.seed_hash,
            "prizes": _prize_rows(prizes),
            "names": {p.id: p.name for p in prizes},
            "entries": shown,
            "next_cursor": next_cursor,
            "check": check,
            "check_error": check_error,
            "typed_entry": entry[:12],
            "example_entry": shown[0].id if shown else 1,
        },
    )


# --- the merchant's console ------------------------------------------------------------------


def _local_input(value: dt.datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _parse_local(text: str, zone: ZoneInfo, problem: str) -> dt.datetime:
    return parse_local(text, zone, error=DomainError("invalid_draw", problem, 422))


def _parse_chance(text: str) -> int:
    """A percentage as typed ("0.5", "100") -> ppm."""
    try:
        percent = Decimal(text.strip().rstrip("%").strip())
    except InvalidOperation:
        raise DomainError(
            "invalid_draw", "Give each prize's chance as a percentage.", 422
        ) from None
    ppm = percent * 10_000
    if ppm != ppm.to_integral_value() or not 1 <= ppm <= draw_rules.ROLLS:
        raise DomainError(
            "invalid_draw", "A chance is 0.0001 % to 100 % (at most four decimals).", 422
        )
    return int(ppm)


def _int_field(text: str, problem: str) -> int:
    if not text.strip().isdigit() or len(text.strip()) > 9:
        raise DomainError("invalid_draw", problem, 422)
    return int(text.strip())


async def _console_list(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    *,
    cursor: str | None = None,
    form: dict[str, Any] | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    params = page_params(cursor=cursor, limit=20)
    rows = await draws.listed(
        session, merchant_id=merchant.id, before_id=params.before_id, limit=params.fetch
    )
    shown, next_cursor = split_page(rows, params, key=lambda d: d.id)
    counts = await draws.entry_counts(session, draw_ids=[d.id for d in shown])
    zone = ZoneInfo(draw_rules.DEFAULT_ZONE)
    now = utcnow()
    return render(
        request,
        "campaigns/draw_console_list.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "draws": [(d, counts[d.id]) for d in shown],
            "now": now,
            "next_cursor": next_cursor,
            "coupons": await draws.coupons(session, merchant_id=merchant.id),
            "rows": range(PRIZE_ROWS),
            "form": form
            or {
                "opens_at": _local_input(now, zone),
                "closes_at": _local_input(now + dt.timedelta(days=7), zone),
                "per_day": "1",
                "order_days": "30",
            },
            "notice": notice,
            "error": error,
        },
        status=status,
    )


@router.get("/console/{merchant_id}/draws")
async def console_draws(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    cursor: Cursor = None,
) -> Response:
    return await _console_list(request, session, user, merchant_id, cursor=cursor)


PrizeField = Annotated[list[str], Form(max_length=PRIZE_ROWS)]


@router.post("/console/{merchant_id}/draws")
async def console_create(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
    name: Annotated[str, Form(max_length=80)] = "",
    opens_at: Annotated[str, Form(max_length=40)] = "",
    closes_at: Annotated[str, Form(max_length=40)] = "",
    per_day: Annotated[str, Form(max_length=1)] = "",
    must_follow: Annotated[str, Form(max_length=1)] = "",
    min_order: Annotated[str, Form(max_length=20)] = "",
    order_days: Annotated[str, Form(max_length=3)] = "30",
    prize_name: PrizeField = [],  # noqa: B006
    prize_kind: PrizeField = [],  # noqa: B006
    prize_chance: PrizeField = [],  # noqa: B006
    prize_quantity: PrizeField = [],  # noqa: B006
    prize_coupon: PrizeField = [],  # noqa: B006
    prize_points: PrizeField = [],  # noqa: B006
) -> Response:
    verify_csrf(request, csrf_token)
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    typed: dict[str, Any] = {
        "name": name,
        "opens_at": opens_at,
        "closes_at": closes_at,
        "per_day": per_day,
        "must_follow": must_follow,
        "min_order": min_order,
        "order_days": order_days,
        "prizes": list(
            zip(
                *(
                    (f + [""] * PRIZE_ROWS)[:PRIZE_ROWS]
                    for f in (
                        prize_name,
                        prize_kind,
                        prize_chance,
                        prize_quantity,
                        prize_coupon,
                        prize_points,
                    )
                ),
                strict=True,
            )
        ),
    }
    try:
        merchants.require_approved(merchant)
        zone = ZoneInfo(draw_rules.DEFAULT_ZONE)
        prizes = []
        for p_name, kind, chance, quantity, coupon, pts in typed["prizes"]:
            if not p_name.strip():
                continue
            prizes.append(
                draws.PrizeSpec(
                    name=p_name,
                    kind=kind,
                    chance_ppm=_parse_chance(chance),
                    quantity=_int_field(
                        quantity, _("Give each prize’s quantity as a whole number.")
                    ),
                    promotion_id=_int_field(coupon, _("Choose the coupon a coupon prize gives."))
                    if kind == "coupon"
                    else None,
                    points=_int_field(pts, _("Give a points prize’s points as a whole number."))
                    if kind == "points"
                    else None,
                )
            )
        rules: dict[str, Any] = {"per_day": 1 if per_day else 0, "must_follow": bool(must_follow)}
        if min_order.strip():
            rules["min_order_minor"] = parse_amount(min_order)
            rules["order_days"] = _int_field(order_days, _("Give the days as a whole number."))
        draw = await draws.create(
            session,
            merchant_id=merchant.id,
            spec=draws.DrawSpec(
                name=name,
                opens_at=_parse_local(opens_at, zone, _("Give the opening date and time.")),
                closes_at=_parse_local(closes_at, zone, _("Give the closing date and time.")),
                prizes=prizes,
                rules=rules,
            ),
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        await session.rollback()
        await session.refresh(user)
        return await _console_list(
            request,
            session,
            user,
            merchant_id,
            form=typed,
            error=message_of(exc),
            status=exc.status if exc.status in (403, 409, 422) else 422,
        )
    return see_other(f"/console/{merchant_id}/draws/{draw.id}?notice=created")


@router.get("/console/{merchant_id}/draws/{draw_id}")
async def console_draw(
    request: Request,
    merchant_id: IdPath,
    draw_id: IdPath,
    user: PageUser,
    session: Session,
    cursor: Cursor = None,
    notice: Notice = "",
) -> Response:
    """Entries, prizes awarded, claims of physical prizes (phones masked), close."""
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    draw = await draws.owned(session, merchant_id=merchant.id, draw_id=draw_id)
    params = page_params(cursor=cursor, limit=20)
    claims = await draws.claims(
        session,
        merchant_id=merchant.id,
        draw_id=draw.id,
        before_id=params.before_id,
        limit=params.fetch,
    )
    shown, next_cursor = split_page(claims, params, key=lambda c: c.entry_id)
    return render(
        request,
        "campaigns/draw_console.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "draw": draw,
            "closed": draws.is_closed(draw),
            "entries": await draws.entry_count(session, draw_id=draw.id),
            "prizes": _prize_rows(await draws.prizes_of(session, draw_id=draw.id)),
            "claims": shown,
            "next_cursor": next_cursor,
            "notice": _notice(notice),
        },
    )


@router.post("/console/{merchant_id}/draws/{draw_id}/close")
async def console_close(
    request: Request,
    merchant_id: IdPath,
    draw_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    await draws.close(session, merchant_id=merchant_id, draw_id=draw_id)
    return see_other(f"/console/{merchant_id}/draws/{draw_id}?notice=closed")
