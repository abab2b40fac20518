"""Pure geometry: haversine against known distances, circle edges, H3 fences and disks."""

from __future__ import annotations

import math

import h3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobimart.campaigns import geo

R = geo.EARTH_RADIUS_M


def destination(lat: float, lng: float, bearing_deg: float, distance: float) -> tuple[float, float]:
    """The point `distance` metres from (lat, lng) along a great circle (spherical formula)."""
    p1, l1, b, d = math.radians(lat), math.radians(lng), math.radians(bearing_deg), distance / R
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


def test_known_distances() -> None:
    # One degree of a meridian or of the equator on the mean sphere: 2 pi R / 360.
    assert geo.distance_m(0, 0, 1, 0) == pytest.approx(111_195.08, abs=0.05)
    assert geo.distance_m(0, 0, 0, 1) == pytest.approx(111_195.08, abs=0.05)
    # Paris (Notre-Dame) to London (Charing Cross): 343.5 km great-circle.
    assert geo.distance_m(48.8530, 2.3499, 51.5073, -0.1277) == pytest.approx(343_500, rel=0.003)
    # Shanghai People's Square to Beijing Tiananmen: about 1,067 km.
    assert geo.distance_m(31.2304, 121.4737, 39.9087, 116.3975) == pytest.approx(
        1_067_000, rel=0.005
    )
    # Antipodes: half the circumference (haversine is ~0.2 m off there), no domain error.
    assert geo.distance_m(10, 20, -10, -160) == pytest.approx(math.pi * R, rel=1e-7)
    assert geo.distance_m(31.2, 121.4, 31.2, 121.4) == 0


coords = st.tuples(
    st.floats(-89.9, 89.9, allow_nan=False), st.floats(-179.9, 179.9, allow_nan=False)
)


@given(coords, coords, coords)
def test_distance_is_a_metric(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> None:
    ab = geo.distance_m(*a, *b)
    assert ab >= 0
    assert ab == pytest.approx(geo.distance_m(*b, *a), abs=1e-6)
    assert ab <= geo.distance_m(*a, *c) + geo.distance_m(*c, *b) + 1e-6


def test_circle_edge_counts_as_inside() -> None:
    centre = (31.2304, 121.4737)
    for bearing in (0, 90, 180, 270, 33):
        inside = destination(*centre, bearing, 99.99)
        outside = destination(*centre, bearing, 100.01)
        assert geo.in_circle(*inside, clat=centre[0], clng=centre[1], radius_m=100)
        assert not geo.in_circle(*outside, clat=centre[0], clng=centre[1], radius_m=100)
    on_edge = destination(*centre, 45, 100)
    exact = geo.distance_m(*centre, *on_edge)
    assert geo.in_circle(*on_edge, clat=centre[0], clng=centre[1], radius_m=exact)


def test_checks_refuse_out_of_range_values() -> None:
    assert geo.check_point(-90, 180) == (-90, 180)
    for lat, lng in ((90.01, 0), (-91, 0), (0, 180.5), (0, -181), (math.nan, 0), (0, math.inf)):
        with pytest.raises(geo.GeoError):
            geo.check_point(lat, lng)
    assert geo.check_radius(20) == 20
    assert geo.check_radius(50_000) == 50_000
    for bad in (19, 0, -5, 50_001):
        with pytest.raises(geo.GeoError):
            geo.check_radius(bad)


def test_h3_fence_contains_points_in_its_cells_at_any_resolution() -> None:
    lat, lng = 31.2304, 121.4737
    fine = geo.cell(lat, lng, 11)
    coarse = str(h3.cell_to_parent(geo.cell(lat, lng, 9), 7))
    assert geo.in_cells(lat, lng, [fine])
    assert geo.in_cells(lat, lng, [coarse])
    far = destination(lat, lng, 90, 30_000)
    assert not geo.in_cells(*far, [fine, coarse])
    # A point in a neighbouring res-11 cell (~50 m away) is outside the one-cell fence.
    near = destination(lat, lng, 0, 60)
    assert geo.cell(*near, 11) != fine
    assert not geo.in_cells(*near, [fine])


def test_cells_are_checked() -> None:
    good = geo.cell(31.23, 121.47, 9)
    assert geo.check_cells([good, " " + good.upper() + " ", ""]) == [good]
    for bad in (["not-a-cell"], [geo.cell(31.23, 121.47, 3)], [geo.cell(31.23, 121.47, 14)], []):
        with pytest.raises(geo.GeoError):
            geo.check_cells(bad)
    many = list(h3.grid_disk(good, 13))[: geo.MAX_FENCE_CELLS + 1]
    with pytest.raises(geo.GeoError):
        geo.check_cells([str(c) for c in many])


def test_cells_circle_reaches_every_cell() -> None:
    cells = [str(c) for c in h3.grid_disk(geo.cell(31.23, 121.47, 9), 2)]
    clat, clng, reach = geo.cells_circle(cells)
    for c in cells:
        for vlat, vlng in h3.cell_to_boundary(c):
            assert geo.distance_m(clat, clng, vlat, vlng) <= reach + 1e-6


@settings(max_examples=60, deadline=None)
@given(
    st.floats(-70, 70, allow_nan=False),
    st.floats(-179, 179, allow_nan=False),
    st.floats(50, 10_000),
    st.floats(0, 360),
    st.floats(0, 1),
)
def test_the_disk_holds_the_cell_of_every_point_within_the_radius(
    lat: float, lng: float, radius: float, bearing: float, fraction: float
) -> None:
    cells = geo.disk(lat, lng, radius)
    target = destination(lat, lng, bearing, radius * fraction)
    assert geo.cell(*target) in cells


def test_bounding_box_contains_the_circle() -> None:
    south, north, west, east = geo.bounding_box(31.23, 121.47, 5_000)
    for bearing in range(0, 360, 15):
        lat, lng = destination(31.23, 121.47, bearing, 5_000)
        assert south <= lat <= north
        assert west <= lng <= east
    assert geo.bounding_box(89.99, 0, 5_000)[2:] == (-180.0, 180.0)
    assert geo.bounding_box(0, 179.99, 5_000)[2:] == (-180.0, 180.0)
