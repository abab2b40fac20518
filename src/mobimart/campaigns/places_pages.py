"""The consumer's "Nearby" page and the merchant console's stores, geofences and offers.

/nearby renders on the server from `?lat=&lng=` and records nothing: the "use my location"
button (nearby.js, the browser's geolocation) fills those in and, for a signed-in person,
first posts the position to /nearby/position, which records entering geofences. Without
JavaScript the same form takes typed coordinates."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from mobimart.accounts.models import User
from mobimart.campaigns import events, geo, places
from mobimart.errors import DomainError
from mobimart.merchants import service as merchants
from mobimart.promotions import service as promotions
from mobimart.text import clean
from mobimart.web.deps import OptionalPageUser, PageUser, Session
from mobimart.web.forms import message_of, see_other
from mobimart.web.i18n import gettext_ as _
from mobimart.web.schemas import IdPath
from mobimart.web.templating import render, verify_csrf

router = APIRouter()
Text = Annotated[str, Form(max_length=200)]
Csrf = Annotated[str, Form(max_length=200)]


def _number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise DomainError(
            "invalid_location", _("Latitude and longitude must be numbers."), 422
        ) from None


def parse_place(text: str) -> tuple[float, float]:
    """ "31.2304, 121.4737" (latitude, longitude), as a map app copies it."""
    parts = [p for p in text.replace("，", ",").replace(" ", ",").split(",") if p.strip()]
    if len(parts) != 2:
        raise DomainError(
            "invalid_location", _("Type the latitude and longitude, e.g. 31.2304, 121.4737."), 422
        )
    lat, lng = _number(parts[0]), _number(parts[1])
    try:
        return geo.check_point(lat, lng)
    except geo.GeoError as exc:
        raise DomainError("invalid_location", str(exc), 422) from None


@router.get("/nearby")
async def nearby_page(
    request: Request,
    session: Session,
    user: OptionalPageUser,
    lat: Annotated[str, Query(max_length=40)] = "",
    lng: Annotated[str, Query(max_length=40)] = "",
    place: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    ctx: dict[str, object] = {"user": user, "tab": "home", "place": clean(place, 80)}
    if not (lat or lng or place):
        return render(request, "campaigns/nearby.html", ctx)
    try:
        point = parse_place(place) if place else parse_place(f"{lat},{lng}")
    except DomainError as exc:
        return render(
            request, "campaigns/nearby.html", {**ctx, "error": message_of(exc)}, status=exc.status
        )
    found = await places.nearby(session, lat=point[0], lng=point[1])
    return render(
        request,
        "campaigns/nearby.html",
        {
            **ctx,
            "point": point,
            "place": f"{point[0]:.5f}, {point[1]:.5f}",
            "found": found,
            "radius_km": places.NEARBY_RADIUS_M // 1000,
        },
    )


@router.post("/nearby/position", status_code=204)
async def record_position(
    request: Request, session: Session, user: PageUser, lat: Text, lng: Text, csrf_token: Csrf
) -> Response:
    """Where the person is, as nearby.js posts it when the browser's own geolocation gave it:
    entering a geofence is recorded here and may start automations (texts, coupons). A GET
    of /nearby records nothing: a link or a prefetch from another site could carry the
    session cookie to it, and a typed place is somewhere one browses, not where one is."""
    verify_csrf(request, csrf_token)
    point = parse_place(f"{lat},{lng}")
    await places.observe(
        session,
        user_id=user.id,
        lat=point[0],
        lng=point[1],
        device=events.device_class(request.headers.get("user-agent", "")),
    )
    return Response(status_code=204)


# --- merchant console ------------------------------------------------------------------------


def _notice(code: str) -> str:
    return {
        "store": _("Store saved."),
        "geofence": _("Geofence saved."),
        "offer": _("Offer saved."),
        "deleted": _("Deleted."),
    }.get(code, "")


async def _console(
    request: Request,
    session: AsyncSession,
    user: User,
    merchant_id: int,
    *,
    notice: str = "",
    error: str = "",
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    merchant, _member = await merchants.membership(session, merchant_id=merchant_id, user=user)
    coupons = [
        p
        for p in await promotions.listed(session, merchant_id=merchant.id, after=None, limit=100)
        if p.code and p.active and p.total_uses != 1
    ]
    return render(
        request,
        "campaigns/places_console.html",
        {
            "user": user,
            "tab": "console",
            "merchant": merchant,
            "stores": await places.stores(session, merchant_id=merchant.id),
            "fences": await places.geofences(session, merchant_id=merchant.id),
            "offers": await places.offers(session, merchant_id=merchant.id),
            "coupons": coupons,
            "notice": _notice(notice),
            "error": error,
            "form": form or {},
            "min_radius": geo.MIN_RADIUS_M,
            "max_radius": geo.MAX_RADIUS_M,
        },
        status=status,
    )


@router.get("/console/{merchant_id}/places")
async def console_page(
    request: Request, merchant_id: IdPath, user: PageUser, session: Session, notice: str = ""
) -> Response:
    return await _console(request, session, user, merchant_id, notice=notice)


def _optional_id(text: str) -> int | None:
    return int(text) if text.strip().isdigit() and 0 < int(text) < 2**31 else None


@router.post("/console/{merchant_id}/places/stores")
async def create_store(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    name: Text,
    location: Text,
    csrf_token: Csrf,
    address: Text = "",
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    try:
        lat, lng = parse_place(location)
        await places.create_store(
            session, merchant_id=merchant_id, name=name, address=address, lat=lat, lng=lng
        )
    except DomainError as exc:
        form = {"store_name": name, "store_location": location, "store_address": address}
        return await _console(
            request, session, user, merchant_id, error=message_of(exc), form=form, status=exc.status
        )
    return see_other(f"/console/{merchant_id}/places", "store")


@router.post("/console/{merchant_id}/places/geofences")
async def create_geofence(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    name: Text,
    csrf_token: Csrf,
    store_id: Text = "",
    location: Text = "",
    radius_m: Text = "",
    cells: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    try:
        lat = lng = None
        if location.strip():
            lat, lng = parse_place(location)
        radius = None
        if radius_m.strip():
            if not radius_m.strip().isdigit():
                raise DomainError(
                    "invalid_location", _("The radius is a whole number of metres."), 422
                )
            radius = min(int(radius_m), 10**9)
        cell_list = [c for c in cells.replace(",", " ").split() if c] or None
        await places.create_geofence(
            session,
            merchant_id=merchant_id,
            name=name,
            store_id=_optional_id(store_id),
            lat=lat,
            lng=lng,
            radius_m=radius,
            cells=cell_list,
        )
    except DomainError as exc:
        form = {
            "fence_name": name,
            "fence_location": location,
            "fence_radius": radius_m,
            "fence_cells": cells,
        }
        return await _console(
            request, session, user, merchant_id, error=message_of(exc), form=form, status=exc.status
        )
    return see_other(f"/console/{merchant_id}/places", "geofence")


def _date(text: str) -> dt.datetime | None:
    if not text.strip():
        return None
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise DomainError("invalid_date", _("Dates look like 2026-12-31."), 422) from None
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@router.post("/console/{merchant_id}/places/offers")
async def create_offer(
    request: Request,
    merchant_id: IdPath,
    user: PageUser,
    session: Session,
    geofence_id: Text,
    title: Text,
    csrf_token: Csrf,
    body: Annotated[str, Form(max_length=300)] = "",
    promotion_id: Text = "",
    ends_on: Text = "",
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.membership(session, merchant_id=merchant_id, user=user)
    try:
        fence_id = _optional_id(geofence_id)
        if fence_id is None:
            raise DomainError("invalid_geofence", _("Pick a geofence for the offer."), 422)
        await places.create_offer(
            session,
            merchant_id=merchant_id,
            geofence_id=fence_id,
            title=title,
            body=body,
            promotion_id=_optional_id(promotion_id),
            ends_at=_date(ends_on),
        )
    except DomainError as exc:
        form = {"offer_title": title, "offer_body": body, "offer_ends_on": ends_on}
        return await _console(
            request, session, user, merchant_id, error=message_of(exc), form=form, status=exc.status
        )
    return see_other(f"/console/{merchant_id}/places", "offer")


@router.post("/console/{merchant_id}/places/{kind}/{item_id}/delete")
async def delete_item(
    request: Request,
    merchant_id: IdPath,
    kind: Literal["stores", "geofences", "offers"],
    item_id: IdPath,
    user: PageUser,
    session: Session,
    csrf_token: Csrf,
) -> Response:
    verify_csrf(request, csrf_token)
    await merchants.require_owner(session, merchant_id=merchant_id, user=user)
    if kind == "stores":
        await places.delete_store(session, store_id=item_id, merchant_id=merchant_id)
    elif kind == "geofences":
        await places.delete_geofence(session, geofence_id=item_id, merchant_id=merchant_id)
    else:
        await places.delete_offer(session, offer_id=item_id, merchant_id=merchant_id)
    return see_other(f"/console/{merchant_id}/places", "deleted")
