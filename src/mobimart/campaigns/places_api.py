"""Stores, geofences and offers of a merchant, and the public "near me" search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from mobimart.campaigns import events, geo, places
from mobimart.campaigns.models import Geofence, GeoOffer, StoreLocation
from mobimart.campaigns.places_schemas import (
    GeofenceIn,
    GeofenceOut,
    NearbyOfferOut,
    NearbyOut,
    NearbyStoreOut,
    OfferIn,
    OfferOut,
    PositionIn,
    PositionOut,
    StoreIn,
    StoreOut,
)
from mobimart.merchants import service as merchants
from mobimart.web.deps import CurrentUser, Session
from mobimart.web.pagination import Page, PageParams, make_page, page_params
from mobimart.web.schemas import IdPath

router = APIRouter(tags=["places"])
Paging = Annotated[PageParams, Depends(page_params)]


def _store_out(row: StoreLocation) -> StoreOut:
    return StoreOut.model_validate(row, from_attributes=True)


def _fence_out(row: Geofence) -> GeofenceOut:
    return GeofenceOut.model_validate(row, from_attributes=True)


def _offer_out(row: GeoOffer) -> OfferOut:
    return OfferOut.model_validate(row, from_attributes=True)


@router.post("/merchants/{merchant_id}/stores", status_code=201)
async def create_store(
    merchant_id: IdPath, body: StoreIn, user: CurrentUser, session: Session
) -> StoreOut:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return _store_out(
        await places.create_store(session, merchant_id=merchant_id, **body.model_dump())
    )


@router.get("/merchants/{merchant_id}/stores")
async def list_stores(
    merchant_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[StoreOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await places.stores(
        session, merchant_id=merchant_id, after=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, _store_out, key=lambda r: r.id)


@router.delete("/merchants/{merchant_id}/stores/{store_id}", status_code=204)
async def delete_store(
    merchant_id: IdPath, store_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    """Deleting is the owner's (staff add, the owner removes); the store's geofences stay,
    with their own centre."""
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await places.delete_store(session, store_id=store_id, merchant_id=merchant_id)
    return Response(status_code=204)


@router.post("/merchants/{merchant_id}/geofences", status_code=201)
async def create_geofence(
    merchant_id: IdPath, body: GeofenceIn, user: CurrentUser, session: Session
) -> GeofenceOut:
    """A circle of 20 m to 50 km around a point or one of the merchant's stores, or a set of
    H3 cells (resolution 5-12, at most 500)."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return _fence_out(
        await places.create_geofence(session, merchant_id=merchant_id, **body.model_dump())
    )


@router.get("/merchants/{merchant_id}/geofences")
async def list_geofences(
    merchant_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[GeofenceOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await places.geofences(
        session, merchant_id=merchant_id, after=page.before_id, limit=page.fetch
    )
    return make_page(rows, page, _fence_out, key=lambda r: r.id)


@router.delete("/merchants/{merchant_id}/geofences/{geofence_id}", status_code=204)
async def delete_geofence(
    merchant_id: IdPath, geofence_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await places.delete_geofence(session, geofence_id=geofence_id, merchant_id=merchant_id)
    return Response(status_code=204)


@router.post("/merchants/{merchant_id}/offers", status_code=201)
async def create_offer(
    merchant_id: IdPath, body: OfferIn, user: CurrentUser, session: Session
) -> OfferOut:
    """An offer shown to people near or inside one of the merchant's geofences, optionally
    a coupon promotion of the merchant."""
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    return _offer_out(
        await places.create_offer(session, merchant_id=merchant_id, **body.model_dump())
    )


@router.get("/merchants/{merchant_id}/offers")
async def list_offers(
    merchant_id: IdPath, user: CurrentUser, session: Session, page: Paging
) -> Page[OfferOut]:
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    rows = await places.offers(
        session, merchant_id=merchant_id, after=page.before_id, limit=page.fetch
    )
    return make_page([o for o, _f in rows], page, _offer_out, key=lambda r: r.id)


@router.delete("/merchants/{merchant_id}/offers/{offer_id}", status_code=204)
async def delete_offer(
    merchant_id: IdPath, offer_id: IdPath, user: CurrentUser, session: Session
) -> Response:
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    await places.delete_offer(session, offer_id=offer_id, merchant_id=merchant_id)
    return Response(status_code=204)


# Public: `{}` in the security list says so to clients.
@router.get("/nearby", openapi_extra={"security": [{}]})
async def nearby(
    session: Session,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    lng: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    radius_m: Annotated[
        int, Query(ge=geo.MIN_RADIUS_M, le=places.MAX_NEARBY_RADIUS_M)
    ] = places.NEARBY_RADIUS_M,
) -> NearbyOut:
    """Stores and live offers within `radius_m` (default 5 km), nearest first. Public and
    read-only: to record where the person is, `POST /me/position`."""
    found = await places.nearby(session, lat=lat, lng=lng, radius_m=radius_m)
    return NearbyOut(
        lat=lat,
        lng=lng,
        radius_m=radius_m,
        stores=[
            NearbyStoreOut(
                id=s.store.id,
                name=s.store.name,
                merchant_id=s.store.merchant_id,
                merchant_name=s.merchant_name,
                address=s.store.address,
                lat=s.store.lat,
                lng=s.store.lng,
                distance_m=round(s.distance_m),
            )
            for s in found.stores
        ],
        offers=[
            NearbyOfferOut(
                id=o.offer.id,
                title=o.offer.title,
                body=o.offer.body,
                merchant_id=o.fence.merchant_id,
                merchant_name=o.merchant_name,
                geofence_id=o.fence.id,
                promotion_id=o.offer.promotion_id,
                ends_at=o.offer.ends_at,
                distance_m=round(o.distance_m),
            )
            for o in found.offers
        ],
    )


@router.post("/me/position")
async def record_position(
    request: Request, body: PositionIn, user: CurrentUser, session: Session
) -> PositionOut:
    """The signed-in person's position from the device's location service: entering a
    geofence is recorded (once per person and fence per hour) and starts the merchants'
    automations on `geofence_enter`."""
    fences = await places.observe(
        session,
        user_id=user.id,
        lat=body.lat,
        lng=body.lng,
        device=events.device_class(request.headers.get("user-agent", "")),
    )
    return PositionOut(entered_geofences=[f.id for f in fences])
