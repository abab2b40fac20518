"""Stores, geofences and their offers; "near me"; entering a geofence as a marketing event.

Finding what is near: a store's H3 cell (resolution 9) is stored with it, so the candidates
are the stores in the grid disk of cells around the person (one indexed IN query), and the
exact haversine distance sorts and cuts them at the radius.

Geofences are circles (`lat`, `lng`, `radius_m`, 20 m to 50 km) or sets of H3 cells. A circle
keeps no cells: haversine against the centre is exact and costs microseconds, while covering
cells would be ~60,000 rows at resolution 9 for a 50 km fence and would make its edge jagged by
a cell's width (~200 m). An H3 fence also stores a circle around its cells (centre and the
distance to the farthest vertex), so one bounding-box query over `lat`/`lng` finds the
candidate fences of either kind; `cells` is what decides for an H3 fence."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.campaigns import events, geo
from mobimart.campaigns.events import Kind
from mobimart.campaigns.models import Geofence, GeoOffer, StoreLocation
from mobimart.db import utcnow
from mobimart.errors import DomainError, NotFound
from mobimart.infra import throttle
from mobimart.merchants.models import Merchant
from mobimart.promotions import service as promotions
from mobimart.text import clean, clean_name
from mobimart.web.i18n import stored as _  # marks the messages for the catalogue

NEARBY_RADIUS_M = 5_000  # a walk or a short ride: what "near me" means on a phone
MAX_NEARBY_RADIUS_M = 10_000  # a grid disk of 4,219 cells: one IN list, under 32k parameters
NEARBY_LIMIT = 50
ENTER_EVERY = dt.timedelta(hours=1)  # one geofence_enter per person and fence per hour
_APPROVED = "approved"


def _geo_error(exc: geo.GeoError) -> DomainError:
    return DomainError("invalid_location", str(exc), 422)


def _point(lat: float, lng: float) -> tuple[float, float]:
    try:
        return geo.check_point(lat, lng)
    except geo.GeoError as exc:
        raise _geo_error(exc) from None


_UNNAMED = {
    "store": _("Give the store a name."),
    "geofence": _("Give the geofence a name."),
    "offer": _("Give the offer a title."),
}


def _name(value: str, what: str) -> str:
    name = clean_name(value, 80)
    if not name:
        raise DomainError("invalid_name", _UNNAMED[what], 422)
    return name


# --- stores ----------------------------------------------------------------------------------


async def create_store(
    session: AsyncSession,
    *,
    merchant_id: int,
    name: str,
    lat: float,
    lng: float,
    address: str = "",
) -> StoreLocation:
    lat, lng = _point(lat, lng)
    row = StoreLocation(
        merchant_id=merchant_id,
        name=_name(name, "store"),
        address=clean_name(address, 200),
        lat=lat,
        lng=lng,
        h3=geo.cell(lat, lng),
    )
    session.add(row)
    await session.commit()
    return row


async def stores(
    session: AsyncSession, *, merchant_id: int, after: int | None = None, limit: int = 100
) -> list[StoreLocation]:
    query = select(StoreLocation).where(StoreLocation.merchant_id == merchant_id)
    if after is not None:
        query = query.where(StoreLocation.id < after)
    return list(await session.scalars(query.order_by(StoreLocation.id.desc()).limit(limit)))


async def store(session: AsyncSession, *, store_id: int, merchant_id: int) -> StoreLocation:
    row = await session.get(StoreLocation, store_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound("Store")
    return row


async def delete_store(session: AsyncSession, *, store_id: int, merchant_id: int) -> None:
    await session.delete(await store(session, store_id=store_id, merchant_id=merchant_id))
    await session.commit()


# --- geofences -------------------------------------------------------------------------------


async def create_geofence(
    session: AsyncSession,
    *,
    merchant_id: int,
    name: str,
    store_id: int | None = None,
    lat: float | None = None,
    lng: float | None = None,
    radius_m: int | None = None,
    cells: list[str] | None = None,
) -> Geofence:
    """A circle (radius, and a centre or a store to centre on) or a set of H3 cells."""
    if store_id is not None:
        shop = await store(session, store_id=store_id, merchant_id=merchant_id)
        if lat is None and lng is None:
            lat, lng = shop.lat, shop.lng
    try:
        if cells:
            if radius_m is not None:
                raise geo.GeoError(_("A geofence is a circle or H3 cells, not both."))
            cells = geo.check_cells(cells)
            lat, lng, reach = geo.cells_circle(cells)
            if reach > geo.MAX_RADIUS_M:
                raise geo.GeoError(_("The cells spread wider than 50 km."))
            radius_m = math.ceil(reach)
        else:
            if radius_m is None or lat is None or lng is None:
                raise geo.GeoError(_("Give a centre (or a store) and a radius, or H3 cells."))
            geo.check_radius(radius_m)
            geo.check_point(lat, lng)
    except geo.GeoError as exc:
        raise _geo_error(exc) from None
    row = Geofence(
        merchant_id=merchant_id,
        store_id=store_id,
        name=_name(name, "geofence"),
        lat=lat,
        lng=lng,
        radius_m=radius_m,
        cells=cells or None,
    )
    session.add(row)
    await session.commit()
    return row


async def geofences(
    session: AsyncSession, *, merchant_id: int, after: int | None = None, limit: int = 100
) -> list[Geofence]:
    query = select(Geofence).where(Geofence.merchant_id == merchant_id)
    if after is not None:
        query = query.where(Geofence.id < after)
    return list(await session.scalars(query.order_by(Geofence.id.desc()).limit(limit)))


async def geofence(session: AsyncSession, *, geofence_id: int, merchant_id: int) -> Geofence:
    row = await session.get(Geofence, geofence_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFound("Geofence")
    return row


async def delete_geofence(session: AsyncSession, *, geofence_id: int, merchant_id: int) -> None:
    """Its offers go with it (cascade)."""
    await session.delete(await geofence(session, geofence_id=geofence_id, merchant_id=merchant_id))
    await session.commit()


def contains(fence: Geofence, lat: float, lng: float) -> bool:
    if fence.cells:
        return geo.in_cells(lat, lng, fence.cells)
    if fence.lat is None or fence.lng is None or fence.radius_m is None:
        return False
    return geo.in_circle(lat, lng, clat=fence.lat, clng=fence.lng, radius_m=fence.radius_m)


def _edge_distance(fence: Geofence, lat: float, lng: float) -> float:
    """0 inside; otherwise how far to walk to reach the fence (its circle for H3 fences)."""
    if contains(fence, lat, lng):
        return 0.0
    if fence.lat is None or fence.lng is None:
        return math.inf
    return max(1.0, geo.distance_m(lat, lng, fence.lat, fence.lng) - (fence.radius_m or 0))


async def _fences_near(
    session: AsyncSession, lat: float, lng: float, reach_m: float
) -> list[Geofence]:
    """Active fences whose bounding circle may come within `reach_m` of the point."""
    south, north, west, east = geo.bounding_box(lat, lng, reach_m + geo.MAX_RADIUS_M)
    rows = await session.scalars(
        select(Geofence)
        .join(Merchant, Merchant.id == Geofence.merchant_id)
        .where(
            Geofence.active.is_(True),
            Merchant.status == _APPROVED,
            Geofence.lat.between(south, north),
            Geofence.lng.between(west, east),
        )
    )
    return [
        f
        for f in rows
        if f.lat is not None
        and f.lng is not None
        and geo.distance_m(lat, lng, f.lat, f.lng) <= reach_m + (f.radius_m or 0)
    ]


# --- offers ----------------------------------------------------------------------------------


async def create_offer(
    session: AsyncSession,
    *,
    merchant_id: int,
    geofence_id: int,
    title: str,
    body: str = "",
    promotion_id: int | None = None,
    starts_at: dt.datetime | None = None,
    ends_at: dt.datetime | None = None,
) -> GeoOffer:
    await geofence(session, geofence_id=geofence_id, merchant_id=merchant_id)
    if promotion_id is not None:
        await promotions.owned(session, promotion_id=promotion_id, merchant_id=merchant_id)
    if starts_at and ends_at and ends_at <= starts_at:
        raise DomainError("invalid_period", _("The offer must end after it starts."), 422)
    row = GeoOffer(
        geofence_id=geofence_id,
        title=_name(title, "offer"),
        body=clean(body, 300),
        promotion_id=promotion_id,
        starts_at=starts_at,
        ends_at=ends_at,
    )
    session.add(row)
    await session.commit()
    return row


async def offers(
    session: AsyncSession, *, merchant_id: int, after: int | None = None, limit: int = 100
) -> list[tuple[GeoOffer, Geofence]]:
    query = (
        select(GeoOffer, Geofence)
        .join(Geofence, Geofence.id == GeoOffer.geofence_id)
        .where(Geofence.merchant_id == merchant_id)
    )
    if after is not None:
        query = query.where(GeoOffer.id < after)
    rows = await session.execute(query.order_by(GeoOffer.id.desc()).limit(limit))
    return [(o, f) for o, f in rows.all()]


async def offer(session: AsyncSession, *, offer_id: int, merchant_id: int) -> GeoOffer:
    row = (
        await session.execute(
            select(GeoOffer)
            .join(Geofence, Geofence.id == GeoOffer.geofence_id)
            .where(GeoOffer.id == offer_id, Geofence.merchant_id == merchant_id)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("Offer")
    return row


async def delete_offer(session: AsyncSession, *, offer_id: int, merchant_id: int) -> None:
    await session.delete(await offer(session, offer_id=offer_id, merchant_id=merchant_id))
    await session.commit()


# --- near me ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NearbyStore:
    store: StoreLocation
    merchant_name: str
    distance_m: float


@dataclass(frozen=True)
class NearbyOffer:
    offer: GeoOffer
    fence: Geofence
    merchant_name: str
    distance_m: float  # 0: the person is inside the offer's fence

    @property
    def here(self) -> bool:
        return self.distance_m == 0


@dataclass(frozen=True)
class Nearby:
    stores: list[NearbyStore]
    offers: list[NearbyOffer]


async def nearby(
    session: AsyncSession,
    *,
    lat: float,
    lng: float,
    radius_m: int = NEARBY_RADIUS_M,
    limit: int = NEARBY_LIMIT,
) -> Nearby:
    """Stores of approved merchants and their live offers within `radius_m`, nearest first."""
    lat, lng = _point(lat, lng)
    radius_m = max(geo.MIN_RADIUS_M, min(radius_m, MAX_NEARBY_RADIUS_M))
    cells = geo.disk(lat, lng, radius_m)
    rows = await session.execute(
        select(StoreLocation, Merchant.name)
        .join(Merchant, Merchant.id == StoreLocation.merchant_id)
        .where(StoreLocation.h3.in_(cells), Merchant.status == _APPROVED)
    )
    found = [NearbyStore(s, name, geo.distance_m(lat, lng, s.lat, s.lng)) for s, name in rows.all()]
    near_stores = sorted(
        (s for s in found if s.distance_m <= radius_m), key=lambda s: (s.distance_m, s.store.id)
    )[:limit]

    fences = {f.id: f for f in await _fences_near(session, lat, lng, radius_m)}
    near_offers: list[NearbyOffer] = []
    if fences:
        now = utcnow()
        offer_rows = await session.execute(
            select(GeoOffer, Merchant.name)
            .join(Geofence, Geofence.id == GeoOffer.geofence_id)
            .join(Merchant, Merchant.id == Geofence.merchant_id)
            .where(
                GeoOffer.geofence_id.in_(list(fences)),
                GeoOffer.active.is_(True),
                and_(
                    (GeoOffer.starts_at.is_(None)) | (GeoOffer.starts_at <= now),
                    (GeoOffer.ends_at.is_(None)) | (GeoOffer.ends_at > now),
                ),
            )
        )
        for o, name in offer_rows.all():
            fence = fences[o.geofence_id]
            near_offers.append(NearbyOffer(o, fence, name, _edge_distance(fence, lat, lng)))
        near_offers.sort(key=lambda n: (n.distance_m, n.offer.id))
        near_offers = near_offers[:limit]
    return Nearby(near_stores, near_offers)


async def observe(
    session: AsyncSession, *, user_id: int, lat: float, lng: float, device: str = ""
) -> list[Geofence]:
    """A signed-in person shared their position: record `geofence_enter` for each active
    fence it is inside, at most once per person and fence per hour (a page refreshed in the
    shop is one visit, not ten). Returns the fences newly entered."""
    lat, lng = _point(lat, lng)
    entered = []
    for fence in await _fences_near(session, lat, lng, 0):
        if not contains(fence, lat, lng):
            continue
        refusal = await throttle.take(
            session, key=f"geo:{fence.id}:{user_id}", limit=1, window=ENTER_EVERY
        )
        if refusal:
            continue
        await events.record(
            session,
            kind=Kind.geofence_enter,
            user_id=user_id,
            merchant_id=fence.merchant_id,
            subject_id=fence.id,
            lat=round(lat, 5),  # ~1 m: enough for "which entrance", no finer
            lng=round(lng, 5),
            device=device,
        )
        entered.append(fence)
    await session.commit()
    return entered
