"""Coordinate reference systems: names, GCJ-02/BD-09 offsets, EPSG transforms, metres.

What this module promises (DESIGN.md, "Coordinates"):

* Wangge stores WGS84 (EPSG:4326) lon/lat. CGCS2000 (EPSG:4490) is treated as the same
  datum: the two differ by centimetres, below anything a grid boundary resolves.
* Every function takes and returns coordinates in **lon/lat order** (x, y), never lat/lon.
* GCJ-02 ("Mars coordinates", used by AMap/Gaode and Tencent) and BD-09 (Baidu) are
  obfuscations defined only by a forward formula (WGS84 → GCJ-02 → BD-09). The way back
  is an **iterative inverse** that solves the forward formula to better than 1e-10°
  (about 0.01 mm); the popular one-step approximation is off by up to a few metres and
  is deliberately absent from this module.
* Metres are computed in a local Lambert azimuthal equal-area projection
  (:class:`LocalMetric`), never in degrees.

Pure: imports only the standard library, numpy, shapely and pyproj.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidInput, UnknownCRS

FloatArray = NDArray[np.float64]
CrsKind = Literal["wgs84", "gcj02", "bd09", "epsg"]

ACCEPTED_CRS_NAMES = ("wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:<code>")

# EPSG codes that *are* Wangge's storage CRS: WGS84 and CGCS2000 (identical at this scale).
_WGS84_EPSG_CODES = frozenset({4326, 4490})
_NAMED_KINDS: dict[str, CrsKind] = {
    "wgs84": "wgs84",
    "cgcs2000": "wgs84",
    "gcj02": "gcj02",
    "bd09": "bd09",
}
_EPSG_PATTERN = re.compile(r"^(?:epsg\s*:\s*)?(\d{1,6})$", re.IGNORECASE)


# --------------------------------------------------------------------------------------
# CRS names
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Crs:
    """A coordinate reference system Wangge can read.

    Canonical form: ``kind == "epsg"`` exactly when ``epsg`` is set, and EPSG:4326 /
    EPSG:4490 are always ``kind == "wgs84"`` with ``epsg is None``, so two ``Crs`` values
    compare equal exactly when they denote the same conversion.
    """

    kind: CrsKind
    epsg: int | None = None

    def __post_init__(self) -> None:
        if (self.kind == "epsg") != (self.epsg is not None):
            raise ValueError("Crs: epsg must be set exactly when kind == 'epsg'")
        if self.epsg in _WGS84_EPSG_CODES:
            raise ValueError("Crs: EPSG:4326/4490 must be written as kind='wgs84'")

    @property
    def label(self) -> str:
        """Name for messages and responses; :func:`parse_crs` reads it back."""
        return f"EPSG:{self.epsg}" if self.kind == "epsg" else self.kind

    @property
    def is_wgs84(self) -> bool:
        """True when coordinates in this CRS need no conversion before storage."""
        return self.kind == "wgs84"


WGS84 = Crs(kind="wgs84")
GCJ02 = Crs(kind="gcj02")
BD09 = Crs(kind="bd09")


def parse_crs(text: str) -> Crs:
    """Read a CRS name as users write it; case-insensitive, surrounding spaces ignored.

    Accepts ``wgs84``, ``cgcs2000`` (same as wgs84), ``gcj02``, ``bd09``, ``EPSG:<code>``
    and a bare EPSG code (``"3857"``). Raises :class:`UnknownCRS` for anything else,
    including EPSG codes pyproj does not know and EPSG codes that are not a horizontal
    (geographic or projected) CRS.
    """
    if not isinstance(text, str):
        raise UnknownCRS(_unknown_crs_message(repr(text)))
    cleaned = text.strip()
    named = _NAMED_KINDS.get(cleaned.lower())
    if named is not None:
        return Crs(kind=named)
    match = _EPSG_PATTERN.match(cleaned)
    if match is None:
        raise UnknownCRS(_unknown_crs_message(repr(text)))
    code = int(match.group(1))
    if code in _WGS84_EPSG_CODES:
        return WGS84
    _check_epsg_known(code=code)
    return Crs(kind="epsg", epsg=code)


def _unknown_crs_message(shown: str) -> str:
    accepted = ", ".join(ACCEPTED_CRS_NAMES)
    return f"unknown coordinate reference system {shown}; accepted: {accepted}"


@lru_cache(maxsize=256)
def _check_epsg_known(*, code: int) -> None:
    try:
        crs = pyproj.CRS.from_epsg(code)
    except CRSError as exc:
        raise UnknownCRS(
            f"EPSG:{code} is not a coordinate reference system pyproj knows; "
            f"accepted: {', '.join(ACCEPTED_CRS_NAMES)}"
        ) from exc
    # A vertical or geocentric CRS has no lon/lat meaning for a map boundary.
    if not (crs.is_geographic or crs.is_projected):
        raise UnknownCRS(f"EPSG:{code} ({crs.name}) is not a horizontal 2D CRS")


# --------------------------------------------------------------------------------------
# GCJ-02 and BD-09 (vectorised over numpy arrays; scalars give 0-d results)
# --------------------------------------------------------------------------------------

# Krasovsky 1940 ellipsoid, as the published GCJ-02 forward formula uses it.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
# Baidu's constant: pi * 3000 / 180.
_BD_X_PI = math.pi * 3000.0 / 180.0

# The inverse iterations stop once the forward formula reproduces the input to this
# many degrees (1e-10° ≈ 0.01 mm); they converge by a factor of ~1e-3 per step, so
# 3-4 steps suffice and the cap only guards against pathological input.
_INVERSE_TOLERANCE_DEG = 1e-10
_INVERSE_MAX_ITERATIONS = 20


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """True where GCJ-02 leaves a point unshifted: outside the customary rough box.

    The box (lon 72.004–137.8347, lat 0.8293–55.8271) is what the public formula uses;
    it is rough (it includes e.g. Seoul) but it is what GCJ-02 data providers apply.
    """
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    return np.asarray((lon_a < 72.004) | (lon_a > 137.8347) | (lat_a < 0.8293) | (lat_a > 55.8271))


def _gcj_delta_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _gcj_delta_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS84 lon/lat (degrees) → GCJ-02 lon/lat, by the public forward formula.

    Points :func:`out_of_china` are returned unchanged. Shapes broadcast like numpy.
    """
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    x = lon_a - 105.0
    y = lat_a - 35.0
    d_lat = _gcj_delta_lat(x, y)
    d_lon = _gcj_delta_lon(x, y)
    rad_lat = lat_a / 180.0 * np.pi
    magic = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_GCJ_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    outside = out_of_china(lon_a, lat_a)
    return (
        np.asarray(np.where(outside, lon_a, lon_a + d_lon), dtype=np.float64),
        np.asarray(np.where(outside, lat_a, lat_a + d_lat), dtype=np.float64),
    )


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 lon/lat → BD-09 lon/lat, by Baidu's public forward formula (applied worldwide)."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _BD_X_PI)
    return (
        np.asarray(z * np.cos(theta) + 0.0065, dtype=np.float64),
        np.asarray(z * np.sin(theta) + 0.006, dtype=np.float64),
    )


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS84 lon/lat → BD-09 lon/lat (through GCJ-02)."""
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    return gcj02_to_bd09(gcj_lon, gcj_lat)


def _bd09_to_gcj02_one_step(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    # Baidu's published inverse. It evaluates the perturbation at the shifted point, so
    # alone it is off by up to ~1 m; it only seeds the iteration in bd09_to_gcj02.
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta), z * np.sin(theta)


ForwardFn = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


def _invert(
    forward: ForwardFn,
    *,
    target_lon: FloatArray,
    target_lat: FloatArray,
    start_lon: FloatArray,
    start_lat: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(lon, lat) == target`` by fixed-point iteration from ``start``.

    Each step moves the estimate by the forward residual. The offsets vary slowly with
    position (derivative ~1e-3), so the error shrinks about a thousandfold per step.
    """
    lon = start_lon.copy()
    lat = start_lat.copy()
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fwd_lon, fwd_lat = forward(lon, lat)
        res_lon = fwd_lon - target_lon
        res_lat = fwd_lat - target_lat
        lon = lon - res_lon
        lat = lat - res_lat
        residual = np.maximum(np.abs(res_lon), np.abs(res_lat))
        # NaN input stays NaN; it must not keep the loop running.
        if not np.any(residual[np.isfinite(residual)] > _INVERSE_TOLERANCE_DEG):
            break
    return lon, lat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 lon/lat → WGS84 lon/lat by the iterative inverse of :func:`wgs84_to_gcj02`.

    Promise: ``wgs84_to_gcj02(*gcj02_to_wgs84(p))`` reproduces ``p`` to 1e-10° (≈ 0.01 mm),
    so the round trip error is far below DESIGN's 0.01 m. Points outside China pass
    through unchanged.
    """
    target_lon = np.asarray(lon, dtype=np.float64)
    target_lat = np.asarray(lat, dtype=np.float64)
    return _invert(
        wgs84_to_gcj02,
        target_lon=target_lon,
        target_lat=target_lat,
        start_lon=target_lon,
        start_lat=target_lat,
    )


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 lon/lat → GCJ-02 lon/lat by the iterative inverse of :func:`gcj02_to_bd09`.

    Baidu's own one-step inverse only seeds the iteration (alone it errs by ~1 m).
    """
    target_lon = np.asarray(lon, dtype=np.float64)
    target_lat = np.asarray(lat, dtype=np.float64)
    start_lon, start_lat = _bd09_to_gcj02_one_step(target_lon, target_lat)
    return _invert(
        gcj02_to_bd09,
        target_lon=target_lon,
        target_lat=target_lat,
        start_lon=start_lon,
        start_lat=start_lat,
    )


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 lon/lat → WGS84 lon/lat (both inverses iterative)."""
    gcj_lon, gcj_lat = bd09_to_gcj02(lon, lat)
    return gcj02_to_wgs84(gcj_lon, gcj_lat)


# --------------------------------------------------------------------------------------
# Coordinates and geometries in any accepted CRS ↔ WGS84
# --------------------------------------------------------------------------------------

_TO_WGS84: dict[CrsKind, ForwardFn] = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS84: dict[CrsKind, ForwardFn] = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


@lru_cache(maxsize=64)
def _epsg_transformer(*, code: int, to_wgs84: bool) -> pyproj.Transformer:
    source, target = (f"EPSG:{code}", "EPSG:4326")
    if not to_wgs84:
        source, target = target, source
    # always_xy: lon/lat (x/y) order whatever axis order the EPSG definition declares.
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def _epsg_pair(*, code: int, to_wgs84: bool) -> ForwardFn:
    transformer = _epsg_transformer(code=code, to_wgs84=to_wgs84)

    def convert(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        out_x, out_y = transformer.transform(x, y)
        out_x_a = np.asarray(out_x, dtype=np.float64)
        out_y_a = np.asarray(out_y, dtype=np.float64)
        if not (np.all(np.isfinite(out_x_a)) and np.all(np.isfinite(out_y_a))):
            direction = f"from EPSG:{code} to WGS84" if to_wgs84 else f"from WGS84 to EPSG:{code}"
            raise InvalidInput(
                f"some coordinates cannot be converted {direction} "
                "(outside the area the CRS is defined for?)"
            )
        return out_x_a, out_y_a

    return convert


def _converter(*, crs: Crs, to_wgs84: bool) -> ForwardFn | None:
    if crs.is_wgs84:
        return None
    if crs.epsg is not None:
        return _epsg_pair(code=crs.epsg, to_wgs84=to_wgs84)
    table = _TO_WGS84 if to_wgs84 else _FROM_WGS84
    return table[crs.kind]


def lonlat_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, crs: Crs) -> tuple[FloatArray, FloatArray]:
    """Coordinates (x/lon, y/lat) in ``crs`` → WGS84 lon/lat degrees, as float arrays."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    convert = _converter(crs=crs, to_wgs84=True)
    return (lon_a, lat_a) if convert is None else convert(lon_a, lat_a)


def lonlat_from_wgs84(lon: ArrayLike, lat: ArrayLike, *, crs: Crs) -> tuple[FloatArray, FloatArray]:
    """WGS84 lon/lat degrees → coordinates (x/lon, y/lat) in ``crs``, as float arrays."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    convert = _converter(crs=crs, to_wgs84=False)
    return (lon_a, lat_a) if convert is None else convert(lon_a, lat_a)


def _coords_fn(convert: ForwardFn) -> Callable[[FloatArray], FloatArray]:
    def on_coords(coords: FloatArray) -> FloatArray:
        x, y = convert(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return on_coords


def _transform_geometry(geom: BaseGeometry, convert: ForwardFn) -> BaseGeometry:
    # One vectorised call for every vertex of the geometry; output is 2D (z dropped).
    return shapely.transform(geom, _coords_fn(convert))


def to_wgs84(geom: BaseGeometry, *, crs: Crs) -> BaseGeometry:
    """A shapely geometry in ``crs`` → the same geometry in WGS84 lon/lat (2D).

    Vertex count and order are preserved; validity is not re-checked (a conversion can,
    rarely, make a barely-valid polygon invalid: validate after converting).
    WGS84 input is returned as is. Raises :class:`InvalidInput` when pyproj cannot
    convert some coordinate.
    """
    convert = _converter(crs=crs, to_wgs84=True)
    return geom if convert is None else _transform_geometry(geom, convert)


def from_wgs84(geom: BaseGeometry, *, crs: Crs) -> BaseGeometry:
    """A shapely geometry in WGS84 lon/lat → the same geometry in ``crs`` (2D)."""
    convert = _converter(crs=crs, to_wgs84=False)
    return geom if convert is None else _transform_geometry(geom, convert)


# --------------------------------------------------------------------------------------
# Metres: a local equal-area projection
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalMetric:
    """A Lambert azimuthal equal-area projection (WGS84 ellipsoid, metres) centred on
    ``(lon_0, lat_0)``.

    Areas are exact anywhere; distances are exact at the centre and stretched by less
    than 1e-5 within 50 km of it (less than 1e-3 within 500 km), so the 1 m / 1 m²
    tolerances of boundary checks mean what they say over a city or a province.
    """

    lon_0: float
    lat_0: float

    @property
    def proj4(self) -> str:
        return (
            f"+proj=laea +lat_0={self.lat_0} +lon_0={self.lon_0} "
            "+x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
        )

    def to_metres(self, geom_4326: BaseGeometry) -> BaseGeometry:
        """WGS84 lon/lat geometry → the same geometry in this projection, metres."""
        return _transform_geometry(geom_4326, self._pair(forward=True))

    def to_wgs84(self, geom_m: BaseGeometry) -> BaseGeometry:
        """Geometry in this projection (metres) → WGS84 lon/lat."""
        return _transform_geometry(geom_m, self._pair(forward=False))

    def many_to_metres(self, geoms_4326: NDArray[np.object_]) -> NDArray[np.object_]:
        """An array of WGS84 geometries → metres, in one vectorised call."""
        return np.asarray(shapely.transform(geoms_4326, _coords_fn(self._pair(forward=True))))

    def point_to_wgs84(self, x_m: float, y_m: float) -> tuple[float, float]:
        """One projected point (metres) → (lon, lat) degrees."""
        lon, lat = self._pair(forward=False)(
            np.asarray([x_m], dtype=np.float64), np.asarray([y_m], dtype=np.float64)
        )
        return float(lon[0]), float(lat[0])

    def _pair(self, *, forward: bool) -> ForwardFn:
        transformer = _laea_transformer(lon_0=self.lon_0, lat_0=self.lat_0, forward=forward)

        def convert(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
            out_x, out_y = transformer.transform(x, y)
            return np.asarray(out_x, dtype=np.float64), np.asarray(out_y, dtype=np.float64)

        return convert


@lru_cache(maxsize=64)
def _laea_transformer(*, lon_0: float, lat_0: float, forward: bool) -> pyproj.Transformer:
    laea = pyproj.CRS.from_proj4(LocalMetric(lon_0=lon_0, lat_0=lat_0).proj4)
    wgs84 = pyproj.CRS.from_epsg(4326)
    source, target = (wgs84, laea) if forward else (laea, wgs84)
    return pyproj.Transformer.from_crs(source, target, always_xy=True)


def local_metric_crs(geom_4326: BaseGeometry) -> LocalMetric:
    """The :class:`LocalMetric` centred on the middle of ``geom_4326``'s bounding box.

    The centre is rounded to 1e-4° (≈ 10 m) so that nearby data shares a cached
    transformer; the rounding does not affect accuracy. Raises :class:`InvalidInput`
    for an empty geometry or coordinates outside lon/lat range.
    """
    if geom_4326.is_empty:
        raise InvalidInput("cannot choose a metric projection for an empty geometry")
    min_lon, min_lat, max_lon, max_lat = (float(v) for v in geom_4326.bounds)
    if not (-180.0 <= min_lon <= max_lon <= 180.0 and -90.0 <= min_lat <= max_lat <= 90.0):
        raise InvalidInput(
            "coordinates are not WGS84 lon/lat degrees "
            f"(bounds {min_lon}, {min_lat}, {max_lon}, {max_lat})"
        )
    return LocalMetric(
        lon_0=round((min_lon + max_lon) / 2.0, 4), lat_0=round((min_lat + max_lat) / 2.0, 4)
    )


def project_to_metres(geom_4326: BaseGeometry, *, origin: tuple[float, float]) -> BaseGeometry:
    """WGS84 geometry → equal-area metres in the LAEA projection centred on ``origin``
    (lon, lat)."""
    return LocalMetric(lon_0=origin[0], lat_0=origin[1]).to_metres(geom_4326)


def unproject_from_metres(geom_m: BaseGeometry, *, origin: tuple[float, float]) -> BaseGeometry:
    """Inverse of :func:`project_to_metres` with the same ``origin``."""
    return LocalMetric(lon_0=origin[0], lat_0=origin[1]).to_wgs84(geom_m)
