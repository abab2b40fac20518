"""Lucky draws over JSON: the merchant's draws (create, read, rename, close, delete, claims),
entering (Idempotency-Key accepted), the public draw and its public check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns import draws
from mobimart.campaigns.draw_schemas import (
    ClaimIn,
    ClaimOut,
    DrawIn,
    DrawOut,
    DrawUpdate,
    EntryIn,
    EntryOut,
    MerchantDrawOut,
    PrizeOut,
    PublicEntryOut,
    VerifyOut,
)
from mobimart.campaigns.events import device_class
from mobimart.campaigns.models import Draw, DrawEntry, DrawPrize
from mobimart.infra import idempotency
from mobimart.infra.idempotency import IdempotencyKey
from mobimart.merchants import service as merchants
from mobimart.settings import get_settings
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params, split_page
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["draws"])
Paging = Annotated[PageParams, Depends(page_params)]

FORMULA = (
    "seed_hash = sha256(seed); roll = int(hmac_sha256(key=seed, msg=f'{draw_id}:{entry_id}')"
    ".hexdigest(), 16) % 1000000; seed is the 64-character hex text; prizes in position "
    "order take consecutive roll ranges [band_start, band_end)"
)


def prizes_out(prizes: Sequence[DrawPrize]) -> list[PrizeOut]:
    table = {b.prize_id: b for b in draws.bands_of(prizes)}
    return [
        PrizeOut(
            id=p.id,
            name=p.name,
            kind=p.kind,
            chance_ppm=p.chance_ppm,
            quantity=p.quantity,
            awarded=p.awarded,
            points=p.points,
            band_start=table[p.id].start,
            band_end=table[p.id].end,
        )
        for p in prizes
    ]


async def draw_out(session: AsyncSession, draw: Draw) -> DrawOut:
    prizes = await draws.prizes_of(session, draw_id=draw.id)
    return DrawOut(
        id=draw.id,
        merchant_id=draw.merchant_id,
        name=draw.name,
        rules=draw.rules,
        opens_at=draw.opens_at,
        closes_at=draw.closes_at,
        closed=draws.is_closed(draw),
        seed_hash=draw.seed_hash,
        seed=draws.public_seed(draw),
        prizes=prizes_out(prizes),
        url=f"{get_settings().base_url.rstrip('/')}/draws/{draw.id}",
    )


async def _merchant_out(session: AsyncSession, draw: Draw) -> MerchantDrawOut:
    out = await draw_out(session, draw)
    prizes = await draws.prizes_of(session, draw_id=draw.id)
    return MerchantDrawOut(
        **out.model_dump(),
        entries=await draws.entry_count(session, draw_id=draw.id),
        prize_promotions={p.id: p.promotion_id for p in prizes},
    )


async def entry_out(session: AsyncSession, entry: DrawEntry) -> EntryOut:
    prize = await session.get(DrawPrize, entry.prize_id) if entry.prize_id else None
    return EntryOut(
        id=entry.id,
        draw_id=entry.draw_id,
        period=entry.period,
        roll=entry.roll,
        outcome=entry.outcome,
        prize_id=entry.prize_id,
        prize_name=prize.name if prize else None,
        prize_kind=prize.kind if prize else None,
        coupon_code=entry.coupon_code,
        points=prize.points if prize and prize.kind == "points" else None,
        claimed=entry.claimed_at is not None,
        created_at=entry.created_at,
    )


def _spec(body: DrawIn) -> draws.DrawSpec:
    return draws.DrawSpec(
        name=body.name,
        opens_at=body.opens_at,
        closes_at=body.closes_at,
        rules=body.rules.model_dump(),
        prizes=[draws.PrizeSpec(**p.model_dump()) for p in body.prizes],
    )


# --- the merchant's ---------------------------------------------------------------------------


@router.post("/merchants/{merchant_id}/draws", status_code=201)
async def create_draw(
    merchant_id: IdPath, body: DrawIn, user: CurrentUser, session: Session
) -> MerchantDrawOut:
    """A draw with its prizes. Its seed's SHA-256 is public at once; the seed itself once it
    closes. Chances are in millionths and add up to at most 1,000,000."""
    merchant, _ = await merchants.membership(session, merchant_id=merchant_id, user=user)
    merchants.require_approved(merchant)
    draw = await draws.create(session, merchant_id=merchant_id, spec=_spec(body))
    return await _merchant_out(session, draw)


@router.get("/merchants/{merchant_id}/draws")
async def list_draws(
    merchant_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[MerchantDrawOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await draws.listed(
        session, merchant_id=merchant_id, before_id=page.before_id, limit=page.fetch
    )
    items, next_cursor = split_page(rows, page, key=lambda d: d.id)
    return Page(items=[await _merchant_out(session, d) for d in items], next_cursor=next_cursor)


@router.get("/merchants/{merchant_id}/draws/{draw_id}")
async def get_merchant_draw(
    merchant_id: IdPath, draw_id: IdPath, user: CurrentUser, session: Session
) -> MerchantDrawOut:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    draw = await draws.owned(session, merchant_id=merchant_id, draw_id=draw_id)
    return await _merchant_out(session, draw)


@router.patch("/merchants/{merchant_id}/draws/{draw_id}")
async def rename_draw(
    merchant_id: IdPath, draw_id: IdPath, body: DrawUpdate, user: CurrentUser, session: Session
) -> MerchantDrawOut:
    """Only the name changes: prizes, chances and times are what entrants were promised."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    draw = await draws.rename(session, merchant_id=merchant_id, draw_id=draw_id, name=body.name)
    return await _merchant_out(session, draw)


@router.post("/merchants/{merchant_id}/draws/{draw_id}/close")
async def close_draw(
    merchant_id: IdPath, draw_id: IdPath, user: CurrentUser, session: Session
) -> MerchantDrawOut:
    """Close now: entries stop and the seed is published. A closed draw never reopens."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    draw = await draws.close(session, merchant_id=merchant_id, draw_id=draw_id)
    return await _merchant_out(session, draw)


@router.delete("/merchants/{merchant_id}/draws/{draw_id}", status_code=204)
async def delete_draw(
    merchant_id: IdPath, draw_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    """The owner deletes a draw nobody has entered (409 `draw_has_entries` otherwise)."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await draws.remove(session, merchant_id=merchant_id, draw_id=draw_id)
    return Response(status_code=204)


@router.get("/merchants/{merchant_id}/draws/{draw_id}/claims")
async def list_claims(
    merchant_id: IdPath, draw_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[ClaimOut]:
    """Where to send the physical prizes; phone numbers masked."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await draws.claims(
        session,
        merchant_id=merchant_id,
        draw_id=draw_id,
        before_id=page.before_id,
        limit=page.fetch,
    )
    return make_page(
        rows, page, lambda r: ClaimOut.model_validate(r, from_attributes=True), lambda r: r.entry_id
    )


# --- everyone's ------------------------------------------------------------------------------


@router.get("/draws/{draw_id}")
async def get_draw(draw_id: IdPath, session: Session) -> DrawOut:
    return await draw_out(session, await draws.get(session, draw_id=draw_id))


@router.post("/draws/{draw_id}/entries", status_code=201)
async def enter_draw(
    draw_id: IdPath,
    body: EntryIn,
    request: Request,
    user: CurrentUser,
    session: Session,
    key: IdempotencyKey = None,
) -> object:
    """Enter (once a day or once in all, as the draw's rules say): a second entry in the same
    period answers with the first one's result. 403 `draw_must_follow`, `draw_min_order`,
    `draw_not_open`, 409 `draw_closed` say why not."""

    async def work() -> EntryOut:
        entry = await draws.enter(
            session,
            draw_id=draw_id,
            user=user,
            source=body.source,
            qr_token=body.qr,
            device=device_class(request.headers.get("user-agent", "")),
        )
        return await entry_out(session, entry)

    return await idempotency.run(
        session,
        user_id=user.id,
        scope=f"POST /draws/{draw_id}/entries",
        key=key,
        request=body,
        work=work,
        status=201,
    )


@router.get("/draws/{draw_id}/entries/{entry_id}")
async def get_entry(
    draw_id: IdPath, entry_id: IdPath, user: CurrentUser, session: Session
) -> EntryOut:
    """One of the caller's own entries."""
    entry = await draws.my_entry(session, user=user, draw_id=draw_id, entry_id=entry_id)
    return await entry_out(session, entry)


@router.put("/draws/{draw_id}/entries/{entry_id}/claim")
async def claim_prize(
    draw_id: IdPath, entry_id: IdPath, body: ClaimIn, user: CurrentUser, session: Session
) -> EntryOut:
    """Where a won physical prize goes (again: corrected)."""
    entry = await draws.claim(
        session, user=user, draw_id=draw_id, entry_id=entry_id, **body.model_dump()
    )
    return await entry_out(session, entry)


@router.get("/draws/{draw_id}/verify")
async def verify_draw(draw_id: IdPath, session: Session, page: Paging) -> VerifyOut:
    """The public check: the seed's hash, the seed once closed, the formula, the prize
    bands and every entry's roll and outcome (no personal data), newest first."""
    draw = await draws.get(session, draw_id=draw_id)
    prizes = await draws.prizes_of(session, draw_id=draw.id)
    rows = await draws.public_entries(
        session, draw_id=draw.id, before_id=page.before_id, limit=page.fetch
    )
    items, next_cursor = split_page(rows, page, key=lambda e: e.id)
    return VerifyOut(
        draw_id=draw.id,
        seed_hash=draw.seed_hash,
        seed=draws.public_seed(draw),
        formula=FORMULA,
        bands=prizes_out(prizes),
        items=[
            PublicEntryOut(id=e.id, roll=e.roll, prize_id=e.prize_id, outcome=e.outcome)
            for e in items
        ],
        next_cursor=next_cursor,
    )
