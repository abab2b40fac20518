"""Pure geometry for stores, geofences and "near me": great-circle distance and H3 cells.

Distances are haversine on a sphere of the mean Earth radius: at most ~0.5 % off the
ellipsoid, a few metres at the 5 km that "near me" looks at, far below a phone's GPS error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import h3

from mobimart.web.i18n import stored as _  # marks the messages for the catalogue

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
STORE_RES = 9  # ~0.1 km² cells, edge ~200 m: a walking block
MIN_RADIUS_M = 20  # below a phone's usual GPS accuracy a fence would flicker
MAX_RADIUS_M = 50_000
MAX_FENCE_CELLS = 500
FENCE_RES = range(5, 13)  # res 5 (~250 km² cells) to 12 (~300 m² cells)


class GeoError(ValueError):
    """Coordinates, a radius or cells that cannot be used; the message is readable."""


def check_point(lat: float, lng: float) -> tuple[float, float]:
    if not (math.isfinite(lat) and math.isfinite(lng)):
        raise GeoError(_("Coordinates must be numbers."))
    if not -90 <= lat <= 90:
        raise GeoError(_("Latitude must be between -90 and 90."))
    if not -180 <= lng <= 180:
        raise GeoError(_("Longitude must be between -180 and 180."))
    return lat, lng


def check_radius(radius_m: int) -> int:
    if not MIN_RADIUS_M <= radius_m <= MAX_RADIUS_M:
        raise GeoError(_("The radius must be between 20 m and 50 km."))
    return radius_m


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def cell(lat: float, lng: float, res: int = STORE_RES) -> str:
    return str(h3.latlng_to_cell(lat, lng, res))


def disk(lat: float, lng: float, radius_m: float, res: int = STORE_RES) -> set[str]:
    """Cells whose centres may lie within `radius_m` of the point: a superset, to be narrowed
    by the exact distance. Ring k of a grid disk is at least k * sqrt(3) * edge * ~0.8 away
    (cells shrink up to ~20 % away from the icosahedron's face centres), and the point can be
    anywhere in its own cell: one more ring covers that."""
    edge = h3.average_hexagon_edge_length(res, unit="m")
    k = math.ceil(radius_m / (math.sqrt(3) * edge * 0.8)) + 1
    return {str(c) for c in h3.grid_disk(h3.latlng_to_cell(lat, lng, res), k)}


def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """(south, north, west, east) in degrees around a circle: a cheap SQL pre-filter. Near the
    poles or across the antimeridian it widens to every longitude rather than be wrong."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    south, north = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    cos_lat = math.cos(math.radians(max(abs(south), abs(north))))
    if cos_lat < 1e-6:
        return south, north, -180.0, 180.0
    dlng = math.degrees(radius_m / (EARTH_RADIUS_M * cos_lat))
    west, east = lng - dlng, lng + dlng
    if west < -180 or east > 180:
        return south, north, -180.0, 180.0
    return south, north, west, east


def in_circle(lat: float, lng: float, *, clat: float, clng: float, radius_m: float) -> bool:
    """On the edge counts as inside: a fence of 100 m includes the point 100 m away."""
    return distance_m(lat, lng, clat, clng) <= radius_m


def check_cells(cells: Iterable[str]) -> list[str]:
    """Valid H3 cells of resolutions 5-12, without repeats, at most 500."""
    out: list[str] = []
    for raw in cells:
        text = raw.strip().lower()
        if not text:
            continue
        if not h3.is_valid_cell(text):
            raise GeoError(_("One of the cells is not an H3 cell."))
        if h3.get_resolution(text) not in FENCE_RES:
            raise GeoError(_("H3 cells must be of resolution 5 to 12."))
        if text not in out:
            out.append(text)
    if not out:
        raise GeoError(_("Give at least one H3 cell."))
    if len(out) > MAX_FENCE_CELLS:
        raise GeoError(_("At most 500 cells per geofence."))
    return out


def in_cells(lat: float, lng: float, cells: Iterable[str]) -> bool:
    """The point's cell at each resolution the fence uses, looked up in the fence's set."""
    wanted = set(cells)
    resolutions = {h3.get_resolution(c) for c in wanted}
    return any(str(h3.latlng_to_cell(lat, lng, res)) in wanted for res in resolutions)


def cells_circle(cells: Iterable[str]) -> tuple[float, float, float]:
    """A circle around the cells: their mean centre and the distance to the farthest vertex.
    Stored on an H3 fence so the same bounding-box search finds both kinds of fence."""
    cell_list = list(cells)
    centres = [h3.cell_to_latlng(c) for c in cell_list]
    clat = sum(p[0] for p in centres) / len(centres)
    clng = sum(p[1] for p in centres) / len(centres)
    reach = max(
        distance_m(clat, clng, vlat, vlng)
        for c in cell_list
        for vlat, vlng in h3.cell_to_boundary(c)
    )
    return clat, clng, reach
