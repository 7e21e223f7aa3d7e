"""Partition a polygon into parts that hold balanced shares of its points.

Used to draw grids (300–500 households) and micro-grids (30–50 households) from
household or building points, and township/community cells from seed points.

Every geometry returned here lies on one precision grid (``GRID_SIZE_DEG``,
1e-6° ≈ 0.1 m, the 6 decimals GeoJSON output keeps): all overlay operations run
with shapely's ``grid_size``, so the stored, rounded polygons are exactly the
polygons the invariants were checked on, and they are valid.

Cut lines are axis-aligned and placed strictly between two point coordinates on
that grid, so no point lies on a cut line and every point belongs to exactly one
part. Parts made by cutting one polygon tile it: siblings share their cut edges
exactly, and their union is the input up to the snapping of the vertices where a
cut crosses the input's boundary (≤ 0.7e-6°).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import MultiPolygon, Polygon, box

from geo.errors import InvalidInput

GRID_SIZE_DEG = 1e-6
# Metres per degree near the equator; enough to compare extents of a piece.
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQUATOR = 111_320.0
# A cut across the shorter axis is accepted only if it balances this much
# better (as a fraction of the piece's weight): long thin parts are hard to walk.
_SHORT_AXIS_PENALTY = 0.1
# Half-plane boxes reach this far beyond the piece (degrees; an integer keeps
# the box corners on the precision grid).
_BOX_PAD_DEG = 1.0


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a partition.

    ``geom_4326`` is a valid, non-empty MultiPolygon (lon/lat, EPSG:4326) on the
    precision grid; a part may hold several pieces when the input is not convex.
    ``indices`` are the (ascending) indices of the input points inside it and
    ``weight`` is the sum of their weights (their count when unweighted).
    """

    geom_4326: MultiPolygon
    indices: NDArray[np.intp]
    weight: float


@dataclass(frozen=True, slots=True)
class _Cut:
    axis: int
    value_deg: float
    left: NDArray[np.intp]
    right: NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class _Points:
    lonlat: NDArray[np.float64]
    weights: NDArray[np.float64]
    grid_size_deg: float


def bisect_partition(
    polygon_4326: Polygon | MultiPolygon,
    points_lonlat: ArrayLike,
    *,
    target_parts: int,
    weights: ArrayLike | None = None,
    grid_size_deg: float = GRID_SIZE_DEG,
) -> list[Part]:
    """Cut ``polygon_4326`` into ``target_parts`` parts holding equal shares of points.

    Recursive bisection: a piece meant to become ``k`` parts is cut along the
    longer axis (in metres) of its points, between the sorted coordinates where
    the lower side holds ``floor(k/2)/k`` of the piece's weight, and the lower
    side becomes ``floor(k/2)`` parts, the upper one the rest.

    Promises, for points strictly inside the polygon:

    * the parts tile the polygon (no overlap, union == input up to snapping);
    * every point is in exactly one part, strictly inside it (not on a cut);
    * unweighted, with distinct coordinates, each part's count differs from
      ``n / target_parts`` by at most 1 per level of bisection;
    * points sharing the cut coordinate are never separated (a building's
      households stay together), so with ties or ``weights`` the balance is
      only as good as the granularity allows;
    * fewer parts come back when there are fewer separable points than parts.

    Pure and deterministic. Part order: lower (west/south) side first.
    """
    if target_parts < 1:
        raise InvalidInput(f"target_parts must be ≥ 1, got {target_parts}")
    points = _points(points_lonlat, weights=weights, grid_size_deg=grid_size_deg)
    root = snap_multipolygon(polygon_4326, grid_size_deg=grid_size_deg)
    everything = np.arange(points.lonlat.shape[0], dtype=np.intp)
    return _bisect(root, everything, parts=target_parts, points=points)


def band_partition(
    polygon_4326: Polygon | MultiPolygon,
    points_lonlat: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    min_weight: float,
    max_weight: float,
    target_weight: float | None = None,
    grid_size_deg: float = GRID_SIZE_DEG,
) -> list[Part]:
    """Cut ``polygon_4326`` into parts whose weight lies in ``[min_weight, max_weight]``.

    Like ``bisect_partition``, but the number of parts is not fixed: a piece
    heavier than ``max_weight`` is meant to become ``k`` parts, ``k`` the count
    nearest ``weight / target_weight`` that keeps the mean share in the band,
    and the cut is chosen among both axes so that both sides can still be split
    into in-band parts (each side re-chooses its own ``k``). This absorbs the
    imbalance that indivisible heavy points (big buildings) cause.

    Same tiling and point promises as ``bisect_partition``. The band is met
    whenever the weights allow it; a piece of total weight below ``min_weight``
    stays one part, and a piece that cannot be cut in-band keeps the best cut.
    """
    if not 0 < min_weight <= max_weight:
        raise InvalidInput(f"need 0 < min_weight ≤ max_weight, got {min_weight}, {max_weight}")
    band = (float(min_weight), float(max_weight))
    target = float(target_weight) if target_weight else (band[0] + band[1]) / 2
    points = _points(points_lonlat, weights=weights, grid_size_deg=grid_size_deg)
    root = snap_multipolygon(polygon_4326, grid_size_deg=grid_size_deg)
    everything = np.arange(points.lonlat.shape[0], dtype=np.intp)
    return _band(root, everything, band=band, target=target, points=points)


def voronoi_partition(
    polygon_4326: Polygon | MultiPolygon,
    seeds_lonlat: ArrayLike,
    *,
    grid_size_deg: float = GRID_SIZE_DEG,
) -> list[MultiPolygon]:
    """The Voronoi cell of each seed, clipped to ``polygon_4326``, in seed order.

    The cells tile the polygon (no overlap beyond snapping noise, union == input).
    A cell may hold pieces disconnected from its seed where the polygon is not
    convex; they stay with that seed. Seeds must be distinct; a seed outside the
    polygon may get an empty MultiPolygon.
    """
    seeds = np.asarray(seeds_lonlat, dtype=np.float64).reshape(-1, 2)
    if seeds.shape[0] == 0:
        raise InvalidInput("voronoi_partition needs at least one seed")
    if np.unique(seeds, axis=0).shape[0] != seeds.shape[0]:
        raise InvalidInput("voronoi_partition needs distinct seeds")
    outline = snap_multipolygon(polygon_4326, grid_size_deg=grid_size_deg)
    if seeds.shape[0] == 1:
        return [outline]
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=outline, ordered=True)
    )
    clipped = shapely.intersection(cells, outline, grid_size=grid_size_deg)
    return [as_multipolygon(cell, grid_size_deg=grid_size_deg) for cell in clipped]


def snap_multipolygon(
    geom: shapely.Geometry, *, grid_size_deg: float = GRID_SIZE_DEG
) -> MultiPolygon:
    """``geom``'s polygonal part snapped to the precision grid, as a valid MultiPolygon."""
    return as_multipolygon(shapely.set_precision(geom, grid_size_deg), grid_size_deg=grid_size_deg)


def as_multipolygon(
    geom: shapely.Geometry, *, grid_size_deg: float = GRID_SIZE_DEG
) -> MultiPolygon:
    """The non-empty polygons of ``geom`` (any type) as one valid MultiPolygon.

    Overlays can return collections with stray lines or points where pieces
    touch; only areas count here.
    """
    polygons = [p for p in _flat_polygons(geom) if not p.is_empty and p.area > 0]
    result = MultiPolygon(polygons)
    if not result.is_valid:
        # Pieces of one overlay never overlap; this only guards odd inputs.
        fixed = shapely.set_precision(shapely.make_valid(result), grid_size_deg)
        result = MultiPolygon([p for p in _flat_polygons(fixed) if p.area > 0])
    return result


def metric_extent_m(lonlat: NDArray[np.float64]) -> tuple[float, float]:
    """East-west and north-south extent of points in metres (local approximation)."""
    if lonlat.shape[0] == 0:
        return 0.0, 0.0
    lo, hi = lonlat.min(axis=0), lonlat.max(axis=0)
    cos_lat = math.cos(math.radians(float(lo[1] + hi[1]) / 2))
    return (
        float(hi[0] - lo[0]) * M_PER_DEG_LON_EQUATOR * cos_lat,
        float(hi[1] - lo[1]) * M_PER_DEG_LAT,
    )


def _flat_polygons(geom: shapely.Geometry) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for part in geom.geoms for p in _flat_polygons(part)]
    return []


def _points(
    points_lonlat: ArrayLike, *, weights: ArrayLike | None, grid_size_deg: float
) -> _Points:
    lonlat = np.asarray(points_lonlat, dtype=np.float64).reshape(-1, 2)
    if weights is None:
        w = np.ones(lonlat.shape[0], dtype=np.float64)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != lonlat.shape[0]:
            raise InvalidInput(f"{w.shape[0]} weights for {lonlat.shape[0]} points")
        if (w <= 0).any():
            raise InvalidInput("weights must be positive")
    if not np.isfinite(lonlat).all():
        raise InvalidInput("point coordinates must be finite")
    return _Points(lonlat=lonlat, weights=w, grid_size_deg=grid_size_deg)


def _leaf(geom: MultiPolygon, idx: NDArray[np.intp], points: _Points) -> Part:
    return Part(geom_4326=geom, indices=idx, weight=float(points.weights[idx].sum()))


def _bisect(
    geom: MultiPolygon, idx: NDArray[np.intp], *, parts: int, points: _Points
) -> list[Part]:
    if parts <= 1 or idx.size <= 1:
        return [_leaf(geom, idx, points)]
    desired = float(points.weights[idx].sum()) * (parts // 2) / parts
    cut = _longer_axis_cut(idx, desired=desired, points=points)
    if cut is None:
        return [_leaf(geom, idx, points)]
    lower, upper = _split(geom, cut=cut, grid_size_deg=points.grid_size_deg)
    return _bisect(lower, cut.left, parts=parts // 2, points=points) + _bisect(
        upper, cut.right, parts=parts - parts // 2, points=points
    )


def _band(
    geom: MultiPolygon,
    idx: NDArray[np.intp],
    *,
    band: tuple[float, float],
    target: float,
    points: _Points,
) -> list[Part]:
    total = float(points.weights[idx].sum())
    parts = band_part_count(total, band=band, target=target)
    if parts <= 1:
        return [_leaf(geom, idx, points)]
    cut = _band_cut(idx, desired=total * (parts // 2) / parts, band=band, points=points)
    if cut is None:
        return [_leaf(geom, idx, points)]
    lower, upper = _split(geom, cut=cut, grid_size_deg=points.grid_size_deg)
    return _band(lower, cut.left, band=band, target=target, points=points) + _band(
        upper, cut.right, band=band, target=target, points=points
    )


def band_part_count(total: float, *, band: tuple[float, float], target: float) -> int:
    """How many parts a piece of weight ``total`` should become.

    The count nearest ``total / target`` whose mean share lies in ``band``; when
    none does (e.g. 550 for 300–500), the count that violates the band least.
    """
    low, high = band
    if total <= high:
        return 1
    fewest, most = math.ceil(total / high), math.floor(total / low)
    if fewest <= most:
        return min(max(round(total / target), fewest), most)
    over = (total / most - high) / high if most >= 1 else math.inf
    under = (low - total / fewest) / low
    return most if most >= 1 and over <= under else fewest


def _splittable(weight: NDArray[np.float64], band: tuple[float, float]) -> NDArray[np.bool_]:
    """Whether a piece of each weight can become parts that all lie in the band."""
    low, high = band
    return (weight >= low) & (np.floor(weight / low) >= np.ceil(weight / high))


def _axis_candidates(
    idx: NDArray[np.intp], *, axis: int, points: _Points
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp], NDArray[np.intp]]:
    """Grid-snapped cut values strictly between distinct coordinates along ``axis``.

    Returns (cut values, weight below each cut, sort order of ``idx``, position
    in that order of the last point below each cut).
    """
    coord = points.lonlat[idx, axis]
    order = np.argsort(coord, kind="stable").astype(np.intp)
    sorted_coord = coord[order]
    below = np.cumsum(points.weights[idx][order])
    scale = round(1 / points.grid_size_deg)
    mids = np.round((sorted_coord[:-1] + sorted_coord[1:]) / 2 * scale) / scale
    strict = (sorted_coord[:-1] < mids) & (mids < sorted_coord[1:])
    position = np.nonzero(strict)[0].astype(np.intp)
    return mids[position], below[position], order, position


def _make_cut(
    idx: NDArray[np.intp], *, axis: int, value: float, order: NDArray[np.intp], position: int
) -> _Cut:
    return _Cut(
        axis=axis,
        value_deg=value,
        left=np.sort(idx[order[: position + 1]]),
        right=np.sort(idx[order[position + 1 :]]),
    )


def _axes_longest_first(idx: NDArray[np.intp], points: _Points) -> list[int]:
    width_m, height_m = metric_extent_m(points.lonlat[idx])
    return [0, 1] if width_m >= height_m else [1, 0]


def _longer_axis_cut(idx: NDArray[np.intp], *, desired: float, points: _Points) -> _Cut | None:
    """The cut nearest ``desired`` weight below it, on the longer axis if it has one."""
    for axis in _axes_longest_first(idx, points):
        values, below, order, position = _axis_candidates(idx, axis=axis, points=points)
        if values.size:
            best = int(np.argmin(np.abs(below - desired)))
            return _make_cut(
                idx, axis=axis, value=float(values[best]), order=order, position=int(position[best])
            )
    return None


def _band_cut(
    idx: NDArray[np.intp], *, desired: float, band: tuple[float, float], points: _Points
) -> _Cut | None:
    """The best cut on either axis: both sides splittable in-band first, then balance."""
    total = float(points.weights[idx].sum())
    best: tuple[tuple[int, float], _Cut] | None = None
    for rank, axis in enumerate(_axes_longest_first(idx, points)):
        values, below, order, position = _axis_candidates(idx, axis=axis, points=points)
        if not values.size:
            continue
        bad_sides = (~_splittable(below, band)).astype(np.int64) + (
            ~_splittable(total - below, band)
        ).astype(np.int64)
        imbalance = np.abs(below - desired) / total + rank * _SHORT_AXIS_PENALTY
        # lexsort: last key is primary — fewest out-of-band sides, then balance.
        pick = int(np.lexsort((imbalance, bad_sides))[0])
        score = (int(bad_sides[pick]), float(imbalance[pick]))
        if best is None or score < best[0]:
            cut = _make_cut(
                idx, axis=axis, value=float(values[pick]), order=order, position=int(position[pick])
            )
            best = (score, cut)
    return None if best is None else best[1]


def _split(
    geom: MultiPolygon, *, cut: _Cut, grid_size_deg: float
) -> tuple[MultiPolygon, MultiPolygon]:
    """The parts of ``geom`` below and above the cut line (both kept whole: all pieces)."""
    xmin, ymin, xmax, ymax = (float(v) for v in geom.bounds)
    pad = _BOX_PAD_DEG
    if cut.axis == 0:
        lower_box = box(xmin - pad, ymin - pad, cut.value_deg, ymax + pad)
        upper_box = box(cut.value_deg, ymin - pad, xmax + pad, ymax + pad)
    else:
        lower_box = box(xmin - pad, ymin - pad, xmax + pad, cut.value_deg)
        upper_box = box(xmin - pad, cut.value_deg, xmax + pad, ymax + pad)
    halves = shapely.intersection(geom, [lower_box, upper_box], grid_size=grid_size_deg)
    return (
        as_multipolygon(halves[0], grid_size_deg=grid_size_deg),
        as_multipolygon(halves[1], grid_size_deg=grid_size_deg),
    )
