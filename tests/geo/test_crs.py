"""geo.crs: CRS names, GCJ-02/BD-09 offsets and their iterative inverses, metres."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
import shapely
from numpy.typing import ArrayLike
from shapely.geometry import Polygon, box

from geo.crs import (
    BD09,
    GCJ02,
    WGS84,
    Crs,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    local_metric_crs,
    lonlat_from_wgs84,
    lonlat_to_wgs84,
    out_of_china,
    parse_crs,
    project_to_metres,
    to_wgs84,
    unproject_from_metres,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geo.errors import InvalidInput, UnknownCRS

GEOD = pyproj.Geod(ellps="WGS84")
ROUND_TRIP_BOUND_M = 0.01  # DESIGN.md: GCJ-02 → WGS84 within 0.01 m of the forward formula


# --- an independent, scalar transcription of the public forward formula ---------------
# (wandergis/coordtransform, eviltransform: the formula every GCJ-02 library copies)


def _reference_wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    if lon < 72.004 or lon > 137.8347 or lat < 0.8293 or lat > 55.8271:
        return lon, lat
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lat += (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lat += (20.0 * math.sin(y * pi) + 40.0 * math.sin(y / 3.0 * pi)) * 2.0 / 3.0
    d_lat += (160.0 * math.sin(y / 12.0 * pi) + 320 * math.sin(y * pi / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    d_lon += (20.0 * math.sin(6.0 * x * pi) + 20.0 * math.sin(2.0 * x * pi)) * 2.0 / 3.0
    d_lon += (20.0 * math.sin(x * pi) + 40.0 * math.sin(x / 3.0 * pi)) * 2.0 / 3.0
    d_lon += (150.0 * math.sin(x / 12.0 * pi) + 300.0 * math.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * pi
    magic = 1 - ee * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((a * (1 - ee)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (a / sqrt_magic * math.cos(rad_lat) * pi)
    return lon + d_lon, lat + d_lat


def _one_step_gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The popular approximation DESIGN.md forbids: subtract the offset at the GCJ point."""
    fwd_lon, fwd_lat = wgs84_to_gcj02(lon, lat)
    return 2 * lon - fwd_lon, 2 * lat - fwd_lat


def _china_grid() -> tuple[np.ndarray, np.ndarray]:
    """About 5,000 points covering mainland China and Hainan (plus a random sprinkle)."""
    lon, lat = np.meshgrid(np.linspace(73.5, 135.0, 63), np.linspace(18.2, 53.5, 72))
    rng = np.random.default_rng(445321)
    extra_lon = rng.uniform(73.5, 135.0, 500)
    extra_lat = rng.uniform(18.2, 53.5, 500)
    return np.concatenate([lon.ravel(), extra_lon]), np.concatenate([lat.ravel(), extra_lat])


def _distance_m(lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike) -> np.ndarray:
    """Geodesic distance in metres on the WGS84 ellipsoid, element-wise."""
    arrays = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (lon1, lat1, lon2, lat2))
    )
    _, _, dist = GEOD.inv(*arrays)
    return np.asarray(dist)


# --- published test vectors ---------------------------------------------------------


def test_beijing_vector_matches_the_published_coordtransform_values() -> None:
    # wandergis/coordtransform README: wgs84togcj02(116.404, 39.915).
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert float(lon) == pytest.approx(116.41024449916938, abs=1e-12)
    assert float(lat) == pytest.approx(39.91640428150164, abs=1e-12)
    # gcj02tobd09(116.404, 39.915) and wgs84_to_bd09(116.404, 39.915) from the same sources.
    bd_lon, bd_lat = gcj02_to_bd09(116.404, 39.915)
    assert float(bd_lon) == pytest.approx(116.41036949371029, abs=1e-12)
    assert float(bd_lat) == pytest.approx(39.92133699351021, abs=1e-12)
    bd_lon, bd_lat = wgs84_to_bd09(116.404, 39.915)
    assert float(bd_lon) == pytest.approx(116.41662724378733, abs=1e-12)
    assert float(bd_lat) == pytest.approx(39.922699552216216, abs=1e-12)


def test_tiananmen_shift_is_the_familiar_size() -> None:
    lon, lat = wgs84_to_gcj02(116.397128, 39.916527)
    assert float(lon) - 116.397128 == pytest.approx(0.00624, abs=0.0002)
    assert float(lat) - 39.916527 == pytest.approx(0.00140, abs=0.0002)


def test_vectorised_forward_matches_the_scalar_reference_everywhere() -> None:
    lon, lat = _china_grid()
    got_lon, got_lat = wgs84_to_gcj02(lon, lat)
    expected = np.array([_reference_wgs84_to_gcj02(x, y) for x, y in zip(lon, lat, strict=True)])
    assert np.max(np.abs(got_lon - expected[:, 0])) < 1e-12
    assert np.max(np.abs(got_lat - expected[:, 1])) < 1e-12


def test_offset_in_yunfu_is_540_to_650_m() -> None:
    # Documented for the seed data (data/boundaries README): GCJ-02 sits about 540–650 m
    # from WGS84 around Yunfu; Xinxing county centre and the Yunfu city centre.
    lon = np.array([112.2202, 112.0386, 111.5649])
    lat = np.array([22.6985, 22.9308, 22.7713])
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    shift_m = _distance_m(lon, lat, gcj_lon, gcj_lat)
    assert np.all((shift_m > 540) & (shift_m < 650)), shift_m
    # and the direction: east and south (dlon ≈ +0.0052°, dlat ≈ −0.0028°)
    assert np.all((gcj_lon - lon > 0.004) & (gcj_lon - lon < 0.006))
    assert np.all((gcj_lat - lat < -0.002) & (gcj_lat - lat > -0.0035))


# --- inverses ---------------------------------------------------------------------------


def test_gcj02_round_trip_is_within_a_centimetre_across_china() -> None:
    lon, lat = _china_grid()
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert np.max(_distance_m(lon, lat, back_lon, back_lat)) <= ROUND_TRIP_BOUND_M


def test_inverse_reproduces_the_gcj_input_through_the_forward_formula() -> None:
    gcj_lon, gcj_lat = _china_grid()
    wgs_lon, wgs_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    again_lon, again_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert np.max(np.abs(again_lon - gcj_lon)) < 1e-9
    assert np.max(np.abs(again_lat - gcj_lat)) < 1e-9


def test_one_step_approximation_would_break_the_bound_and_the_iteration_does_not() -> None:
    lon, lat = _china_grid()
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    one_lon, one_lat = _one_step_gcj02_to_wgs84(gcj_lon, gcj_lat)
    one_step_error_m = _distance_m(lon, lat, one_lon, one_lat)
    it_lon, it_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    iterative_error_m = _distance_m(lon, lat, it_lon, it_lat)
    assert np.max(one_step_error_m) > ROUND_TRIP_BOUND_M
    assert np.max(one_step_error_m) > 1.0  # it is metres off, not centimetres
    assert np.max(iterative_error_m) <= ROUND_TRIP_BOUND_M


def test_bd09_round_trip_is_within_a_centimetre_across_china() -> None:
    lon, lat = _china_grid()
    back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert np.max(_distance_m(lon, lat, back_lon, back_lat)) <= ROUND_TRIP_BOUND_M
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    back_gcj_lon, back_gcj_lat = bd09_to_gcj02(*gcj02_to_bd09(gcj_lon, gcj_lat))
    assert np.max(_distance_m(gcj_lon, gcj_lat, back_gcj_lon, back_gcj_lat)) <= 0.001


def test_baidus_published_one_step_bd09_inverse_is_only_a_start() -> None:
    # coordtransform's bd09togcj02(116.404, 39.915) = (116.39762729119315, 39.90865673957631)
    # is one step; ours agrees to a metre and then goes on to reproduce the input exactly.
    lon, lat = bd09_to_gcj02(116.404, 39.915)
    assert _distance_m(lon, lat, 116.39762729119315, 39.90865673957631) < 1.0
    fwd_lon, fwd_lat = gcj02_to_bd09(lon, lat)
    assert abs(float(fwd_lon) - 116.404) < 1e-9
    assert abs(float(fwd_lat) - 39.915) < 1e-9


def test_points_outside_china_are_not_shifted_by_gcj02() -> None:
    lon = np.array([2.3522, -74.006, 139.6917, 151.2093, 100.0])
    lat = np.array([48.8566, 40.7128, 35.6895, -33.8688, 60.0])
    assert np.all(out_of_china(lon, lat))
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    np.testing.assert_array_equal(gcj_lon, lon)
    np.testing.assert_array_equal(gcj_lat, lat)
    wgs_lon, wgs_lat = gcj02_to_wgs84(lon, lat)
    np.testing.assert_array_equal(wgs_lon, lon)
    np.testing.assert_array_equal(wgs_lat, lat)


def test_scalars_work_and_nan_does_not_hang() -> None:
    lon, lat = gcj02_to_wgs84(112.2254, 22.6957)
    assert math.isfinite(float(lon)) and math.isfinite(float(lat))
    nan_lon, nan_lat = gcj02_to_wgs84(np.array([np.nan, 112.0]), np.array([22.0, 22.0]))
    assert math.isnan(nan_lon[0]) and math.isfinite(nan_lon[1]) and math.isfinite(nan_lat[1])


# --- parse_crs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wgs84", WGS84),
        ("WGS84", WGS84),
        ("  cgcs2000 ", WGS84),
        ("CGCS2000", WGS84),
        ("EPSG:4326", WGS84),
        ("epsg:4490", WGS84),
        ("4326", WGS84),
        ("gcj02", GCJ02),
        ("GCJ02", GCJ02),
        ("bd09", BD09),
        ("BD09", BD09),
        ("EPSG:3857", Crs(kind="epsg", epsg=3857)),
        ("epsg:4547", Crs(kind="epsg", epsg=4547)),  # CGCS2000 / 3-degree GK CM 114E
        ("3857", Crs(kind="epsg", epsg=3857)),
    ],
)
def test_parse_crs_accepts(text: str, expected: Crs) -> None:
    crs = parse_crs(text)
    assert crs == expected
    assert parse_crs(crs.label) == crs


@pytest.mark.parametrize(
    "text", ["", "wgs", "mercator", "EPSG:", "EPSG:abc", "EPSG:999999", "gcj-02x", "EPSG:5773"]
)
def test_parse_crs_refuses_with_a_helpful_message(text: str) -> None:
    with pytest.raises(UnknownCRS) as caught:
        parse_crs(text)
    message = str(caught.value)
    assert "EPSG" in message


def test_unknown_name_lists_the_accepted_names() -> None:
    with pytest.raises(UnknownCRS, match=r"wgs84, cgcs2000, gcj02, bd09, EPSG:<code>"):
        parse_crs("Beijing54")


def test_labels() -> None:
    assert WGS84.label == "wgs84"
    assert parse_crs("epsg:3857").label == "EPSG:3857"
    assert parse_crs("gcj02").label == "gcj02"


# --- geometries ---------------------------------------------------------------------------


def _xinxing_square() -> Polygon:
    return box(112.20, 22.69, 112.23, 22.71)


def test_epsg3857_round_trip_through_shapely() -> None:
    mercator = parse_crs("EPSG:3857")
    geom_4326 = _xinxing_square()
    geom_3857 = from_wgs84(geom_4326, crs=mercator)
    x_min = geom_3857.bounds[0]
    assert x_min == pytest.approx(112.20 * 20037508.342789244 / 180.0, abs=0.01)
    back_4326 = to_wgs84(geom_3857, crs=mercator)
    np.testing.assert_allclose(
        shapely.get_coordinates(back_4326), shapely.get_coordinates(geom_4326), atol=1e-9
    )


def test_epsg_lat_lon_axis_order_is_never_exposed() -> None:
    # EPSG:4214 (Beijing 1954) declares lat/lon axis order; we still speak lon/lat.
    lon, lat = lonlat_to_wgs84(112.2, 22.7, crs=parse_crs("EPSG:4214"))
    assert abs(float(lon) - 112.2) < 0.01 and abs(float(lat) - 22.7) < 0.01


def test_gcj02_geometry_conversion_keeps_vertices_and_round_trips() -> None:
    geom_4326 = _xinxing_square()
    geom_gcj = from_wgs84(geom_4326, crs=GCJ02)
    assert shapely.get_num_coordinates(geom_gcj) == shapely.get_num_coordinates(geom_4326)
    shift = np.asarray(geom_gcj.centroid.coords[0]) - np.asarray(geom_4326.centroid.coords[0])
    assert 0.004 < shift[0] < 0.006 and -0.0035 < shift[1] < -0.002
    back = to_wgs84(geom_gcj, crs=GCJ02)
    np.testing.assert_allclose(
        shapely.get_coordinates(back), shapely.get_coordinates(geom_4326), atol=1e-9
    )
    back_bd = to_wgs84(from_wgs84(geom_4326, crs=BD09), crs=BD09)
    np.testing.assert_allclose(
        shapely.get_coordinates(back_bd), shapely.get_coordinates(geom_4326), atol=1e-9
    )


def test_wgs84_geometry_is_returned_as_is() -> None:
    geom = _xinxing_square()
    assert to_wgs84(geom, crs=parse_crs("cgcs2000")) is geom
    assert from_wgs84(geom, crs=WGS84) is geom


def test_lonlat_helpers_match_the_named_functions() -> None:
    lon, lat = lonlat_from_wgs84([112.2], [22.7], crs=GCJ02)
    ref_lon, ref_lat = wgs84_to_gcj02(112.2, 22.7)
    assert lon[0] == ref_lon and lat[0] == ref_lat


def test_unconvertible_coordinates_raise_invalid_input() -> None:
    # Latitude beyond the pole has no Web Mercator coordinates: pyproj gives inf.
    with pytest.raises(InvalidInput, match="cannot be converted from WGS84 to EPSG:3857"):
        from_wgs84(box(0, 89.0, 1, 91.0), crs=parse_crs("EPSG:3857"))


# --- metres ---------------------------------------------------------------------------------


def test_local_projection_areas_match_the_ellipsoid() -> None:
    cell_4326 = box(112.20, 22.69, 112.21, 22.70)  # about 1.03 km × 1.11 km
    metric = local_metric_crs(cell_4326)
    area_m2 = metric.to_metres(cell_4326).area
    geod_area_m2, _ = GEOD.geometry_area_perimeter(cell_4326)
    assert area_m2 == pytest.approx(abs(geod_area_m2), rel=1e-6)
    # equal area even 100 km away from the projection centre
    far_4326 = box(113.20, 22.69, 113.21, 22.70)
    far_area_m2, _ = GEOD.geometry_area_perimeter(far_4326)
    assert metric.to_metres(far_4326).area == pytest.approx(abs(far_area_m2), rel=1e-6)


def test_local_projection_distances_are_metres() -> None:
    origin = (112.2, 22.7)
    a_4326 = shapely.Point(112.20, 22.70)
    b_4326 = shapely.Point(112.25, 22.73)
    distance_m = project_to_metres(a_4326, origin=origin).distance(
        project_to_metres(b_4326, origin=origin)
    )
    _, _, geod_m = GEOD.inv(112.20, 22.70, 112.25, 22.73)
    assert distance_m == pytest.approx(geod_m, rel=1e-5)


def test_project_and_unproject_are_inverse() -> None:
    origin = (112.2, 22.7)
    geom_4326 = _xinxing_square()
    back = unproject_from_metres(project_to_metres(geom_4326, origin=origin), origin=origin)
    np.testing.assert_allclose(
        shapely.get_coordinates(back), shapely.get_coordinates(geom_4326), atol=1e-10
    )


def test_local_metric_refuses_degrees_that_are_not_degrees() -> None:
    with pytest.raises(InvalidInput):
        local_metric_crs(box(12_490_000, 2_590_000, 12_500_000, 2_600_000))
    with pytest.raises(InvalidInput):
        local_metric_crs(Polygon())
