"""Request and response bodies of the stores, geofences, offers and near-me API."""

from __future__ import annotations

import datetime as dt

from pydantic import AwareDatetime, BaseModel, Field

from mobimart.campaigns import geo
from mobimart.web.schemas import MAX_ID, InputModel

Lat = Field(ge=-90, le=90, allow_inf_nan=False)
Lng = Field(ge=-180, le=180, allow_inf_nan=False)


class StoreIn(InputModel):
    name: str = Field(min_length=1, max_length=80)
    address: str = Field("", max_length=200)
    lat: float = Lat
    lng: float = Lng


class StoreOut(BaseModel):
    id: int
    merchant_id: int
    name: str
    address: str
    lat: float
    lng: float
    h3: str
    created_at: dt.datetime


class GeofenceIn(InputModel):
    """A circle: `radius_m` with `lat`/`lng` or a `store_id` to centre on; or H3 `cells`."""

    name: str = Field(min_length=1, max_length=80)
    store_id: int | None = Field(None, ge=1, le=MAX_ID)
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    lng: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    radius_m: int | None = Field(None, ge=geo.MIN_RADIUS_M, le=geo.MAX_RADIUS_M)
    cells: list[str] | None = Field(
        None, min_length=1, max_length=geo.MAX_FENCE_CELLS, description="H3 cells, res 5-12"
    )


class GeofenceOut(BaseModel):
    id: int
    merchant_id: int
    store_id: int | None
    name: str
    lat: float | None
    lng: float | None
    radius_m: int | None = Field(description="the circle; for an H3 fence, a circle around it")
    cells: list[str] | None
    active: bool
    created_at: dt.datetime


class OfferIn(InputModel):
    geofence_id: int = Field(ge=1, le=MAX_ID)
    title: str = Field(min_length=1, max_length=80)
    body: str = Field("", max_length=300)
    promotion_id: int | None = Field(None, ge=1, le=MAX_ID)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class OfferOut(BaseModel):
    id: int
    geofence_id: int
    title: str
    body: str
    promotion_id: int | None
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    active: bool


class NearbyStoreOut(BaseModel):
    id: int
    name: str
    merchant_id: int
    merchant_name: str
    address: str
    lat: float
    lng: float
    distance_m: int


class NearbyOfferOut(BaseModel):
    id: int
    title: str
    body: str
    merchant_id: int
    merchant_name: str
    geofence_id: int
    promotion_id: int | None
    ends_at: dt.datetime | None
    distance_m: int = Field(description="0 when the position is inside the offer's geofence")


class NearbyOut(BaseModel):
    lat: float
    lng: float
    radius_m: int
    stores: list[NearbyStoreOut]
    offers: list[NearbyOfferOut]


class PositionIn(InputModel):
    """Where the person is now, from the device's location service (not a place typed to
    browse: that is `GET /nearby`)."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False)


class PositionOut(BaseModel):
    entered_geofences: list[int] = Field(
        description="geofences this position recorded an entry into (at most once an hour each)"
    )
