"""Checks of a micro-grid shape a grid leader draws, before it is saved.

A micro-grid must lie inside its grid and must not overlap its siblings; gaps
between micro-grids are allowed (households there are listed as unassigned)
but reported. Hand-drawn shapes miss shared edges by a little, so before any
check the shape's vertices within ``SNAP_TOLERANCE_M`` of the grid's edge or a
sibling's edge are snapped onto it, and what is then left outside the grid or
over a sibling is clipped when it is a sliver (below ``SLIVER_TOLERANCE_M2``)
and refused, with where and how much, when it is more.

Everything here is in WGS84 lon/lat (EPSG:4326) on the 1e-6° precision grid
of ``geo.partition``; areas are measured in metres in a local equal-area
projection (``geo.crs.local_metric_crs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import split

from geo.crs import LocalMetric, local_metric_crs
from geo.errors import InvalidInput
from geo.partition import GRID_SIZE_DEG, as_multipolygon

SNAP_TOLERANCE_M = 1.0  # a vertex this close to an edge was meant to be on it
SLIVER_TOLERANCE_M2 = 5.0  # overlaps / overhangs below this are clipped, not refused
_M_PER_DEG = 111_320.0  # for turning the snap tolerance into degrees (latitude-safe upper bound)


@dataclass(frozen=True)
class ShapeCheck:
    """What a drawn shape would be once fitted, and what is wrong with it.

    ``geom_4326`` is the snapped, clipped MultiPolygon that would be saved
    (None when nothing valid is left). ``outside_m2`` is the part beyond the
    grid, ``overlaps_m2`` the part over each sibling (by code), both measured
    after snapping and before clipping; ``problems`` is empty when the shape
    may be saved.
    """

    geom_4326: MultiPolygon | None
    area_m2: float
    outside_m2: float
    overlaps_m2: dict[str, float]
    overlaps_4326: dict[str, BaseGeometry]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_shape(
    shape_4326: BaseGeometry,
    *,
    grid_4326: BaseGeometry,
    siblings_4326: Mapping[str, BaseGeometry],
) -> ShapeCheck:
    """Snap ``shape_4326`` to the grid's and the siblings' edges, then measure
    what lies outside the grid and over each sibling. Never raises for a bad
    shape: the reasons are in ``problems`` (use ``fit_shape`` to refuse)."""
    problems: list[str] = []
    if shape_4326.is_empty or shape_4326.geom_type not in ("Polygon", "MultiPolygon"):
        return ShapeCheck(None, 0.0, 0.0, {}, {}, ("the shape must be a Polygon or MultiPolygon",))
    if not shape_4326.is_valid:
        reason = shapely.is_valid_reason(shape_4326)
        return ShapeCheck(None, 0.0, 0.0, {}, {}, (f"the shape is not a valid polygon: {reason}",))
    metric = local_metric_crs(grid_4326)
    snapped = snap_to_edges(shape_4326, grid_4326=grid_4326, siblings_4326=siblings_4326)
    outside = snapped.difference(grid_4326)
    outside_m2 = area_m2(outside, metric=metric)
    if outside_m2 > SLIVER_TOLERANCE_M2:
        problems.append(f"{outside_m2:.0f} m² of the shape lie outside its grid")
    overlaps_m2: dict[str, float] = {}
    overlaps_4326: dict[str, BaseGeometry] = {}
    fitted = snapped.intersection(grid_4326)
    for code, sibling in sorted(siblings_4326.items()):
        overlap = fitted.intersection(sibling)
        overlap_m2 = area_m2(overlap, metric=metric)
        if overlap_m2 > 0.0:
            overlaps_m2[code] = round(overlap_m2, 1)
            overlaps_4326[code] = overlap
        if overlap_m2 > SLIVER_TOLERANCE_M2:
            problems.append(f"{overlap_m2:.0f} m² of the shape overlap micro-grid {code}")
        fitted = fitted.difference(sibling)
    geom = _polygonal(fitted)
    if geom is None:
        problems.append("nothing of the shape is left inside the grid")
    return ShapeCheck(
        geom_4326=geom, area_m2=round(area_m2(geom, metric=metric), 1) if geom else 0.0,
        outside_m2=round(outside_m2, 1), overlaps_m2=overlaps_m2, overlaps_4326=overlaps_4326,
        problems=tuple(problems),
    )  # fmt: skip


def fit_shape(
    shape_4326: BaseGeometry,
    *,
    grid_4326: BaseGeometry,
    siblings_4326: Mapping[str, BaseGeometry],
) -> MultiPolygon:
    """The shape as it will be saved; ``InvalidInput`` listing every problem."""
    checked = check_shape(shape_4326, grid_4326=grid_4326, siblings_4326=siblings_4326)
    if not checked.ok or checked.geom_4326 is None:
        raise InvalidInput("the micro-grid cannot be saved: " + "; ".join(checked.problems))
    return checked.geom_4326


def snap_to_edges(
    shape_4326: BaseGeometry,
    *,
    grid_4326: BaseGeometry,
    siblings_4326: Mapping[str, BaseGeometry],
) -> BaseGeometry:
    """``shape_4326`` with its vertices within ``SNAP_TOLERANCE_M`` of the grid's
    or a sibling's edge moved onto it (and onto their vertices)."""
    edges = [grid_4326.boundary, *(s.boundary for s in siblings_4326.values())]
    reference = shapely.union_all(edges)
    snapped = shapely.snap(shape_4326, reference, SNAP_TOLERANCE_M / _M_PER_DEG)
    return shapely.make_valid(shapely.set_precision(snapped, GRID_SIZE_DEG))


def gap_of(
    grid_4326: BaseGeometry, *, parts_4326: Sequence[BaseGeometry]
) -> tuple[BaseGeometry, float]:
    """The part of the grid no micro-grid covers, and its area in m²."""
    covered = shapely.union_all(parts_4326) if parts_4326 else Polygon()
    gap = grid_4326.difference(covered)
    metric = local_metric_crs(grid_4326)
    gap_m2 = area_m2(gap, metric=metric)
    return (gap, gap_m2) if gap_m2 > SLIVER_TOLERANCE_M2 else (Polygon(), 0.0)


def split_shape(geom_4326: BaseGeometry, *, line_4326: LineString) -> list[MultiPolygon]:
    """The pieces of ``geom_4326`` on either side of ``line_4326`` (largest
    first, ties west then south first); ``InvalidInput`` unless the line cuts
    it in two or more."""
    if line_4326.geom_type != "LineString" or line_4326.is_empty:
        raise InvalidInput("a split needs a LineString drawn across the micro-grid")
    pieces = [
        p for p in split(geom_4326, line_4326).geoms if p.geom_type == "Polygon" and p.area > 0
    ]
    if len(pieces) < 2:
        raise InvalidInput(
            "the line does not cut the micro-grid in two: draw it from edge to edge, across it"
        )
    metric = local_metric_crs(geom_4326)
    # Largest first; pieces of equal area (to the m²) west, then south, first.
    pieces.sort(key=lambda p: (-round(area_m2(p, metric=metric)), p.centroid.x, p.centroid.y))
    return [as_multipolygon(p) for p in pieces]


def area_m2(geom_4326: BaseGeometry | None, *, metric: LocalMetric) -> float:
    if geom_4326 is None or geom_4326.is_empty:
        return 0.0
    return float(metric.to_metres(geom_4326).area)


def _polygonal(geom: BaseGeometry) -> MultiPolygon | None:
    """The polygons of ``geom`` as one MultiPolygon on the precision grid (None if none)."""
    if geom.is_empty:
        return None
    polygons = [
        g for g in getattr(geom, "geoms", [geom]) if g.geom_type in ("Polygon", "MultiPolygon")
    ]
    if not polygons:
        return None
    merged = as_multipolygon(shapely.union_all(polygons))
    return None if merged.is_empty else merged
