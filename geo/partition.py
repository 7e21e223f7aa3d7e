"""Partition a polygon into parts that hold balanced shares of its points.

Used to draw grids (300–500 households) and micro-grids (30–50 households) from
household or building points, and township/community cells from seed points.

Two stages, so that a whole hierarchy can share one set of vertices:

1. *Plan* (``plan_bisect``, ``plan_band``, ``plan_voronoi``): decide the parts in
   floating point. Cut lines are axis-aligned and placed strictly between two
   point coordinates, on the precision grid, so no point lies on a cut line and
   every point belongs to exactly one part. A plan keeps each part's unsnapped
   area (``pieces_4326``) and the cut linework.
2. *Snap* (``node_coverage``): node the outline and all cut linework of every
   plan together, once, with snap rounding on the precision grid
   (``GRID_SIZE_DEG``, 1e-6° ≈ 0.1 m, the 6 decimals GeoJSON output keeps), and
   polygonize. Each face goes to the piece holding its interior point, and an
   area's geometry is the union of its faces.

Clipping each part separately with ``grid_size`` would round the vertex where a
cut meets a long slanted edge differently in the part and in its parent or
neighbour: slivers of hundreds of m² along a 10 km Voronoi edge. With one noding,
siblings share their edges exactly, parents are exactly the union of their
children, and everything is valid and on the grid. The price: the input outline
gains a vertex, snapped by ≤ 0.7e-6°, wherever a cut meets it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidInput

GRID_SIZE_DEG = 1e-6
# Metres per degree near the equator; enough to compare extents of a piece.
M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQUATOR = 111_320.0
# A cut across the shorter axis is accepted only if it balances this much
# better (as a fraction of the piece's weight): long thin parts are hard to walk.
_SHORT_AXIS_PENALTY = 0.1
# Half-plane boxes and cut lines reach this far beyond the piece (degrees).
_BOX_PAD_DEG = 1.0

GeomArray = NDArray[np.object_]


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
class Plan:
    """A partition decided in floating point, before snapping.

    Part ``i`` covers ``pieces_4326[i]`` (unsnapped) and holds the points
    ``indices[i]`` of total weight ``weights[i]``; ``cuts_4326`` is the linework
    that separates the parts inside the polygon. Feed the cuts of one or more
    plans to ``node_coverage`` to get the snapped geometry.
    """

    pieces_4326: tuple[BaseGeometry, ...]
    indices: tuple[NDArray[np.intp], ...]
    weights: tuple[float, ...]
    cuts_4326: tuple[BaseGeometry, ...]


@dataclass(frozen=True)
class Coverage:
    """Snapped faces of noded linework, each owned by one planned piece.

    Faces of different pieces share their edges exactly, so the union of any set
    of pieces is exact (``shapely.coverage_union_all``).
    """

    faces: GeomArray
    owner: NDArray[np.intp]
    grid_size_deg: float

    def union_of(self, pieces: Iterable[int]) -> MultiPolygon:
        """The snapped area of the given pieces, as one valid MultiPolygon."""
        wanted = np.isin(self.owner, np.fromiter(pieces, dtype=np.intp))
        return self._union(self.faces[wanted])

    def union_of_range(self, start: int, stop: int) -> MultiPolygon:
        """The snapped area of pieces ``start`` … ``stop - 1`` (faces are sorted by owner)."""
        lo, hi = np.searchsorted(self.owner, [start, stop], side="left")
        return self._union(self.faces[lo:hi])

    def _union(self, faces: GeomArray) -> MultiPolygon:
        if faces.size == 0:
            return MultiPolygon()
        union = shapely.coverage_union_all(faces)
        return as_multipolygon(union, grid_size_deg=self.grid_size_deg)


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


@dataclass(frozen=True, slots=True)
class _Leaf:
    piece: BaseGeometry
    indices: NDArray[np.intp]
    weight: float


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

    Promises, for points strictly inside the polygon (≥ 1e-6° from its edge):

    * the parts tile the polygon: no overlap, no gap, union == input except
      where a cut meets a slanted edge (that vertex is snapped, ≤ 0.7e-6°);
    * every point is in exactly one part, strictly inside it (not on a cut);
    * unweighted, with distinct coordinates, each part's count differs from
      ``n / target_parts`` by at most 1 per level of bisection;
    * points sharing the cut coordinate are never separated (a building's
      households stay together), so with ties or ``weights`` the balance is
      only as good as the granularity allows;
    * fewer parts come back when there are fewer separable points than parts.

    Pure and deterministic. Part order: lower (west/south) side first.
    """
    outline = snap_multipolygon(polygon_4326, grid_size_deg=grid_size_deg)
    plan = plan_bisect(
        outline, points_lonlat, target_parts=target_parts, weights=weights,
        grid_size_deg=grid_size_deg,
    )  # fmt: skip
    return _snapped_parts(outline, plan, grid_size_deg=grid_size_deg)


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

    See ``plan_band``; same tiling and point promises as ``bisect_partition``.
    """
    outline = snap_multipolygon(polygon_4326, grid_size_deg=grid_size_deg)
    plan = plan_band(
        outline, points_lonlat, weights=weights, min_weight=min_weight,
        max_weight=max_weight, target_weight=target_weight, grid_size_deg=grid_size_deg,
    )  # fmt: skip
    return _snapped_parts(outline, plan, grid_size_deg=grid_size_deg)


def voronoi_partition(
    polygon_4326: Polygon | MultiPolygon,
    seeds_lonlat: ArrayLike,
    *,
    grid_size_deg: float = GRID_SIZE_DEG,
) -> list[MultiPolygon]:
    """The Voronoi cell of each seed, clipped to ``polygon_4326``, in seed order.

    The cells tile the polygon exactly (same promise as ``bisect_partition``).
    A cell may hold pieces disconnected from its seed where the polygon is not
    convex; they stay with that seed. Seeds must be distinct; a seed outside the
    polygon may get an empty MultiPolygon.
    """
    outline = snap_multipolygon(polygon_4326, grid_size_deg=grid_size_deg)
    plan = plan_voronoi(outline, seeds_lonlat)
    coverage = node_coverage(
        outline, linework=plan.cuts_4326, pieces=plan.pieces_4326, grid_size_deg=grid_size_deg
    )
    return [coverage.union_of([i]) for i in range(len(plan.pieces_4326))]


def plan_bisect(
    polygon_4326: BaseGeometry,
    points_lonlat: ArrayLike,
    *,
    target_parts: int,
    weights: ArrayLike | None = None,
    grid_size_deg: float = GRID_SIZE_DEG,
) -> Plan:
    """The cuts of ``bisect_partition``, unsnapped (see ``Plan``)."""
    if target_parts < 1:
        raise InvalidInput(f"target_parts must be ≥ 1, got {target_parts}")
    points = _points(points_lonlat, weights=weights, grid_size_deg=grid_size_deg)
    cuts: list[BaseGeometry] = []
    everything = np.arange(points.lonlat.shape[0], dtype=np.intp)
    leaves = _bisect(polygon_4326, everything, parts=target_parts, points=points, cuts=cuts)
    return _plan(leaves, cuts)


def plan_band(
    polygon_4326: BaseGeometry,
    points_lonlat: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    min_weight: float,
    max_weight: float,
    target_weight: float | None = None,
    grid_size_deg: float = GRID_SIZE_DEG,
) -> Plan:
    """Plan parts whose weight lies in ``[min_weight, max_weight]`` where possible.

    Like ``plan_bisect``, but the number of parts is not fixed: a piece heavier
    than ``max_weight`` is meant to become ``k`` parts, ``k`` the count nearest
    ``weight / target_weight`` that keeps the mean share in the band, and the cut
    is chosen among both axes so that both sides can still be split into in-band
    parts (each side re-chooses its own ``k``). This absorbs the imbalance that
    indivisible heavy points (big buildings) cause. A piece lighter than
    ``min_weight`` stays one part; one that cannot be cut in-band keeps the best
    cut.
    """
    if not 0 < min_weight <= max_weight:
        raise InvalidInput(f"need 0 < min_weight ≤ max_weight, got {min_weight}, {max_weight}")
    band = (float(min_weight), float(max_weight))
    target = float(target_weight) if target_weight else (band[0] + band[1]) / 2
    points = _points(points_lonlat, weights=weights, grid_size_deg=grid_size_deg)
    cuts: list[BaseGeometry] = []
    everything = np.arange(points.lonlat.shape[0], dtype=np.intp)
    leaves = _band(polygon_4326, everything, band=band, target=target, points=points, cuts=cuts)
    return _plan(leaves, cuts)


def plan_voronoi(polygon_4326: BaseGeometry, seeds_lonlat: ArrayLike) -> Plan:
    """Unsnapped Voronoi cells of distinct seeds clipped to the polygon, in seed order.

    Part ``i`` holds seed ``i``; the cuts are the cell boundaries.
    """
    seeds = np.asarray(seeds_lonlat, dtype=np.float64).reshape(-1, 2)
    if seeds.shape[0] == 0:
        raise InvalidInput("a Voronoi partition needs at least one seed")
    if np.unique(seeds, axis=0).shape[0] != seeds.shape[0]:
        raise InvalidInput("a Voronoi partition needs distinct seeds")
    if seeds.shape[0] == 1:
        cells: GeomArray = np.array([polygon_4326], dtype=object)
    else:
        diagram = shapely.voronoi_polygons(
            shapely.multipoints(seeds), extend_to=polygon_4326, ordered=True
        )
        cells = shapely.intersection(shapely.get_parts(diagram), polygon_4326)
    return Plan(
        pieces_4326=tuple(cells.tolist()),
        indices=tuple(np.array([i], dtype=np.intp) for i in range(seeds.shape[0])),
        weights=(1.0,) * seeds.shape[0],
        cuts_4326=tuple(shapely.boundary(cells).tolist()),
    )


def node_coverage(
    outline_4326: BaseGeometry,
    *,
    linework: Sequence[BaseGeometry],
    pieces: Sequence[BaseGeometry],
    grid_size_deg: float = GRID_SIZE_DEG,
) -> Coverage:
    """Node the outline's boundary and ``linework`` once on the grid; give each face
    to the piece holding its interior point (the lowest index on a tie, the
    nearest piece if none holds it: a sliver left by snapping)."""
    lines = np.array([outline_4326.boundary, *linework], dtype=object)
    noded = shapely.union_all(lines, grid_size=grid_size_deg)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    probes = shapely.point_on_surface(faces)
    inside = shapely.contains(outline_4326, probes)
    faces, probes = faces[inside], probes[inside]
    owner = _owners(probes, pieces=np.array(list(pieces), dtype=object))
    by_owner = np.argsort(owner, kind="stable")
    return Coverage(faces=faces[by_owner], owner=owner[by_owner], grid_size_deg=grid_size_deg)


def snap_multipolygon(geom: BaseGeometry, *, grid_size_deg: float = GRID_SIZE_DEG) -> MultiPolygon:
    """``geom``'s polygonal part snapped to the precision grid, as a valid MultiPolygon."""
    return as_multipolygon(shapely.set_precision(geom, grid_size_deg), grid_size_deg=grid_size_deg)


def as_multipolygon(geom: BaseGeometry, *, grid_size_deg: float = GRID_SIZE_DEG) -> MultiPolygon:
    """The non-empty polygons of ``geom`` (any type) as one valid MultiPolygon.

    Overlays can return collections with stray lines or points where pieces
    touch; only areas count here.
    """
    polygons = [p for p in _flat_polygons(geom) if not p.is_empty and p.area > 0]
    result = MultiPolygon(polygons)
    if not result.is_valid:
        fixed = shapely.set_precision(shapely.make_valid(result), grid_size_deg)
        result = MultiPolygon([p for p in _flat_polygons(fixed) if p.area > 0])
    # Overlays with grid_size leave a fixed precision model on the polygons, and
    # later GEOS operations (segmentize, buffer, …) would silently snap their
    # results to it. A WKB round trip returns the same coordinates without it.
    clean = shapely.from_wkb(shapely.to_wkb(result))
    return clean if isinstance(clean, MultiPolygon) else MultiPolygon()


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


def _snapped_parts(outline: MultiPolygon, plan: Plan, *, grid_size_deg: float) -> list[Part]:
    coverage = node_coverage(
        outline, linework=plan.cuts_4326, pieces=plan.pieces_4326, grid_size_deg=grid_size_deg
    )
    return [
        Part(geom_4326=coverage.union_of([i]), indices=indices, weight=weight)
        for i, (indices, weight) in enumerate(zip(plan.indices, plan.weights, strict=True))
    ]


def _owners(probes: GeomArray, *, pieces: GeomArray) -> NDArray[np.intp]:
    owner = np.full(probes.size, -1, dtype=np.intp)
    if probes.size == 0:
        return owner
    tree = shapely.STRtree(pieces)
    probe_index, piece_index = tree.query(probes, predicate="intersects")
    # Reverse order so that, for each probe, the lowest piece index is written last.
    order = np.lexsort((-piece_index, probe_index))
    owner[probe_index[order]] = piece_index[order]
    orphans = np.flatnonzero(owner < 0)
    if orphans.size:
        hit_probe, hit_piece = tree.query_nearest(probes[orphans], all_matches=False)
        owner[orphans[hit_probe]] = hit_piece
    return owner


def _plan(leaves: list[_Leaf], cuts: list[BaseGeometry]) -> Plan:
    return Plan(
        pieces_4326=tuple(leaf.piece for leaf in leaves),
        indices=tuple(leaf.indices for leaf in leaves),
        weights=tuple(leaf.weight for leaf in leaves),
        cuts_4326=tuple(cuts),
    )


def _flat_polygons(geom: BaseGeometry) -> list[Polygon]:
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


def _leaf(piece: BaseGeometry, idx: NDArray[np.intp], points: _Points) -> _Leaf:
    return _Leaf(piece=piece, indices=idx, weight=float(points.weights[idx].sum()))


def _bisect(
    piece: BaseGeometry,
    idx: NDArray[np.intp],
    *,
    parts: int,
    points: _Points,
    cuts: list[BaseGeometry],
) -> list[_Leaf]:
    if parts <= 1 or idx.size <= 1:
        return [_leaf(piece, idx, points)]
    desired = float(points.weights[idx].sum()) * (parts // 2) / parts
    cut = _longer_axis_cut(idx, desired=desired, points=points)
    if cut is None:
        return [_leaf(piece, idx, points)]
    lower, upper = _split(piece, cut=cut, cuts=cuts)
    return _bisect(lower, cut.left, parts=parts // 2, points=points, cuts=cuts) + _bisect(
        upper, cut.right, parts=parts - parts // 2, points=points, cuts=cuts
    )


def _band(
    piece: BaseGeometry,
    idx: NDArray[np.intp],
    *,
    band: tuple[float, float],
    target: float,
    points: _Points,
    cuts: list[BaseGeometry],
) -> list[_Leaf]:
    total = float(points.weights[idx].sum())
    parts = band_part_count(total, band=band, target=target)
    if parts <= 1:
        return [_leaf(piece, idx, points)]
    cut = _band_cut(idx, desired=total * (parts // 2) / parts, band=band, points=points)
    if cut is None:
        return [_leaf(piece, idx, points)]
    lower, upper = _split(piece, cut=cut, cuts=cuts)
    return _band(lower, cut.left, band=band, target=target, points=points, cuts=cuts) + _band(
        upper, cut.right, band=band, target=target, points=points, cuts=cuts
    )


def band_part_count(total: float, *, band: tuple[float, float], target: float) -> int:
    """How many parts a piece of weight ``total`` should become.

    Among the counts whose mean share lies in ``band``, the one whose share is
    nearest ``target`` (1000 for 300–500 around 400: 3 parts of 333, not 2 of
    500 that leave no room for error); when none does (e.g. 550 for 300–500),
    the count that violates the band least.
    """
    low, high = band
    if total <= high:
        return 1
    fewest, most = math.ceil(total / high), math.floor(total / low)
    if fewest <= most:
        return min(range(fewest, most + 1), key=lambda k: abs(total / k - target))
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
    piece: BaseGeometry, *, cut: _Cut, cuts: list[BaseGeometry]
) -> tuple[BaseGeometry, BaseGeometry]:
    """The (unsnapped) parts of ``piece`` below and above the cut line, each with
    all its pieces; records the cut line's stretch inside ``piece`` in ``cuts``."""
    xmin, ymin, xmax, ymax = (float(v) for v in piece.bounds)
    pad = _BOX_PAD_DEG
    c = cut.value_deg
    if cut.axis == 0:
        lower_box = box(xmin - pad, ymin - pad, c, ymax + pad)
        upper_box = box(c, ymin - pad, xmax + pad, ymax + pad)
        line = LineString([(c, ymin - pad), (c, ymax + pad)])
    else:
        lower_box = box(xmin - pad, ymin - pad, xmax + pad, c)
        upper_box = box(xmin - pad, c, xmax + pad, ymax + pad)
        line = LineString([(xmin - pad, c), (xmax + pad, c)])
    lower, upper, stretch = shapely.intersection(piece, [lower_box, upper_box, line])
    cuts.append(stretch)
    return lower, upper
