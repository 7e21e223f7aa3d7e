"""Partitioning promises: tiling, one part per point, balance, determinism.

Areas are measured in metres in a local Lambert azimuthal equal-area projection,
never in degrees.
"""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geo.errors import InvalidInput
from geo.partition import (
    Part,
    band_part_count,
    band_partition,
    bisect_partition,
    node_coverage,
    plan_bisect,
    plan_voronoi,
    voronoi_partition,
)

LAEA = pyproj.Transformer.from_crs(
    "EPSG:4326", "+proj=laea +lat_0=22.7 +lon_0=112.2 +datum=WGS84 +units=m", always_xy=True
)
# A U-shaped (non-convex) area of about 3 km × 3 km near Xinxing: cuts across
# the notch leave parts of two pieces.
U_SHAPE_4326 = Polygon(
    [
        (112.20, 22.70),
        (112.23, 22.70),
        (112.23, 22.73),
        (112.22, 22.73),
        (112.22, 22.71),
        (112.21, 22.71),
        (112.21, 22.73),
        (112.20, 22.73),
    ]
)


def to_metres(geom: shapely.Geometry) -> shapely.Geometry:
    """Project to LAEA metres. Edges are straight in lon/lat, not in LAEA: densify
    first (~10 m) so a long edge and the same edge split at a cut agree."""
    dense = shapely.segmentize(geom, 1e-4)
    return shapely.transform(dense, lambda xy: np.column_stack(LAEA.transform(xy[:, 0], xy[:, 1])))


def points_inside(polygon: Polygon, *, count: int, seed: int) -> np.ndarray:
    """Distinct points on the 1e-5° grid, at least ~2 m inside ``polygon``."""
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = polygon.bounds
    pts = np.round(rng.uniform((xmin, ymin), (xmax, ymax), size=(count * 3, 2)), 5)
    inner = polygon.buffer(-2e-5)
    pts = pts[shapely.contains_xy(inner, pts[:, 0], pts[:, 1])]
    pts = np.unique(pts, axis=0)
    return pts[rng.permutation(len(pts))[:count]]


def assert_tiles(parts: list[Part] | list[MultiPolygon], polygon: Polygon) -> None:
    geoms = [p.geom_4326 if isinstance(p, Part) else p for p in parts]
    for geom in geoms:
        assert isinstance(geom, MultiPolygon)
        assert geom.is_valid and not geom.is_empty
        coords = shapely.get_coordinates(geom)
        assert np.array_equal(coords, np.round(coords, 6))  # on the 1e-6° grid
    metric = [to_metres(g) for g in geoms]
    for i in range(len(metric)):
        for j in range(i + 1, len(metric)):
            assert metric[i].intersection(metric[j]).area < 1.0, (i, j)
    union_m = shapely.union_all(metric)
    polygon_m = to_metres(polygon)
    assert polygon_m.symmetric_difference(union_m).area < 1.0


def assert_points_in_parts(parts: list[Part], pts: np.ndarray) -> None:
    seen = np.concatenate([p.indices for p in parts])
    assert np.array_equal(np.sort(seen), np.arange(len(pts)))  # each point in one part
    for part in parts:
        own = pts[part.indices]
        assert shapely.contains_xy(part.geom_4326, own[:, 0], own[:, 1]).all()
        assert shapely.distance(part.geom_4326.boundary, shapely.points(own)).min() > 0
        others = np.setdiff1d(np.arange(len(pts)), part.indices)
        assert not shapely.intersects_xy(part.geom_4326, pts[others, 0], pts[others, 1]).any()


@pytest.mark.parametrize("target", [1, 2, 3, 7, 10])
def test_bisect_tiles_balances_and_places_every_point_once(target: int) -> None:
    pts = points_inside(U_SHAPE_4326, count=1000, seed=target)
    parts = bisect_partition(U_SHAPE_4326, pts, target_parts=target)
    assert len(parts) == target
    assert_tiles(parts, U_SHAPE_4326)
    assert_points_in_parts(parts, pts)
    levels = int(np.ceil(np.log2(target)))
    counts = np.array([p.indices.size for p in parts])
    assert np.abs(counts - len(pts) / target).max() <= max(levels, 1)
    assert all(p.weight == p.indices.size for p in parts)


def test_bisect_keeps_disconnected_pieces_in_one_part() -> None:
    pts = points_inside(U_SHAPE_4326, count=600, seed=3)
    parts = bisect_partition(U_SHAPE_4326, pts, target_parts=4)
    assert any(len(p.geom_4326.geoms) > 1 for p in parts)
    assert_tiles(parts, U_SHAPE_4326)


def test_bisect_is_deterministic() -> None:
    pts = points_inside(U_SHAPE_4326, count=500, seed=5)
    first = bisect_partition(U_SHAPE_4326, pts, target_parts=6)
    second = bisect_partition(U_SHAPE_4326, pts.copy(), target_parts=6)
    assert [p.geom_4326.wkb for p in first] == [p.geom_4326.wkb for p in second]
    assert all(np.array_equal(a.indices, b.indices) for a, b in zip(first, second, strict=True))


def test_points_sharing_a_coordinate_are_never_separated() -> None:
    base = points_inside(U_SHAPE_4326, count=50, seed=8)
    pts = np.repeat(base, 4, axis=0)  # four households per building
    parts = bisect_partition(U_SHAPE_4326, pts, target_parts=5)
    assert_points_in_parts(parts, pts)
    for part in parts:
        assert np.all(np.bincount(part.indices // 4, minlength=50) % 4 == 0)


def test_weighted_bisect_balances_weights() -> None:
    pts = points_inside(U_SHAPE_4326, count=400, seed=9)
    weights = np.random.default_rng(9).integers(1, 4, size=len(pts))
    parts = bisect_partition(U_SHAPE_4326, pts, target_parts=8, weights=weights)
    assert_points_in_parts(parts, pts)
    share = weights.sum() / 8
    # Each of 3 levels can miss by at most half the heaviest point.
    assert max(abs(p.weight - share) for p in parts) <= 3 * 3
    assert sum(p.weight for p in parts) == weights.sum()


def test_band_partition_meets_the_band_with_small_weights() -> None:
    pts = points_inside(U_SHAPE_4326, count=900, seed=11)
    weights = np.random.default_rng(11).integers(1, 4, size=len(pts))
    parts = band_partition(U_SHAPE_4326, pts, weights=weights, min_weight=30, max_weight=50)
    assert_tiles(parts, U_SHAPE_4326)
    assert_points_in_parts(parts, pts)
    assert all(30 <= p.weight <= 50 for p in parts)


def test_band_partition_of_light_piece_is_one_part() -> None:
    pts = points_inside(U_SHAPE_4326, count=20, seed=12)
    parts = band_partition(U_SHAPE_4326, pts, min_weight=300, max_weight=500)
    assert len(parts) == 1 and parts[0].indices.size == 20


@pytest.mark.parametrize(
    ("total", "expected"),
    [(400, 1), (500, 1), (600, 2), (800, 2), (1000, 3), (1300, 3), (550, 2), (520, 1), (5000, 13)],
)
def test_band_part_count(total: int, expected: int) -> None:
    assert band_part_count(total, band=(300, 500), target=400) == expected


def test_voronoi_partition_tiles_and_keeps_seed_order() -> None:
    seeds = points_inside(U_SHAPE_4326, count=9, seed=13)
    cells = voronoi_partition(U_SHAPE_4326, seeds)
    assert len(cells) == 9
    assert_tiles(cells, U_SHAPE_4326)
    for cell, (x, y) in zip(cells, seeds, strict=True):
        assert shapely.contains_xy(cell, x, y)


def test_voronoi_single_seed_is_the_polygon() -> None:
    cells = voronoi_partition(U_SHAPE_4326, [[112.205, 22.705]])
    assert len(cells) == 1 and cells[0].equals(U_SHAPE_4326)


def test_invalid_input_is_rejected() -> None:
    pts = points_inside(U_SHAPE_4326, count=10, seed=14)
    with pytest.raises(InvalidInput):
        bisect_partition(U_SHAPE_4326, pts, target_parts=0)
    with pytest.raises(InvalidInput):
        bisect_partition(U_SHAPE_4326, pts, target_parts=2, weights=[1, 2])
    with pytest.raises(InvalidInput):
        band_partition(U_SHAPE_4326, pts, min_weight=5, max_weight=1)
    with pytest.raises(InvalidInput):
        voronoi_partition(U_SHAPE_4326, [[112.205, 22.705], [112.205, 22.705]])


def test_plans_noded_together_nest_exactly() -> None:
    """Two levels planned in floating point and snapped in one pass: each parent
    is exactly the union of its children, and children never cross parents."""
    seeds = points_inside(U_SHAPE_4326, count=4, seed=15)
    towns = plan_voronoi(U_SHAPE_4326, seeds)
    pts = points_inside(U_SHAPE_4326, count=800, seed=16)
    linework = list(towns.cuts_4326)
    leaves: list[shapely.Geometry] = []
    ranges = []
    for piece in towns.pieces_4326:
        inside = pts[shapely.contains_xy(piece.buffer(-2e-5), pts[:, 0], pts[:, 1])]
        plan = plan_bisect(piece, inside, target_parts=3)
        linework += plan.cuts_4326
        ranges.append((len(leaves), len(leaves) + len(plan.pieces_4326)))
        leaves += plan.pieces_4326
    coverage = node_coverage(U_SHAPE_4326, linework=linework, pieces=leaves)
    for start, stop in ranges:
        parent = coverage.union_of_range(start, stop)
        children = [coverage.union_of([i]) for i in range(start, stop)]
        assert parent.is_valid and all(c.is_valid for c in children)
        parent_m = to_metres(parent)
        union_m = shapely.union_all([to_metres(c) for c in children])
        assert parent_m.symmetric_difference(union_m).area < 1e-3
    assert_tiles([coverage.union_of([i]) for i in range(len(leaves))], U_SHAPE_4326)
