"""Suggest micro-grids: cut a grid into contiguous parts of 30–50 households.

A grid leader splits a grid (300–500 households, sometimes thousands) into
micro-grids along estates and building clusters. ``suggest_microgrids`` proposes
such a split from the grid's outline and its buildings (a point and a household
count each); the leader then edits it.

How, all on the 1e-6° precision grid of ``geo.partition``:

1. *Cut* each piece of the grid with ``plan_band``: axis-aligned cuts strictly
   between building coordinates, balanced and compact, parts in the band where
   the buildings allow it. A building (its households) is never split.
2. *Snap and make contiguous*: node the outline and every cut once
   (``node_coverage``); its faces are the atoms every part is made of. A part
   whose faces fall apart (a cut across a notch of a non-convex grid) becomes
   one part per piece that holds buildings; a piece without buildings joins the
   neighbouring part it shares the longest edge with.
3. *Re-cut*: a part outside the band is re-cut together with one neighbour,
   or with several (``plan_band`` on their union), and the re-cut that
   improves the score most is kept. Merging a small part into a neighbour is
   the re-cut of a union light enough for one part. Every cut ever made stays
   in the linework and the whole grid is noded again, so neighbouring parts
   always share their edges exactly.
4. *Move buildings*: where parts are still outside the band, they and their
   neighbours up to two steps away are cut finer, one cell per building
   location (Voronoi cells), and a greedy search moves cells between those
   parts — one at a time, two together, dissolving a part into its
   neighbours, or re-splitting two parts — while that improves the score,
   never leaving a part in pieces.
5. *Explain* every part still outside the band in ``Suggestion.reasons``.

"The score improves" means fewer parts outside the band without more
households missing from it in total, or fewer missing without more parts
outside: merging every misfit into one huge part is no improvement.

5. *Explain* every part still outside the band in ``Suggestion.reasons``.

Pure and deterministic: the same input gives the same suggestion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidInput
from geo.partition import (
    GRID_SIZE_DEG,
    M_PER_DEG_LAT,
    M_PER_DEG_LON_EQUATOR,
    as_multipolygon,
    node_coverage,
    plan_band,
    plan_bisect,
    snap_multipolygon,
)

DEFAULT_MIN_HOUSEHOLDS = 30
DEFAULT_MAX_HOUSEHOLDS = 50
# Households are integers, so the band's upper end can take this much slack:
# it lets the tiny weights of buildings without households through unnoticed.
_BAND_SLACK = 1e-6
# Re-cut rounds at most (each re-nodes the grid); a safety net only: every
# kept round improves the score, so the loop ends anyway.
_MAX_ROUNDS = 50
# A Voronoi edge may pass no closer to a building (snapping moves it ≤ 0.7e-6°).
_CELL_CLEARANCE_DEG = 1e-5
# Branches the exhaustive re-split of two parts may take (it is exponential in
# the cells of the two parts; small cases, where greedy steps get stuck, fit).
_RESPLIT_BUDGET = 20_000
_RESPLIT_MAX_CELLS = 200
# Gains the search over cells may evaluate, per cell of its region.
_SEARCH_EVALUATIONS_PER_CELL = 100
# Building ids listed in a reason before "…".
_IDS_IN_REASON = 5

GeomArray = NDArray[np.object_]
Score = tuple[int, int]


@dataclass(frozen=True)
class Building:
    """A building: a point (WGS84 lon/lat) and the households living in it."""

    building_id: int
    lon: float
    lat: float
    households: int


@dataclass(frozen=True)
class SuggestedPart:
    """One suggested micro-grid.

    ``geom_4326`` is one contiguous, valid Polygon (never a MultiPolygon) on the
    1e-6° grid; ``building_ids`` (ascending) are the buildings it covers and
    ``households`` their sum; ``within_band`` says whether that sum lies in
    ``[min_households, max_households]``.
    """

    geom_4326: Polygon
    building_ids: tuple[int, ...]
    households: int
    within_band: bool


@dataclass(frozen=True)
class Suggestion:
    """A suggested split of a grid into micro-grids.

    ``reasons`` says, in words a grid leader can act on, why each part outside
    ``[min_households, max_households]`` is so (empty when all parts are in it).
    """

    parts: tuple[SuggestedPart, ...]
    min_households: int
    max_households: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class _Buildings:
    """Checked buildings as arrays (input order)."""

    ids: NDArray[np.int64]
    lonlat: NDArray[np.float64]
    households: NDArray[np.int64]
    # What plan_band balances: the households, or a tiny positive weight for a
    # building without any (plan_band wants positive weights, and such a
    # building must still be placed on one side of every cut).
    weights: NDArray[np.float64]
    # Index of the building's location among distinct locations: buildings at
    # the same point are never separated, so they count as one in the reasons.
    site: NDArray[np.intp]

    def subset(self, idx: NDArray[np.intp]) -> _Buildings:
        """The buildings ``idx``, in that order."""
        return _Buildings(
            ids=self.ids[idx], lonlat=self.lonlat[idx], households=self.households[idx],
            weights=self.weights[idx], site=self.site[idx],
        )  # fmt: skip


@dataclass(frozen=True)
class _Layout:
    """A snapped tiling of (part of) the grid into contiguous groups of faces.

    ``lines`` is all the linework noded with the outline; ``faces`` its faces,
    ``face_group`` the group owning each face, ``building_face`` the face
    holding each building, ``edges`` the pairs of faces sharing an edge
    ``lengths_m`` long. Group ``g`` is ``geoms[g]`` (one Polygon), holds the
    buildings ``members[g]`` (indices, ascending) and ``households[g]``
    households; ``shared_m[(g, h)]`` (``g < h``) is the length in metres of the
    edge groups ``g`` and ``h`` share.
    """

    lines: tuple[BaseGeometry, ...]
    faces: GeomArray
    face_group: NDArray[np.intp]
    building_face: NDArray[np.intp]
    edges: NDArray[np.intp]
    lengths_m: NDArray[np.float64]
    geoms: tuple[Polygon, ...]
    members: tuple[NDArray[np.intp], ...]
    households: NDArray[np.int64]
    shared_m: dict[tuple[int, int], float]

    def neighbours(self, group: int) -> list[int]:
        """Groups sharing an edge with ``group``, longest shared edge first."""
        found = [(length, b if a == group else a) for (a, b), length in self.shared_m.items()
                 if group in (a, b)]  # fmt: skip
        return [other for _, other in sorted(found, key=lambda t: (-t[0], t[1]))]


@dataclass(frozen=True)
class _Move:
    """A re-cut of the union of ``groups``: its cuts and its new groups' areas."""

    groups: tuple[int, ...]
    lines: tuple[BaseGeometry, ...]
    geoms: tuple[Polygon, ...]
    gain: Score  # how much the score of these groups drops (larger is better)


def suggest_microgrids(
    grid_4326: Polygon | MultiPolygon,
    buildings: Sequence[Building],
    *,
    min_households: int = DEFAULT_MIN_HOUSEHOLDS,
    max_households: int = DEFAULT_MAX_HOUSEHOLDS,
) -> Suggestion:
    """Suggest micro-grids of ``min_households``–``max_households`` households.

    Promises:

    * the parts tile the grid: no overlap, and their union is the grid snapped
      to the 1e-6° grid (a vertex is added, snapped by ≤ 0.7e-6°, where a cut
      meets a slanted edge of the outline);
    * every part is one contiguous, valid Polygon on the 1e-6° grid;
    * every building is in exactly one part, which covers it, strictly inside
      (a building within 1e-6° of the grid's edge may be left outside by the
      ≤ 0.7e-6° the snapping moves that edge); a building's households are
      never split, and buildings at the same point stay together;
    * parts are cut between buildings, never through one: compact parts from
      ``plan_band``'s axis-aligned cuts, and Voronoi edges between buildings
      where the repair moved buildings between parts;
    * parts lie in the band where the repair could bring them there, else as
      close as it found (a best effort: the band may be out of reach, e.g. 55
      households, or a building heavier than the band), each such part
      explained in ``reasons``;
    * a grid holding fewer than ``min_households`` households is one part (one
      per piece if the grid is a MultiPolygon), with the reason;
    * deterministic.

    Raises ``InvalidInput`` for an empty, invalid or non-lon/lat grid, a
    building outside it, with a non-finite coordinate, a negative or
    non-integer household count or a repeated id, and for
    ``min_households < 1`` or ``min > max``.
    """
    band = _checked_band(min_households=min_households, max_households=max_households)
    outline_4326 = _checked_outline(grid_4326)
    checked = _checked_buildings(buildings, grid_4326=grid_4326)
    layout = _initial_layout(outline_4326, buildings=checked, band=band)
    layout = _repaired(layout, outline_4326=outline_4326, buildings=checked, band=band)
    layout = _rebalanced(layout, outline_4326=outline_4326, buildings=checked, band=band)
    return _suggestion(layout, outline_4326=outline_4326, buildings=checked, band=band)


# -- input checks ---------------------------------------------------------------------
def _checked_band(*, min_households: int, max_households: int) -> tuple[int, int]:
    if min_households < 1:
        raise InvalidInput(f"min_households must be at least 1, got {min_households}")
    if min_households > max_households:
        raise InvalidInput(
            f"min_households ({min_households}) must not exceed max_households ({max_households})"
        )
    return int(min_households), int(max_households)


def _checked_outline(grid_4326: BaseGeometry) -> MultiPolygon:
    """The grid snapped to the 1e-6° grid, after checking it is a usable polygon."""
    if not isinstance(grid_4326, Polygon | MultiPolygon):
        raise InvalidInput(f"the grid must be a Polygon or MultiPolygon, got {grid_4326.geom_type}")
    if grid_4326.is_empty:
        raise InvalidInput("the grid polygon is empty")
    coords = shapely.get_coordinates(grid_4326)
    if not np.isfinite(coords).all():
        raise InvalidInput("the grid polygon has non-finite coordinates")
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise InvalidInput("the grid polygon's coordinates are not lon/lat degrees (EPSG:4326)")
    if not grid_4326.is_valid:
        reason = shapely.is_valid_reason(grid_4326)
        raise InvalidInput(f"the grid polygon is not valid: {reason}")
    if grid_4326.area <= 0:
        raise InvalidInput("the grid polygon has no area")
    outline = snap_multipolygon(grid_4326, grid_size_deg=GRID_SIZE_DEG)
    if outline.is_empty:
        raise InvalidInput("the grid polygon is too small: nothing is left on the 1e-6° grid")
    return outline


def _checked_buildings(buildings: Sequence[Building], *, grid_4326: BaseGeometry) -> _Buildings:
    for b in buildings:
        # bool is an int, and numpy would truncate 2.5 households to 2 silently.
        if not isinstance(b.households, int | np.integer) or isinstance(b.households, bool):
            raise InvalidInput(
                f"building {b.building_id} has {b.households!r} households (not a whole number)"
            )
    ids = np.array([b.building_id for b in buildings], dtype=np.int64)
    lonlat = np.array([(b.lon, b.lat) for b in buildings], dtype=np.float64).reshape(-1, 2)
    households = np.array([b.households for b in buildings], dtype=np.int64)
    unique_ids, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise InvalidInput(f"building id {int(unique_ids[counts > 1][0])} appears more than once")
    if (households < 0).any():
        bad = int(np.flatnonzero(households < 0)[0])
        raise InvalidInput(f"building {ids[bad]} has {households[bad]} households (negative)")
    finite = np.isfinite(lonlat).all(axis=1)
    if not finite.all():
        raise InvalidInput(f"building {ids[~finite][0]} has a non-finite coordinate")
    inside = shapely.covers(grid_4326, shapely.points(lonlat)) if len(ids) else np.ones(0, bool)
    if not inside.all():
        bad = int(np.flatnonzero(~inside)[0])
        lon, lat = lonlat[bad]
        raise InvalidInput(f"building {ids[bad]} at ({lon:.6f}, {lat:.6f}) lies outside the grid")
    empty = households == 0
    weights = households.astype(np.float64)
    # Their total stays far below the slack, so a part's weight still tells its band.
    weights[empty] = _BAND_SLACK / (4 * max(int(empty.sum()), 1))
    _, site = np.unique(lonlat, axis=0, return_inverse=True)
    return _Buildings(
        ids=ids, lonlat=lonlat, households=households, weights=weights,
        site=site.reshape(-1).astype(np.intp),
    )  # fmt: skip


# -- cutting and snapping -------------------------------------------------------------
def _initial_layout(
    outline_4326: MultiPolygon, *, buildings: _Buildings, band: tuple[int, int]
) -> _Layout:
    """``plan_band`` on each piece of the grid, snapped once and made contiguous."""
    piece_of = _piece_of_building(outline_4326, lonlat=buildings.lonlat)
    lines: list[BaseGeometry] = []
    hints: list[BaseGeometry] = []
    for index, piece in enumerate(outline_4326.geoms):
        idx = np.flatnonzero(piece_of == index)
        if idx.size == 0:
            hints.append(piece)
            continue
        plan = plan_band(
            piece, buildings.lonlat[idx], weights=buildings.weights[idx],
            min_weight=band[0], max_weight=band[1] + _BAND_SLACK, grid_size_deg=GRID_SIZE_DEG,
        )  # fmt: skip
        lines.extend(plan.cuts_4326)
        hints.extend(plan.pieces_4326)
    return _layout(outline_4326, lines=tuple(lines), hints=hints, buildings=buildings)


def _piece_of_building(
    outline_4326: MultiPolygon, *, lonlat: NDArray[np.float64]
) -> NDArray[np.intp]:
    """Index of the outline piece covering each building (the nearest one for a
    building on the edge that snapping moved outside)."""
    pieces = np.array(list(outline_4326.geoms), dtype=object)
    return _locate(pieces, lonlat=lonlat)


def _locate(areas: GeomArray, *, lonlat: NDArray[np.float64]) -> NDArray[np.intp]:
    """Index of the first area covering each point, else of the nearest area."""
    found = np.full(lonlat.shape[0], -1, dtype=np.intp)
    if lonlat.shape[0] == 0:
        return found
    points: GeomArray = np.asarray(shapely.points(lonlat), dtype=object)
    tree = shapely.STRtree(areas)
    point_index, area_index = tree.query(points, predicate="covered_by")
    # Reverse order so that, for each point, the lowest area index is written last.
    order = np.lexsort((-area_index, point_index))
    found[point_index[order]] = area_index[order]
    orphans = np.flatnonzero(found < 0)
    if orphans.size:
        hit_point, hit_area = tree.query_nearest(points[orphans], all_matches=False)
        found[orphans[hit_point]] = hit_area
    return found


def _layout(
    outline_4326: MultiPolygon,
    *,
    lines: tuple[BaseGeometry, ...],
    hints: Sequence[BaseGeometry],
    buildings: _Buildings,
) -> _Layout:
    """Node ``outline_4326`` with ``lines``; each face goes to the hint area
    holding it, then groups are made contiguous (see the module docstring)."""
    coverage = node_coverage(
        outline_4326, linework=lines, pieces=hints, grid_size_deg=GRID_SIZE_DEG
    )
    return _layout_of(coverage.faces, owner=coverage.owner, lines=lines, buildings=buildings)


def _layout_of(
    faces: GeomArray,
    *,
    owner: NDArray[np.intp],
    lines: tuple[BaseGeometry, ...],
    buildings: _Buildings,
) -> _Layout:
    """The layout whose groups are the owners of ``faces``, made contiguous."""
    building_face = _locate(faces, lonlat=buildings.lonlat)
    holds = np.bincount(building_face, minlength=faces.size) > 0
    edges, lengths_m = _face_edges(faces)
    face_group = _contiguous_groups(owner, holds=holds, edges=edges, lengths_m=lengths_m)
    return _grouped(
        lines=lines, faces=faces, face_group=face_group, building_face=building_face,
        buildings=buildings, edges=edges, lengths_m=lengths_m,
    )  # fmt: skip


def _face_edges(faces: GeomArray) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Pairs ``(i, j)``, ``i < j``, of faces sharing an edge, and its length in metres.

    Faces of one noding share their edges vertex for vertex, so the
    intersection of their boundaries is exactly the shared edge.
    """
    if faces.size < 2:
        return np.zeros((0, 2), dtype=np.intp), np.zeros(0, dtype=np.float64)
    tree = shapely.STRtree(faces)
    a, b = tree.query(faces, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.intersection(shapely.boundary(faces[a]), shapely.boundary(faces[b]))
    lengths_m = _lengths_m(shared)
    touching = lengths_m > 0  # faces meeting at a point only are not neighbours
    edges = np.column_stack([a[touching], b[touching]]).astype(np.intp)
    return edges, lengths_m[touching]


def _lengths_m(geoms: GeomArray) -> NDArray[np.float64]:
    """Lengths of lon/lat linework in metres (local scale at the mean latitude)."""
    if geoms.size == 0:
        return np.zeros(0, dtype=np.float64)
    bounds = shapely.total_bounds(geoms)
    cos_lat = math.cos(math.radians(float(bounds[1] + bounds[3]) / 2))
    scale = np.array([M_PER_DEG_LON_EQUATOR * cos_lat, M_PER_DEG_LAT])
    metric = shapely.transform(geoms, lambda xy: xy * scale)
    return np.asarray(shapely.length(metric), dtype=np.float64)


def _components(count: int, edges: NDArray[np.intp]) -> NDArray[np.intp]:
    """Connected components of ``count`` nodes, numbered by their lowest node."""
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges.tolist():
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(count)], dtype=np.intp)
    _, labels = np.unique(roots, return_inverse=True)
    return labels.reshape(-1).astype(np.intp)


def _contiguous_groups(
    owner: NDArray[np.intp],
    *,
    holds: NDArray[np.bool_],
    edges: NDArray[np.intp],
    lengths_m: NDArray[np.float64],
    fence: NDArray[np.intp] | None = None,
) -> NDArray[np.intp]:
    """Group of each face: every edge-connected piece of an owner that holds
    buildings is a group; a piece without buildings joins the neighbouring group
    it shares the longest edge with (pieces reached only through other empty
    pieces join in later rounds; empty pieces no group reaches form groups).
    With ``fence``, a piece joins only a group across an edge whose faces have
    the same fence value.
    """
    same_owner = owner[edges[:, 0]] == owner[edges[:, 1]]
    piece = _components(owner.size, edges[same_owner])
    pieces = int(piece.max()) + 1 if piece.size else 0
    piece_holds = np.bincount(piece, weights=holds, minlength=pieces) > 0
    group = np.full(pieces, -1, dtype=np.intp)
    group[piece_holds] = np.arange(int(piece_holds.sum()), dtype=np.intp)
    crossing = (
        ~same_owner if fence is None else ~same_owner & (fence[edges[:, 0]] == fence[edges[:, 1]])
    )
    between: dict[int, dict[int, float]] = {}
    ends = piece[edges[crossing]].tolist()
    for (pa, pb), length in zip(ends, lengths_m[crossing].tolist(), strict=True):
        if pa != pb:
            between.setdefault(pa, {})[pb] = between.get(pa, {}).get(pb, 0.0) + length
            between.setdefault(pb, {})[pa] = between.get(pb, {}).get(pa, 0.0) + length
    _adopt_strays(group, between=between)
    stray = group < 0
    if stray.any():
        stray_pieces = np.flatnonzero(stray)
        local = {int(p): i for i, p in enumerate(stray_pieces)}
        pairs = [(local[a], local[b]) for a, nbrs in between.items() if a in local
                 for b in nbrs if b in local]  # fmt: skip
        blobs = _components(stray_pieces.size, np.array(pairs, dtype=np.intp).reshape(-1, 2))
        group[stray_pieces] = int(group.max(initial=-1)) + 1 + blobs
    return group[piece]


def _adopt_strays(group: NDArray[np.intp], *, between: dict[int, dict[int, float]]) -> None:
    """Give each piece without a group (``-1``) the group of the neighbour it
    shares the longest edge with (summed per group; ties to the lowest group)."""
    while True:
        adopted = False
        for stray in np.flatnonzero(group < 0).tolist():
            by_group: dict[int, float] = {}
            for other, length in between.get(stray, {}).items():
                if group[other] >= 0:
                    by_group[int(group[other])] = by_group.get(int(group[other]), 0.0) + length
            if by_group:
                group[stray] = min(by_group, key=lambda g: (-by_group[g], g))
                adopted = True
        if not adopted:
            return


def _grouped(
    *,
    lines: tuple[BaseGeometry, ...],
    faces: GeomArray,
    face_group: NDArray[np.intp],
    building_face: NDArray[np.intp],
    buildings: _Buildings,
    edges: NDArray[np.intp],
    lengths_m: NDArray[np.float64],
) -> _Layout:
    groups = int(face_group.max()) + 1 if face_group.size else 0
    building_group = face_group[building_face]
    households = np.bincount(building_group, weights=buildings.households, minlength=groups)
    order = np.argsort(building_group, kind="stable")
    bounds = np.searchsorted(building_group[order], np.arange(groups + 1))
    members = tuple(np.sort(order[bounds[g] : bounds[g + 1]]) for g in range(groups))
    face_order = np.argsort(face_group, kind="stable")
    face_bounds = np.searchsorted(face_group[face_order], np.arange(groups + 1))
    geoms = tuple(
        _one_polygon(faces[face_order[face_bounds[g] : face_bounds[g + 1]]]) for g in range(groups)
    )
    shared_m: dict[tuple[int, int], float] = {}
    ga, gb = face_group[edges[:, 0]], face_group[edges[:, 1]]
    for a, b, length in zip(ga.tolist(), gb.tolist(), lengths_m.tolist(), strict=True):
        if a != b:
            key = (min(a, b), max(a, b))
            shared_m[key] = shared_m.get(key, 0.0) + length
    return _Layout(
        lines=lines, faces=faces, face_group=face_group, building_face=building_face,
        edges=edges, lengths_m=lengths_m, geoms=geoms, members=members,
        households=np.rint(households).astype(np.int64), shared_m=shared_m,
    )  # fmt: skip


def _one_polygon(faces: GeomArray) -> Polygon:
    """The union of edge-connected faces of one noding: one valid Polygon."""
    union = as_multipolygon(shapely.coverage_union_all(faces), grid_size_deg=GRID_SIZE_DEG)
    if len(union.geoms) != 1:  # would be a bug in _contiguous_groups
        raise RuntimeError(f"a suggested part fell into {len(union.geoms)} pieces")
    polygon = union.geoms[0]
    assert isinstance(polygon, Polygon)
    return polygon


# -- repair -----------------------------------------------------------------------------
def _score(households: NDArray[np.int64], *, band: tuple[int, int]) -> Score:
    """(parts outside the band, households by which they miss it)."""
    missing = _missing(households, band=band)
    return int((missing > 0).sum()), int(missing.sum())


def _improves(after: Score, before: Score) -> bool:
    """Whether ``after`` is better than ``before`` on one count and worse on
    none: fewer parts outside the band must not cost more missing households
    (merging every misfit into one huge part would), nor the reverse."""
    return after[0] <= before[0] and after[1] <= before[1] and after != before


def _repaired(
    layout: _Layout, *, outline_4326: MultiPolygon, buildings: _Buildings, band: tuple[int, int]
) -> _Layout:
    """Re-cut parts outside the band with their neighbours while that helps.

    Each round takes the best useful re-cut of every part outside the band
    whose groups no earlier re-cut of the round touched (they are
    independent), and re-nodes the grid once. A round is kept only if the
    score of the whole grid improves, so the loop ends; re-cuts that did not
    help are not tried again.
    """
    tried: set[tuple[tuple[int, ...], ...]] = set()
    for _ in range(_MAX_ROUNDS):
        moves = _useful_moves(layout, buildings=buildings, band=band, tried=tried)
        if not moves:
            return layout
        replaced = {g for move in moves for g in move.groups}
        kept = [geom for g, geom in enumerate(layout.geoms) if g not in replaced]
        candidate = _layout(
            outline_4326,
            lines=layout.lines + tuple(line for move in moves for line in move.lines),
            hints=[*kept, *(geom for move in moves for geom in move.geoms)],
            buildings=buildings,
        )
        before = _score(layout.households, band=band)
        if _improves(_score(candidate.households, band=band), before):
            layout = candidate
        else:
            tried.update(_key(layout, move.groups, buildings=buildings) for move in moves)
    return layout


def _key(
    layout: _Layout, groups: Sequence[int], *, buildings: _Buildings
) -> tuple[tuple[int, ...], ...]:
    """What identifies a re-cut across re-nodings: the buildings of each group."""
    return tuple(sorted(tuple(buildings.ids[layout.members[g]].tolist()) for g in groups))


def _useful_moves(
    layout: _Layout,
    *,
    buildings: _Buildings,
    band: tuple[int, int],
    tried: set[tuple[tuple[int, ...], ...]],
) -> list[_Move]:
    """For the parts outside the band, worst first: the best useful re-cut of
    each whose groups no earlier re-cut in the list touches."""
    misses = _missing(layout.households, band=band)
    moves: list[_Move] = []
    used: set[int] = set()
    for group in np.lexsort((np.arange(misses.size), -misses)).tolist():
        if misses[group] == 0:
            break
        if group in used or _alone_on_its_site(layout, group, buildings=buildings, band=band):
            continue  # a heavy building alone: nothing to improve
        best: _Move | None = None
        tiers = _candidate_tiers(layout, group)
        if _heaviest_site(layout, group, buildings=buildings) > band[1]:
            tiers = tiers[:1]  # out of band anyway: only isolating the heavy building helps
        for tier in tiers:
            for groups in tier:
                key = _key(layout, groups, buildings=buildings)
                if key in tried or used.intersection(groups):
                    continue
                move = _recut(layout, groups, buildings=buildings, band=band)
                # A useful re-cut lowers one count and raises neither.
                if move is None or not _improves((0, 0), move.gain):
                    tried.add(key)
                elif best is None or move.gain > best.gain:
                    best = move
            if best is not None:
                break
        if best is not None:
            moves.append(best)
            used.update(best.groups)
    return moves


def _heaviest_site(layout: _Layout, group: int, *, buildings: _Buildings) -> int:
    """Households at the heaviest location (buildings at one point) of ``group``."""
    members = layout.members[group]
    if members.size == 0:
        return 0
    return int(np.bincount(buildings.site[members], weights=buildings.households[members]).max())


def _alone_on_its_site(
    layout: _Layout, group: int, *, buildings: _Buildings, band: tuple[int, int]
) -> bool:
    members = layout.members[group]
    sites = np.unique(buildings.site[members])
    return bool(layout.households[group] > band[1] and sites.size == 1)


def _candidate_tiers(layout: _Layout, group: int) -> list[list[tuple[int, ...]]]:
    """Groups to re-cut together, in tiers tried in turn until one has a useful
    re-cut: the part alone and with each neighbour; with a neighbour and one of
    that neighbour's neighbours; with all its neighbours, and with all parts
    two steps away. Larger unions leave ``plan_band`` more room where a part
    sits in a dead end (the tip of a long notch) between full parts."""
    near = layout.neighbours(group)
    pairs = [(group,)] + [tuple(sorted((group, n))) for n in near]
    triples = [
        tuple(sorted({group, n, m})) for n in near for m in layout.neighbours(n) if m != group
    ]
    ring = {group, *near}
    rings = [tuple(sorted(ring)), tuple(sorted(ring.union(*(layout.neighbours(n) for n in near))))]
    seen: set[tuple[int, ...]] = set()
    tiers = []
    for tier in (pairs, triples, rings):
        fresh = [t for t in dict.fromkeys(tier) if t not in seen]
        seen.update(fresh)
        tiers.append(fresh)
    return tiers


def _recut(
    layout: _Layout, groups: tuple[int, ...], *, buildings: _Buildings, band: tuple[int, int]
) -> _Move | None:
    """``plan_band`` on the union of ``groups``, snapped and made contiguous on
    its own; ``None`` when it changes nothing."""
    faces = layout.faces[np.isin(layout.face_group, groups)]
    union_4326 = MultiPolygon([_one_polygon(faces)])
    idx = np.sort(np.concatenate([layout.members[g] for g in groups]))
    if idx.size == 0:
        return None
    inside = buildings.subset(idx)
    plan = plan_band(
        union_4326, inside.lonlat, weights=inside.weights, min_weight=band[0],
        max_weight=band[1] + _BAND_SLACK, grid_size_deg=GRID_SIZE_DEG,
    )  # fmt: skip
    if len(plan.pieces_4326) == len(groups) == 1:
        return None
    before = _score(layout.households[list(groups)], band=band)
    planned = np.rint(np.array(plan.weights)).astype(np.int64)
    if not _improves(_score(planned, band=band), before):
        # Making the planned parts contiguous splits some, rarely for the
        # better: skip the snapping when the plan itself does not help.
        return None
    local = _layout(union_4326, lines=plan.cuts_4326, hints=plan.pieces_4326, buildings=inside)
    after = _score(local.households, band=band)
    return _Move(
        groups=groups, lines=plan.cuts_4326, geoms=local.geoms,
        gain=(before[0] - after[0], before[1] - after[1]),
    )  # fmt: skip


# -- moving single buildings ---------------------------------------------------------
def _rebalanced(
    layout: _Layout, *, outline_4326: MultiPolygon, buildings: _Buildings, band: tuple[int, int]
) -> _Layout:
    """Move single buildings across part boundaries where re-cutting left parts
    outside the band.

    The parts outside the band that could be in it and those up to two steps
    away form the region; it is cut finer, one cell per building location, and
    cells change parts while that improves the score (``_CellSearch``). Twice:
    first with the Voronoi cells of each part's own buildings (boundaries stay
    where they are until a cell moves), then, if parts are still outside the
    band, with the Voronoi cells of all the region's buildings (the boundaries
    between its parts become Voronoi edges, which lets a building reach a
    neighbour its part's boundary kept it from). A pass is kept only if it
    improves the whole grid's score.
    """
    for shared in (False, True):
        region = _region(layout, buildings=buildings, band=band)
        if not region:
            break
        result = _searched(
            layout, region=region, shared=shared, outline_4326=outline_4326,
            buildings=buildings, band=band,
        )  # fmt: skip
        if _improves(_score(result.households, band=band), _score(layout.households, band=band)):
            layout = result
    return layout


def _region(layout: _Layout, *, buildings: _Buildings, band: tuple[int, int]) -> set[int]:
    """Parts outside the band that could be in it (no location heavier than
    the band allows), and those up to two steps away; empty if there are none."""
    missing = _missing(layout.households, band=band)
    region = {
        g for g in np.flatnonzero(missing > 0).tolist()
        if _heaviest_site(layout, g, buildings=buildings) <= band[1]
    }  # fmt: skip
    for _ in range(2 if region else 0):
        region |= {n for g in region for n in layout.neighbours(g)}
    return region


def _searched(
    layout: _Layout,
    *,
    region: set[int],
    shared: bool,
    outline_4326: MultiPolygon,
    buildings: _Buildings,
    band: tuple[int, int],
) -> _Layout:
    """``layout`` after a search over cells of the ``region`` (see ``_rebalanced``)."""
    building_group = np.zeros(buildings.ids.size, dtype=np.intp)
    for group, members in enumerate(layout.members):
        building_group[members] = group
    lines = list(layout.lines)
    cells: list[BaseGeometry] = [g for i, g in enumerate(layout.geoms) if i not in region]
    cell_group = [i for i in range(len(layout.geoms)) if i not in region]
    areas = (
        [(sorted(region), _union(layout, sorted(region)))] if shared
        else [([g], layout.geoms[g]) for g in sorted(region)]
    )  # fmt: skip
    for area_groups, area in areas:
        members = np.sort(np.concatenate([layout.members[g] for g in area_groups]))
        cuts, pieces, holder = _cell_plan(area, lonlat=buildings.lonlat[members])
        lines.extend(cuts)
        for piece, h in zip(pieces, holder, strict=True):
            # A piece holding no building gets an owner of its own: it joins
            # a neighbouring group when the groups are made contiguous.
            owner_id = int(building_group[members[h]]) if h >= 0 else len(layout.geoms) + len(cells)
            cells.append(piece)
            cell_group.append(owner_id)
    coverage = node_coverage(
        outline_4326, linework=lines, pieces=cells, grid_size_deg=GRID_SIZE_DEG
    )
    owner = np.asarray(cell_group, dtype=np.intp)[coverage.owner]
    fine = _layout_of(coverage.faces, owner=owner, lines=tuple(lines), buildings=buildings)
    in_region = np.zeros(len(fine.geoms), dtype=np.bool_)
    inside = np.concatenate([layout.members[g] for g in sorted(region)])
    in_region[fine.face_group[fine.building_face[inside]]] = True
    face_group = _moved_faces(
        fine, face_cell=coverage.owner, in_region=in_region, buildings=buildings, band=band
    )
    if face_group is None:
        return fine
    holds = np.bincount(fine.building_face, minlength=fine.faces.size) > 0
    # Renumbers the groups; a group whose last cell left is gone.
    groups = _contiguous_groups(face_group, holds=holds, edges=fine.edges, lengths_m=fine.lengths_m)
    return _grouped(
        lines=fine.lines, faces=fine.faces, face_group=groups, building_face=fine.building_face,
        buildings=buildings, edges=fine.edges, lengths_m=fine.lengths_m,
    )  # fmt: skip


def _union(layout: _Layout, groups: list[int]) -> BaseGeometry:
    """The area of ``groups`` (one noding: their edges match exactly)."""
    faces = layout.faces[np.isin(layout.face_group, groups)]
    return as_multipolygon(shapely.coverage_union_all(faces), grid_size_deg=GRID_SIZE_DEG)


def _cell_plan(
    area_4326: BaseGeometry, *, lonlat: NDArray[np.float64]
) -> tuple[list[BaseGeometry], list[BaseGeometry], list[int]]:
    """Cuts and cells of ``area_4326``, one cell per building location, and for
    each cell the index of a building in it (-1: none): the Voronoi cells of
    the locations clipped to the area, so that the buildings nearest a
    boundary have the cells along it. No cuts for a single location.

    Snapping moves a cut by ≤ 0.7e-6°; if a building lies within
    ``_CELL_CLEARANCE_DEG`` of a Voronoi edge (buildings a metre apart), k-d
    cells (``plan_bisect``: cuts strictly between coordinates) are used instead.
    """
    sites, first = np.unique(lonlat, axis=0, return_index=True)
    if sites.shape[0] < 2:
        return [], [area_4326], [0 if lonlat.shape[0] else -1]
    seeds = shapely.multipoints(sites)
    edges = shapely.voronoi_polygons(seeds, extend_to=area_4326, only_edges=True)
    inside = shapely.intersection(edges, area_4326)
    assert isinstance(inside, BaseGeometry)
    if float(shapely.distance(inside, shapely.multipoints(lonlat))) >= _CELL_CLEARANCE_DEG:
        diagram = shapely.voronoi_polygons(seeds, extend_to=area_4326, ordered=True)
        pieces = shapely.intersection(shapely.get_parts(diagram), area_4326)
        return [inside], list(pieces), [int(i) for i in first.tolist()]
    plan = plan_bisect(area_4326, lonlat, target_parts=sites.shape[0], grid_size_deg=GRID_SIZE_DEG)
    holder = [int(idx[0]) if idx.size else -1 for idx in plan.indices]
    return list(plan.cuts_4326), list(plan.pieces_4326), holder


@dataclass(frozen=True)
class _Cells:
    """The faces of a finely cut layout grouped into cells, one per building
    location: the connected faces of its Voronoi cell (or k-d cell) that hold
    it, and the faces of its group without buildings that join the cell they
    share the longest edge with. ``edges`` are pairs of cells sharing an edge
    ``lengths_m`` long."""

    face_cell: NDArray[np.intp]
    group: NDArray[np.intp]
    households: NDArray[np.int64]
    edges: NDArray[np.intp]
    lengths_m: NDArray[np.float64]


def _cells(fine: _Layout, *, owner: NDArray[np.intp], buildings: _Buildings) -> _Cells:
    """Cells of ``fine`` whose faces are owned by ``owner`` (a cell plan piece),
    never crossing a group boundary of ``fine``."""
    holds = np.bincount(fine.building_face, minlength=fine.faces.size) > 0
    face_cell = _contiguous_groups(
        owner, holds=holds, edges=fine.edges, lengths_m=fine.lengths_m, fence=fine.face_group
    )
    cells = int(face_cell.max()) + 1
    group = np.zeros(cells, dtype=np.intp)
    group[face_cell] = fine.face_group
    households = np.bincount(
        face_cell[fine.building_face], weights=buildings.households, minlength=cells
    ).astype(np.int64)
    ends = face_cell[fine.edges]
    crossing = ends[:, 0] != ends[:, 1]
    pairs = np.sort(ends[crossing], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    lengths_m = np.bincount(
        inverse.reshape(-1), weights=fine.lengths_m[crossing], minlength=len(unique)
    ).astype(np.float64)
    return _Cells(
        face_cell=face_cell, group=group, households=households,
        edges=unique.astype(np.intp).reshape(-1, 2), lengths_m=lengths_m,
    )  # fmt: skip


def _moved_faces(
    fine: _Layout,
    *,
    face_cell: NDArray[np.intp],
    in_region: NDArray[np.bool_],
    buildings: _Buildings,
    band: tuple[int, int],
) -> NDArray[np.intp] | None:
    """The group of each face after a greedy search over cells (see ``_cells``;
    ``face_cell``: the cell plan piece owning each face) of the region's groups;
    ``None`` if it found nothing better."""
    cells = _cells(fine, owner=face_cell, buildings=buildings)
    search = _CellSearch(cells, households=fine.households, in_region=in_region, band=band)
    if not search.run():
        return None
    return search.group[cells.face_cell]


def _missing(households: NDArray[np.int64], *, band: tuple[int, int]) -> NDArray[np.int64]:
    """Households by which each part misses the band (0 inside it)."""
    return np.maximum(band[0] - households, 0) + np.maximum(households - band[1], 0)


class _CellSearch:
    """Greedy local search: cells change groups while that improves the score
    (``_improves``: parts outside the band, households missing) of the region.

    Steps, the first that helps is taken, so the search ends:

    * *move* a cell to a neighbouring group, best gain first; among equal gains
      the cell sharing the longest edge with its new group (net of the one it
      shared with its old group), which keeps parts compact. Cells that hang on
      the moving one alone (a tooth of a comb) go along;
    * *chain* two moves that help together: a swap across a boundary (the
      29 | 32 of 61 households), or a cell passed on through a full group;
    * *dissolve* a group below the band into its neighbours, cell by cell,
      each to a neighbour it fits in, then move and chain around it (the
      26 | 31 | 28 of 85 households);
    * *re-split* a group outside the band and a neighbour: among the ways to
      cut their cells into two connected sets both in the band (sets grown
      compactly from every cell, and all connected sets up to
      ``_RESPLIT_BUDGET`` search steps), the one with the shortest boundary
      between them (the 29 | 31 of 60 households that needs 30 | 30).

    A group never falls apart: a step that would disconnect one is skipped,
    and a dissolved group's cells each join a group they touch. Dissolves and
    re-splits that failed are not tried again until a group around changes.
    """

    def __init__(
        self,
        cells: _Cells,
        *,
        households: NDArray[np.int64],
        in_region: NDArray[np.bool_],
        band: tuple[int, int],
    ) -> None:
        self.cells = cells
        self.band = band
        self.in_region = in_region
        self.weight = [int(w) for w in cells.households.tolist()]
        self.group = cells.group.copy()
        self.households = [int(h) for h in households.tolist()]
        self.members: list[set[int]] = [set() for _ in range(households.size)]
        for cell, group in enumerate(self.group.tolist()):
            self.members[group].add(cell)
        self.version = [0] * households.size  # bumped when a group changes for good
        self.failed: set[tuple[int, ...]] = set()
        # Gains evaluated so far; the search stops at the budget (a safety net
        # for grids where most parts are beyond repair: it bounds the time).
        self.evaluations = 0
        self.budget = _SEARCH_EVALUATIONS_PER_CELL * max(int(in_region[self.group].sum()), 1)
        self.adjacent: list[dict[int, float]] = [{} for _ in range(self.group.size)]
        for (a, b), length in zip(cells.edges.tolist(), cells.lengths_m.tolist(), strict=True):
            self.adjacent[a][b] = length
            self.adjacent[b][a] = length

    def run(self) -> bool:
        """Search until no step helps; whether any did."""
        steps = 0
        for _ in range(4 * self.group.size + 1):
            if self._exhausted():
                break
            if not (self._move() or self._chain() or self._dissolve() or self._resplit()):
                break
            steps += 1
        return steps > 0

    # -- bookkeeping
    def _exhausted(self) -> bool:
        return self.evaluations > self.budget

    def _reassign(self, cell: int, target: int) -> None:
        source = int(self.group[cell])
        self.group[cell] = target
        self.households[source] -= self.weight[cell]
        self.households[target] += self.weight[cell]
        self.members[source].discard(cell)
        self.members[target].add(cell)

    def _apply(self, steps: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Make ``steps`` (cell, new group); the steps that undo them."""
        undo = [(cell, int(self.group[cell])) for cell, _ in steps]
        for cell, target in steps:
            self._reassign(cell, target)
        return undo[::-1]

    def _miss(self, group: int) -> int:
        if not self.members[group] or not self.in_region[group]:
            return 0  # gone (its last cell left), or not ours to judge
        h = self.households[group]
        return max(self.band[0] - h, 0) + max(h - self.band[1], 0)

    def _local_score(self, groups: set[int]) -> Score:
        missing = [self._miss(g) for g in groups]
        return sum(m > 0 for m in missing), sum(missing)

    def _gain(self, steps: list[tuple[int, int]]) -> Score | None:
        """How much ``steps`` would lower the score, if they improve it."""
        self.evaluations += 1
        touched = {int(self.group[c]) for c, _ in steps} | {t for _, t in steps}
        before = self._local_score(touched)
        undo = self._apply(steps)
        after = self._local_score(touched)
        self._apply(undo)
        return (before[0] - after[0], before[1] - after[1]) if _improves(after, before) else None

    def _try(self, steps: list[tuple[int, int]]) -> bool:
        """Make ``steps`` if every group they touch stays connected."""
        touched = {int(self.group[c]) for c, _ in steps} | {t for _, t in steps}
        undo = self._apply(steps)
        if all(self._connected(g) for g in touched):
            for g in touched:
                self.version[g] += 1
            return True
        self._apply(undo)
        return False

    def _connected(self, group: int) -> bool:
        cells = self.members[group]
        return len(cells) <= 1 or _is_connected(cells, adjacent=self.adjacent)

    def _neighbours(self, group: int) -> dict[int, float]:
        """Groups of the region next to ``group``, with the shared edge (m)."""
        found: dict[int, float] = {}
        for cell in self.members[group]:
            for other, length in self.adjacent[cell].items():
                g = int(self.group[other])
                if g != group and self.in_region[g]:
                    found[g] = found.get(g, 0.0) + length
        return found

    def _bad(self, *, below_only: bool = False) -> list[int]:
        """Region groups outside the band that could be brought into it (only
        those below it with ``below_only``), worst first: not a group holding a
        location heavier than the band allows."""
        live = [
            g for g in range(len(self.members))
            if self._miss(g) > 0 and max(self.weight[c] for c in self.members[g]) <= self.band[1]
        ]  # fmt: skip
        if below_only:
            live = [g for g in live if self.households[g] < self.band[0]]
        return sorted(live, key=lambda g: (-self._miss(g), g))

    def _boundary(self, near: set[int] | None = None) -> list[tuple[int, int, float]]:
        """(cell, neighbouring group, edge to it minus edge to its own group, m)
        for region cells; with ``near``, only moves out of or into those groups."""
        if near is None:
            cells = [c for g in range(len(self.members)) if self.in_region[g]
                     for c in self.members[g]]  # fmt: skip
        else:
            inner = {c for g in near for c in self.members[g]}
            outer = {o for c in inner for o in self.adjacent[c]}
            cells = [c for c in inner | outer if self.in_region[self.group[c]]]
        found: list[tuple[int, int, float]] = []
        for cell in sorted(cells):
            own = int(self.group[cell])
            by_group: dict[int, float] = {}
            for other, length in self.adjacent[cell].items():
                g = int(self.group[other])
                if self.in_region[g]:
                    by_group[g] = by_group.get(g, 0.0) + length
            inside = by_group.pop(own, 0.0)
            found.extend(
                (cell, g, length - inside) for g, length in by_group.items()
                if near is None or own in near or g in near
            )  # fmt: skip
        return found

    # -- steps
    def _move(self, near: set[int] | None = None) -> bool:
        ranked = []
        blocks: dict[int, list[int]] = {}
        for cell, target, net_m in self._boundary(near):
            if self._exhausted():
                break
            block = blocks.setdefault(cell, self._block(cell))
            steps = [(c, target) for c in block]
            gain = self._gain(steps)
            if gain is not None:
                ranked.append(((-gain[0], -gain[1], len(block), -net_m, cell, target), steps))
        return any(self._try(steps) for _, steps in sorted(ranked))

    def _block(self, cell: int) -> list[int]:
        """``cell`` and the cells of its group that hang on it alone: without it
        the group falls into pieces, and all but the one with most households
        (a tooth of a comb-shaped grid) go along."""
        rest = self.members[int(self.group[cell])] - {cell}
        pieces = []
        while rest:
            piece = _reachable(min(rest), within=rest, adjacent=self.adjacent)
            pieces.append(piece)
            rest = rest - piece
        if len(pieces) <= 1:
            return [cell]
        kept = max(pieces, key=lambda p: (sum(self.weight[c] for c in p), -min(p)))
        return [cell, *sorted(c for p in pieces if p is not kept for c in p)]

    def _chain(self, near: set[int] | None = None) -> bool:
        """Two moves that help together though neither alone does: a cell
        moves between groups at or next to a group outside the band, and a
        second cell moves out of or into one of the two groups the first
        touched (a swap, or households passed on through a full group)."""
        ranked = []
        bad = set(self._bad())
        # Either move may be the one that reaches the group outside the band.
        around = bad.union(*(self._neighbours(g) for g in bad))
        for cell, target, net_m in self._boundary(near):
            source = int(self.group[cell])
            if source not in around and target not in around:
                continue
            if self._exhausted():
                break
            undo = self._apply([(cell, target)])
            seconds = [s for s in self._boundary({source, target}) if s[0] != cell]
            self._apply(undo)
            for other, other_target, other_net_m in seconds:
                steps = [(cell, target), (other, other_target)]
                gain = self._gain(steps)
                if gain is not None:
                    key = (-gain[0], -gain[1], -(net_m + other_net_m), cell, other, other_target)
                    ranked.append((key, steps))
        return any(self._try(steps) for _, steps in sorted(ranked))

    def _dissolve(self) -> bool:
        for doomed in self._bad(below_only=True):
            if self._exhausted():
                return False
            near = {doomed, *self._neighbours(doomed)}
            near |= {g for n in list(near) for g in self._neighbours(n)}
            key = (0, doomed, *(self.version[g] for g in sorted(near)))
            if key in self.failed:
                continue
            before = self._local_score(near)
            saved = (self.group.copy(), list(self.households), [set(m) for m in self.members],
                     list(self.version))  # fmt: skip
            for by_room in (False, True):
                if self._spread(doomed, by_room=by_room):
                    # Spreading alone may overfill a neighbour; moves, chains and
                    # re-splits may pass the surplus on: judge the result after them.
                    for _ in range(self.group.size):
                        if self._exhausted() or not (
                            self._move(near) or self._chain(near) or self._resplit(near)
                        ):
                            break
                    if _improves(self._local_score(near), before):
                        for g in near:
                            self.version[g] += 1
                        return True
                self.group = saved[0].copy()
                self.households = list(saved[1])
                self.members = [set(m) for m in saved[2]]
                self.version = list(saved[3])
            self.failed.add(key)
        return False

    def _spread(self, doomed: int, *, by_room: bool) -> bool:
        """Give each cell of ``doomed`` to a neighbouring group it fits in: the
        one it shares the longest edge with (compact), or with ``by_room`` the
        one with most room left (balanced); if none fits, the one with most room."""
        pending = set(self.members[doomed])
        while pending:
            best: tuple[tuple[bool, float, float, int, int], int, int] | None = None
            for cell in sorted(pending):
                by_group: dict[int, float] = {}
                for other, length in self.adjacent[cell].items():
                    g = int(self.group[other])
                    if g != doomed and self.in_region[g]:
                        by_group[g] = by_group.get(g, 0.0) + length
                for g, length in by_group.items():
                    room = self.band[1] - self.households[g] - self.weight[cell]
                    first = room if by_room or room < 0 else length
                    key = (room >= 0, first, length, -cell, -g)
                    if best is None or key > best[0]:
                        best = (key, cell, g)
            if best is None:
                return False
            _, cell, target = best
            self._reassign(cell, target)
            pending.discard(cell)
        return True

    def _resplit(self, near: set[int] | None = None) -> bool:
        for group in self._bad():
            if near is not None and group not in near:
                continue
            neighbours = self._neighbours(group)
            for other in sorted(neighbours, key=lambda g: (-neighbours[g], g)):
                key = (1, group, other, self.version[group], self.version[other])
                if key in self.failed:
                    continue
                split = self._best_split(group, other)
                if split is None:
                    self.failed.add(key)
                    continue
                self._apply([(c, group) for c in split[0]] + [(c, other) for c in split[1]])
                self.version[group] += 1
                self.version[other] += 1
                return True
        return False

    def _best_split(self, first: int, second: int) -> tuple[list[int], list[int]] | None:
        """The two connected sets of the cells of both groups, both in the band,
        with the shortest boundary between them; ``None`` if none was found."""
        cells = self.members[first] | self.members[second]
        if len(cells) > _RESPLIT_MAX_CELLS:
            return None  # the search recurses once per cell
        weight = {c: self.weight[c] for c in cells}
        total = sum(weight.values())
        low, high = self.band
        lower, upper = max(low, total - high), min(high, total - low)
        if lower > upper:
            return None
        best: tuple[float, list[int]] | None = None
        grown = _grown_sets(cells, adjacent=self.adjacent, weight=weight, lower=lower, upper=upper)
        enumerated = _connected_sets(
            min(cells), within=cells, adjacent=self.adjacent, weight=weight, upper=upper
        )
        seen: set[frozenset[int]] = set()
        for side in [*grown, *enumerated]:
            key = frozenset(side)
            if key in seen or sum(weight[c] for c in side) < lower or len(side) == len(cells):
                continue
            seen.add(key)
            rest = cells - side
            if not _is_connected(rest, adjacent=self.adjacent):
                continue
            cut_m = sum(length for c in side for o, length in self.adjacent[c].items() if o in rest)
            if best is None or (cut_m, sorted(side)) < (best[0], best[1]):
                best = (cut_m, sorted(side))
        if best is None:
            return None
        return best[1], sorted(cells - set(best[1]))


def _grown_sets(
    cells: set[int],
    *,
    adjacent: list[dict[int, float]],
    weight: dict[int, int],
    lower: int,
    upper: int,
) -> list[set[int]]:
    """Connected sets weighing ``lower``–``upper``, grown from every cell by
    adding, each time, the neighbouring cell sharing the longest edge with the
    set (compact sets, found in quadratic time where enumerating all is
    exponential)."""
    found: list[set[int]] = []
    for seed in sorted(cells):
        chosen = {seed}
        load = weight[seed]
        border: dict[int, float] = {}
        for other, length in adjacent[seed].items():
            if other in cells:
                border[other] = border.get(other, 0.0) + length
        while load <= upper:
            if load >= lower:
                found.append(set(chosen))
            fits = [c for c in border if load + weight[c] <= upper]
            if not fits:
                break
            cell = max(fits, key=lambda c: (border[c], -c))
            del border[cell]
            chosen.add(cell)
            load += weight[cell]
            for other, length in adjacent[cell].items():
                if other in cells and other not in chosen:
                    border[other] = border.get(other, 0.0) + length
    return found


def _connected_sets(
    root: int,
    *,
    within: set[int],
    adjacent: list[dict[int, float]],
    weight: dict[int, int],
    upper: int,
) -> list[set[int]]:
    """Connected sets of cells of ``within`` holding ``root``, weighing at most
    ``upper``, each once (include-or-exclude branching on the lowest frontier
    cell); stops after ``_RESPLIT_BUDGET`` branches."""
    found: list[set[int]] = []
    budget = [_RESPLIT_BUDGET]

    def grow(chosen: set[int], frontier: set[int], banned: set[int], load: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            return
        if not frontier:
            found.append(chosen)
            return
        cell = min(frontier)
        rest = frontier - {cell}
        if load + weight[cell] <= upper:
            grown = chosen | {cell}
            reach = {
                o for o in adjacent[cell] if o in within and o not in grown and o not in banned
            }
            grow(grown, rest | reach, banned, load + weight[cell])
        grow(chosen, rest, banned | {cell}, load)

    start = {o for o in adjacent[root] if o in within}
    grow({root}, start - {root}, set(), weight[root])
    return found


def _reachable(start: int, *, within: set[int], adjacent: list[dict[int, float]]) -> set[int]:
    """The cells of ``within`` reachable from ``start`` through ``within``."""
    seen = {start}
    stack = [start]
    while stack:
        current = stack.pop()
        for other in adjacent[current]:
            if other in within and other not in seen:
                seen.add(other)
                stack.append(other)
    return seen


def _is_connected(cells: set[int], *, adjacent: list[dict[int, float]]) -> bool:
    return bool(cells) and _reachable(min(cells), within=cells, adjacent=adjacent) == cells


# -- the answer -------------------------------------------------------------------------
def _suggestion(
    layout: _Layout, *, outline_4326: MultiPolygon, buildings: _Buildings, band: tuple[int, int]
) -> Suggestion:
    """Parts in a stable order (by their lowest building id; empty parts last,
    north-west first) with the reasons for those outside the band."""
    order = sorted(range(len(layout.geoms)), key=lambda g: _part_sort_key(layout, g, buildings))
    parts = tuple(
        SuggestedPart(
            geom_4326=layout.geoms[g],
            building_ids=tuple(sorted(buildings.ids[layout.members[g]].tolist())),
            households=int(layout.households[g]),
            within_band=band[0] <= int(layout.households[g]) <= band[1],
        )
        for g in order
    )
    reasons = _reasons(
        layout, order=order, outline_4326=outline_4326, buildings=buildings, band=band
    )
    return Suggestion(parts=parts, min_households=band[0], max_households=band[1], reasons=reasons)


def _part_sort_key(layout: _Layout, group: int, buildings: _Buildings) -> tuple[int, float, float]:
    members = layout.members[group]
    if members.size:
        return 0, float(buildings.ids[members].min()), 0.0
    point = layout.geoms[group].representative_point()
    return 1, -point.y, point.x


def _reasons(
    layout: _Layout,
    *,
    order: list[int],
    outline_4326: MultiPolygon,
    buildings: _Buildings,
    band: tuple[int, int],
) -> tuple[str, ...]:
    low, high = band
    total = int(buildings.households.sum())
    reasons: list[str] = []
    if total < low:
        reasons.append(f"the grid holds {total} households, fewer than {low}")
    elif math.ceil(total / high) > total // low:
        reasons.append(
            f"the grid holds {total} households: no number of parts of {low}–{high} households adds up to {total}"
        )
    for number, group in enumerate(order, start=1):
        households = int(layout.households[group])
        if households > high:
            reasons.append(
                _reason_above(layout, group, number=number, buildings=buildings, band=band)
            )
        elif households < low and total >= low:
            below = _reason_below(
                layout, group, number=number, outline_4326=outline_4326,
                buildings=buildings, band=band,
            )  # fmt: skip
            reasons.append(below)
    return tuple(reasons)


def _reason_above(
    layout: _Layout, group: int, *, number: int, buildings: _Buildings, band: tuple[int, int]
) -> str:
    members = layout.members[group]
    households = int(layout.households[group])
    site_households = np.bincount(buildings.site[members], weights=buildings.households[members])
    heaviest = int(np.argmax(site_households))
    if site_households[heaviest] > band[1]:
        on_site = members[buildings.site[members] == heaviest]
        ids = sorted(buildings.ids[on_site].tolist())
        heavy = int(site_households[heaviest])
        if len(ids) == 1:
            what = f"building {ids[0]} alone holds {heavy} households, more than {band[1]}"
        else:
            listed = ", ".join(str(i) for i in ids)
            what = f"buildings {listed}, at the same point, hold {heavy} households together, more than {band[1]}"
        if heavy == households:
            return what
        return f"part {number} holds {households} households: {what}"
    return (
        f"part {number} ({_ids_text(buildings.ids[members])}) holds {households} households, "
        f"more than {band[1]}: no re-cut of it with its neighbouring parts, and no move of "
        f"buildings between them, brings them all within {band[0]}–{band[1]}"
    )


def _reason_below(
    layout: _Layout,
    group: int,
    *,
    number: int,
    outline_4326: MultiPolygon,
    buildings: _Buildings,
    band: tuple[int, int],
) -> str:
    members = layout.members[group]
    households = int(layout.households[group])
    head = f"part {number} ({_ids_text(buildings.ids[members])}) holds {households} households, fewer than {band[0]}"
    neighbours = layout.neighbours(group)
    if not neighbours:
        if len(outline_4326.geoms) > 1:
            return f"{head}: it is a separate piece of the grid, and a micro-grid must be one contiguous area"
        return head
    if all(households + int(layout.households[n]) > band[1] for n in neighbours):
        return f"{head}, and joined to any neighbouring part it would hold more than {band[1]}"
    return (
        f"{head}: no re-cut of it with its neighbouring parts, and no move of buildings "
        f"between them, brings them all within {band[0]}–{band[1]}"
    )


def _ids_text(ids: NDArray[np.int64]) -> str:
    listed = sorted(ids.tolist())
    if not listed:
        return "no buildings"
    shown = ", ".join(str(i) for i in listed[:_IDS_IN_REASON])
    more = ", …" if len(listed) > _IDS_IN_REASON else ""
    return f"building{'s' if len(listed) > 1 else ''} {shown}{more}"
