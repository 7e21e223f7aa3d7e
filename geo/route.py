"""Door-to-door walking routes through a micro-grid.

A grid worker visits a list of households (``Stop``) and wants the shortest
walk: an *open* path that begins at the worker's position (when given) and ends
at whichever stop comes last, with no walk back.

Promises of ``plan_route``:

* **Distances** are great-circle distances (haversine on the mean Earth radius,
  WGS84 lon/lat degrees in) multiplied by ``DETOUR_FACTOR``: streets and paths
  are not straight lines. No street network is needed, so a plan is available
  wherever households have coordinates.
* **Sites.** Stops in the same building (same ``building_id``; or, when
  ``building_id`` is None, identical coordinates) form one *site*. The route is
  optimised over sites and visits every site once, so a worker never leaves a
  building and comes back. Inside a site the stops are ordered by unit
  (单元, numeric-aware: "2" before "10"; no unit last), then floor ascending (no
  floor last), then household id: one stairwell at a time, climbing.
* **Duration** is walking distance ÷ walking speed plus ``STAIRS_S_PER_FLOOR``
  for every floor climbed: each stairwell (unit of a building) is climbed once,
  to its highest visited floor, and walked down again.
* **Order.** ``Route.order`` holds every stop index exactly once; the walking
  distance is measured along that order between the stops' own points, so it
  is exactly the length of ``Route.line_lonlat`` times the detour factor.

The solver (more than 3 sites): OR-Tools routing builds a first route
(``PATH_CHEAPEST_ARC``) and improves it with guided local search for
``ORTOOLS_SHARE`` of the time limit (less on small routes); the rest goes to
an iterated local search (2-opt and Or-opt moves on nearest-neighbour candidate
lists, double-bridge kicks) that polishes OR-Tools' route. On 500 random stops
OR-Tools alone ends 8–9 % (worst 11–13 %) above LKH's length after 1 s; with
the polish, 1 % (worst 1.5 %) (bench/routes.py, bench/RESULTS.md).

Determinism: the polish is seeded and stops after a number of fruitless
kicks, so the same input and the same OR-Tools route give the same result
unless the time limit cuts the polish short. Guided
local search, however, runs for a time, not for an amount of work, so its route
can vary with machine speed and load, and with it the final route of a large
instance (by a fraction of a per cent). Small routes, which both stages solve
to the optimum, come out the same.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from geo.errors import InvalidInput, LimitExceeded

# Streets and footpaths are not straight lines. The network distance between two
# points in a city is commonly 1.2–1.4 times the straight-line distance (the
# "circuity" or "detour index" of urban street networks); 1.3 is the middle of
# that range. It scales every leg alike, so it changes lengths, not the order.
DETOUR_FACTOR = 1.3
# An unhurried adult walking pace (about 4.3 km/h), door to door.
WALKING_SPEED_M_S = 1.2
# A rough figure for climbing one storey (about 3 m, 17–18 steps, ~10 s) and
# walking it down again (~5 s).
STAIRS_S_PER_FLOOR = 15.0
# IUGG mean Earth radius, the usual radius for haversine distances.
EARTH_MEAN_RADIUS_M = 6_371_008.8
# The distance matrix is n² and OR-Tools takes it as Python lists: cap the input
# well above a grid's 300–500 households.
MAX_STOPS = 2_000
MAX_TIME_LIMIT_S = 60.0
# Routes of at most this many sites are found by enumerating every order.
TRIVIAL_SITES = 3
# Share of the time limit given to OR-Tools' guided local search; the rest goes
# to the 2-opt/Or-opt polish, which improves a 500-stop route far faster.
# Guided local search never stops by itself, so small routes (which it solves
# in milliseconds) get at most this much per site.
ORTOOLS_SHARE = 0.25
ORTOOLS_MAX_S_PER_SITE = 0.002
# Candidate moves join a site only to one of its nearest sites (classic
# neighbour lists: improving 2-opt and Or-opt moves almost always do).
_NEIGHBOURS = 10
# Longest segment that Or-opt moves elsewhere (Or's original 1–3 sites).
_OR_OPT_MAX_SEGMENT = 3
# Double-bridge kicks reconnect segments within this many positions of the
# route, so the local search repairs them quickly.
_KICK_SPAN = 50
# The polish stops once this many kicks per site in a row found nothing
# shorter (or at the time limit): small routes stop early, once converged.
STALL_KICKS_PER_SITE = 30
# Fixed seed: the same input gives the same kicks.
_KICK_SEED = 20200123

Lonlat = tuple[float, float]


@dataclass(frozen=True)
class Stop:
    """One household to visit, at WGS84 ``lon``/``lat`` (degrees).

    ``building_id``, ``unit`` (单元, e.g. "2") and ``floor`` place the
    household inside its building; ``reason`` says why it is visited and is
    carried along, never read.
    """

    household_id: int
    lon: float
    lat: float
    building_id: int | None = None
    unit: str | None = None
    floor: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Route:
    """A walking route through the stops given to ``plan_route``.

    ``order``: indices into those stops in walking order, each exactly once.
    ``distance_m``: walking distance from the start (when given) through every
    stop to the last, with no return. ``duration_s``: walking time plus stairs.
    ``line_lonlat``: the start (when given), then each stop point in order,
    consecutive repeats dropped (households of one building share a point).
    ``solver``: what produced the order (``"trivial"`` for ≤ 3 sites).
    """

    order: tuple[int, ...]
    distance_m: float
    duration_s: float
    line_lonlat: tuple[Lonlat, ...]
    solver: str


@dataclass(frozen=True)
class _Site:
    """Stops in one building: a representative point and the stops in visiting order."""

    lonlat: Lonlat
    stop_indices: tuple[int, ...]


def walking_distance_matrix_m(
    lonlat: NDArray[np.float64], *, detour_factor: float = DETOUR_FACTOR
) -> NDArray[np.float64]:
    """Walking distances in metres between all pairs of ``lonlat`` points.

    ``lonlat`` is an ``(n, 2)`` array of WGS84 longitude, latitude in degrees.
    The result is ``(n, n)``, symmetric with a zero diagonal: the haversine
    distance on the mean Earth radius times ``detour_factor``. Round it
    (``np.rint``) for an integer solver; metres are the unit throughout.
    """
    _check_detour_factor(detour_factor)
    lon_deg, lat_deg = _checked_lonlat_columns(lonlat)
    great_circle_m = _haversine_m(
        lon1_deg=lon_deg[:, None], lat1_deg=lat_deg[:, None],
        lon2_deg=lon_deg[None, :], lat2_deg=lat_deg[None, :],
    )  # fmt: skip
    return great_circle_m * detour_factor


def _haversine_m(
    *,
    lon1_deg: NDArray[np.float64],
    lat1_deg: NDArray[np.float64],
    lon2_deg: NDArray[np.float64],
    lat2_deg: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Great-circle distance in metres on the mean Earth radius, element-wise
    (with numpy broadcasting)."""
    lat1, lat2 = np.radians(lat1_deg), np.radians(lat2_deg)
    sin_half_dlat = np.sin((lat2 - lat1) / 2.0)
    sin_half_dlon = np.sin(np.radians(lon2_deg - lon1_deg) / 2.0)
    h = sin_half_dlat**2 + np.cos(lat1) * np.cos(lat2) * sin_half_dlon**2
    # Rounding can push h a hair above 1 for antipodal points.
    distance_m: NDArray[np.float64] = (
        2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    )
    return distance_m


def _checked_lonlat_columns(
    lonlat: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Longitudes and latitudes of an ``(n, 2)`` array, each checked to be WGS84 degrees."""
    points = np.asarray(lonlat, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise InvalidInput(f"lonlat must be an (n, 2) array of lon, lat; got shape {points.shape}")
    bad = ~(
        np.isfinite(points).all(axis=1)
        & (np.abs(points[:, 0]) <= 180.0)
        & (np.abs(points[:, 1]) <= 90.0)
    )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _check_lonlat(lon=float(points[i, 0]), lat=float(points[i, 1]), what=f"point {i}")
    return points[:, 0], points[:, 1]


def plan_route(
    stops: Sequence[Stop],
    *,
    start_lonlat: Lonlat | None = None,
    time_limit_s: float = 1.0,
    detour_factor: float = DETOUR_FACTOR,
    walking_speed_m_s: float = WALKING_SPEED_M_S,
) -> Route:
    """The shortest walking route found through ``stops`` within ``time_limit_s``.

    The walk starts at ``start_lonlat`` (WGS84 lon, lat) when given, otherwise
    at whichever stop makes it shortest, and ends at any stop. Stops of one
    building are visited together, stairwell by stairwell (see the module
    docstring). Up to ``TRIVIAL_SITES`` sites every order is tried; beyond,
    the order is OR-Tools' guided local search polished by 2-opt/Or-opt
    iterated local search, which uses the whole ``time_limit_s`` on larger
    routes and stops early on small ones, once it stops finding shorter ones.

    Raises ``InvalidInput`` for coordinates that are not finite WGS84 degrees,
    a duplicate ``household_id``, a time limit outside (0, 60] s, a detour
    factor below 1 or a walking speed that is not positive; ``LimitExceeded``
    for more than ``MAX_STOPS`` stops.
    """
    _check_inputs(
        stops=stops,
        start_lonlat=start_lonlat,
        time_limit_s=time_limit_s,
        detour_factor=detour_factor,
        walking_speed_m_s=walking_speed_m_s,
    )
    sites = _group_sites(stops)
    cost_m = _open_path_cost_m(sites=sites, start_lonlat=start_lonlat, detour_factor=detour_factor)
    if len(sites) <= TRIVIAL_SITES:
        site_order, solver = _enumerate_orders(cost_m), "trivial"
    else:
        site_order, solver = _solve_open_path(cost_m, time_limit_s=time_limit_s)
    order = tuple(i for s in site_order for i in sites[s].stop_indices)
    return _route_along(
        stops=stops,
        order=order,
        start_lonlat=start_lonlat,
        detour_factor=detour_factor,
        walking_speed_m_s=walking_speed_m_s,
        solver=solver,
    )


# -- input checks ------------------------------------------------------------------------
def _check_lonlat(*, lon: float, lat: float, what: str) -> None:
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise InvalidInput(f"{what}: longitude {lon!r} is not a finite WGS84 degree in [-180, 180]")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise InvalidInput(f"{what}: latitude {lat!r} is not a finite WGS84 degree in [-90, 90]")


def _check_detour_factor(detour_factor: float) -> None:
    if not (math.isfinite(detour_factor) and detour_factor >= 1.0):
        raise InvalidInput(
            f"detour_factor must be a finite number ≥ 1 (a walk is never shorter than the straight line); got {detour_factor!r}"
        )


def _check_inputs(
    *,
    stops: Sequence[Stop],
    start_lonlat: Lonlat | None,
    time_limit_s: float,
    detour_factor: float,
    walking_speed_m_s: float,
) -> None:
    if len(stops) > MAX_STOPS:
        raise LimitExceeded(f"{len(stops)} stops exceed the limit of {MAX_STOPS} per route")
    if not (math.isfinite(time_limit_s) and 0.0 < time_limit_s <= MAX_TIME_LIMIT_S):
        raise InvalidInput(
            f"time_limit_s must be more than 0 and at most {MAX_TIME_LIMIT_S:g} s; got {time_limit_s!r}"
        )
    _check_detour_factor(detour_factor)
    if not (math.isfinite(walking_speed_m_s) and walking_speed_m_s > 0.0):
        raise InvalidInput(
            f"walking_speed_m_s must be a positive finite number; got {walking_speed_m_s!r}"
        )
    if start_lonlat is not None:
        if len(start_lonlat) != 2:
            raise InvalidInput(f"start_lonlat must be (lon, lat); got {start_lonlat!r}")
        _check_lonlat(lon=start_lonlat[0], lat=start_lonlat[1], what="start_lonlat")
    for i, stop in enumerate(stops):
        _check_lonlat(lon=stop.lon, lat=stop.lat, what=f"stop {i} (household {stop.household_id})")
    counts = Counter(stop.household_id for stop in stops)
    duplicates = sorted(h for h, count in counts.items() if count > 1)
    if duplicates:
        shown = ", ".join(str(h) for h in duplicates[:10])
        raise InvalidInput(
            f"household_id must be unique among the stops; repeated: {shown}"
            + (f" and {len(duplicates) - 10} more" if len(duplicates) > 10 else "")
        )


# -- sites: buildings, and the order of stops inside them ----------------------------------
def _unit_sort_key(unit: str | None) -> tuple[int, tuple[tuple[int, int, str], ...]]:
    """Numeric-aware key: "2" < "10" < "10A" < "B" (full-width digits count as
    digits); no unit, or a blank one, last."""
    if unit is None or not unit.strip():
        return (1, ())
    parts = (p for p in re.split(r"(\d+)", unit.strip()) if p)
    return (0, tuple((0, int(p), "") if p.isdecimal() else (1, 0, p) for p in parts))


def _stop_sort_key(stop: Stop) -> tuple[object, ...]:
    """Unit, then floor ascending (no floor last), then household id for ties."""
    floor_key = (1, 0) if stop.floor is None else (0, stop.floor)
    return (_unit_sort_key(stop.unit), floor_key, stop.household_id)


def _site_key(stop: Stop) -> tuple[object, ...]:
    """Stops with equal keys are in one building (one site)."""
    if stop.building_id is not None:
        return ("building", stop.building_id)
    return ("point", stop.lon, stop.lat)


def _group_sites(stops: Sequence[Stop]) -> list[_Site]:
    """Stops grouped by building (or by identical point), in order of first appearance.

    A site's point is the mean of its stops' points: one building's households
    may be geocoded a few metres apart.
    """
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, stop in enumerate(stops):
        groups.setdefault(_site_key(stop), []).append(i)
    sites = []
    for indices in groups.values():
        ordered = tuple(sorted(indices, key=lambda i: _stop_sort_key(stops[i])))
        lon_deg = math.fsum(stops[i].lon for i in indices) / len(indices)
        lat_deg = math.fsum(stops[i].lat for i in indices) / len(indices)
        sites.append(_Site(lonlat=(lon_deg, lat_deg), stop_indices=ordered))
    return sites


# -- the open path over sites ---------------------------------------------------------------
def _open_path_cost_m(
    *, sites: Sequence[_Site], start_lonlat: Lonlat | None, detour_factor: float
) -> list[list[int]]:
    """Integer walking metres between sites, plus two extra nodes.

    Node ``n`` (n sites) is the start: the start point, or, without one, a
    virtual point at distance 0 from every site so the path may begin anywhere.
    Node ``n + 1`` is a virtual end at distance 0 from everything, so the path
    may end at any site. The matrix is symmetric.
    """
    n = len(sites)
    cost_m = np.zeros((n + 2, n + 2), dtype=np.int64)
    points = [site.lonlat for site in sites]
    if start_lonlat is not None:
        points.append(start_lonlat)
    if points:
        lonlat = np.array(points, dtype=np.float64)
        size = len(points)
        cost_m[:size, :size] = np.rint(
            walking_distance_matrix_m(lonlat, detour_factor=detour_factor)
        )
    rows: list[list[int]] = cost_m.tolist()  # Python ints: what OR-Tools and the polish index
    return rows


def _path_cost(cost_m: Sequence[Sequence[int]], path: Sequence[int]) -> int:
    return sum(cost_m[a][b] for a, b in itertools.pairwise(path))


def _enumerate_orders(cost_m: list[list[int]]) -> tuple[int, ...]:
    """The cheapest order of a few sites, by trying them all (first of equals)."""
    n = len(cost_m) - 2
    return min(
        itertools.permutations(range(n)),
        key=lambda order: _path_cost(cost_m, (n, *order)),
    )


def _solve_open_path(
    cost_m: list[list[int]], *, time_limit_s: float
) -> tuple[tuple[int, ...], str]:
    """Site order from OR-Tools' guided local search, polished; and a solver label."""
    deadline_s = time.perf_counter() + time_limit_s
    n = len(cost_m) - 2
    gls_s = min(time_limit_s * ORTOOLS_SHARE, ORTOOLS_MAX_S_PER_SITE * n)
    path = _ortools_path(cost_m, start=n, end=n + 1, time_limit_s=gls_s)
    tour = _Tour(cost_m=cost_m, tour=path, fixed_edge=(n, n + 1))
    kicks = tour.polish(
        stall_kicks=STALL_KICKS_PER_SITE * n,
        deadline_s=deadline_s,
        rng=random.Random(_KICK_SEED),
    )
    order = tour.path(start=n, end=n + 1)
    return order, f"or-tools GLS {gls_s:.2g} s + 2-opt/Or-opt ILS ({kicks} kicks)"


def _ortools_path(
    cost_m: list[list[int]], *, start: int, end: int, time_limit_s: float
) -> list[int]:
    """OR-Tools routing, one walker from ``start`` to ``end``: nodes in path order."""
    manager = pywrapcp.RoutingIndexManager(len(cost_m), 1, [start], [end])
    model = pywrapcp.RoutingModel(manager)
    # A matrix registered as such is evaluated in C++: no Python callback per arc.
    transit = model.RegisterTransitMatrix(cost_m)
    model.SetArcCostEvaluatorOfAllVehicles(transit)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(max(1, round(time_limit_s * 1000)))
    solution = model.SolveWithParameters(params)
    if solution is None:  # cannot happen without constraints: every order is feasible
        raise RuntimeError("OR-Tools found no route")
    index, path = model.Start(0), []
    while not model.IsEnd(index):
        path.append(manager.IndexToNode(index))
        index = solution.Value(model.NextVar(index))
    path.append(manager.IndexToNode(index))
    return path


# -- the polish: 2-opt + Or-opt local search, iterated with double-bridge kicks ----------
def _neighbour_lists(cost_m: list[list[int]], *, k: int) -> list[list[int]]:
    """For every node, the ``k`` nearest other nodes, nearest first (ties by index)."""
    costs = np.array(cost_m, dtype=np.float64)
    np.fill_diagonal(costs, np.inf)
    k = min(k, len(cost_m) - 1)
    order = np.argsort(costs, axis=1, kind="stable")[:, :k]
    return [[int(v) for v in row] for row in order.tolist()]


class _Tour:
    """A closed tour over all nodes in which the edge ``fixed_edge`` (start–end)
    is never removed: cut there, it is the open path.

    The tour is an array with a position index; a 2-opt move reverses the
    shorter side, an Or-opt move is two or three 2-opt moves. Every move
    keeps ``length`` (the sum of the tour's edges) exact.
    """

    def __init__(
        self, *, cost_m: list[list[int]], tour: list[int], fixed_edge: tuple[int, int]
    ) -> None:
        self.cost_m = cost_m
        self.tour = list(tour)
        self.size = len(tour)
        self.pos = [0] * self.size
        for i, node in enumerate(self.tour):
            self.pos[node] = i
        self.fixed_edge = fixed_edge
        # The virtual nodes are at distance 0 from every site, so they head
        # every neighbour list: a move may always make a site the path's end.
        self.neighbours = _neighbour_lists(cost_m, k=_NEIGHBOURS + 2)
        self.length = sum(cost_m[self.tour[i - 1]][self.tour[i]] for i in range(self.size))

    def succ(self, node: int) -> int:
        i = self.pos[node] + 1
        return self.tour[0 if i == self.size else i]

    def pred(self, node: int) -> int:
        return self.tour[self.pos[node] - 1]

    def is_fixed(self, a: int, b: int) -> bool:
        f, g = self.fixed_edge
        return (a == f and b == g) or (a == g and b == f)

    def path(self, *, start: int, end: int) -> tuple[int, ...]:
        """The nodes strictly between ``start`` and ``end``, walking away from ``end``."""
        step = self.pred if self.succ(start) == end else self.succ
        nodes, node = [], step(start)
        while node != end:
            nodes.append(node)
            node = step(node)
        return tuple(nodes)

    # -- moves --------------------------------------------------------------------------
    def _reverse(self, i: int, j: int) -> None:
        """Reverse the tour from position ``i`` forward to ``j`` (or, equivalently
        for a cycle, the complement, whichever is shorter)."""
        tour, pos, size = self.tour, self.pos, self.size
        count = (j - i) % size + 1
        if 2 * count > size:
            i, j, count = (j + 1) % size, (i - 1) % size, size - count
        for _ in range(count // 2):
            a, b = tour[i], tour[j]
            tour[i], pos[b] = b, i
            tour[j], pos[a] = a, j
            i = i + 1 if i + 1 < size else 0
            j = j - 1 if j > 0 else size - 1

    def _exchange(self, a1: int, a2: int, b1: int, b2: int) -> None:
        """2-opt: drop edges a1–a2 and b1–b2, add a1–b1 and a2–b2 (a2 must follow
        a1 in the same direction as b2 follows b1)."""
        if self.succ(a1) == a2:
            self._reverse(self.pos[a2], self.pos[b1])
        else:
            self._reverse(self.pos[a1], self.pos[b2])

    def _move_segment(self, *, p0: int, s1: int, s2: int, n0: int, c: int, d: int, e: int) -> None:
        """Or-opt: cut s1…s2 out from between p0 and n0 and put it between the
        neighbours c and d, with end ``e`` next to ``c``."""
        if self.succ(p0) != s1:  # read the tour so that p0 s1 … s2 n0 runs forward
            p0, n0, s1, s2 = n0, p0, s2, s1
        if self.succ(c) != d:  # … and c d too (e stays next to c)
            c, d, e = d, c, (s1 if e == s2 else s2)
        if c == n0:
            self._exchange(p0, s1, n0, d)
        elif d == p0:
            self._exchange(c, p0, s2, n0)
        else:
            self._exchange(p0, s1, c, d)
            self._exchange(p0, c, n0, s2)
        # Now p0–n0, c–s2 … s1–d: the segment is in, reversed; turn it if needed.
        if e == s1 and s1 != s2:
            self._exchange(c, s2, s1, d)

    def _try_two_opt(self, a: int) -> tuple[int, ...]:
        """Apply the first improving 2-opt move that adds an edge from ``a`` to a
        near node; return the nodes whose edges changed (empty if none)."""
        cost_m = self.cost_m
        cost_a = cost_m[a]
        steps: tuple[Callable[[int], int], ...] = (self.succ, self.pred)
        for step in steps:
            a2 = step(a)
            if self.is_fixed(a, a2):
                continue
            for c in self.neighbours[a]:
                gain_first = cost_a[a2] - cost_a[c]
                if gain_first <= 0:
                    break  # neighbours are sorted: no nearer c is left
                c2 = step(c)
                if c == a2 or c2 == a or self.is_fixed(c, c2):
                    continue
                gain = gain_first + cost_m[c][c2] - cost_m[a2][c2]
                if gain > 0:
                    self._exchange(a, a2, c, c2)
                    self.length -= gain
                    return (a, a2, c, c2)
        return ()

    def _try_or_opt(self, a: int) -> tuple[int, ...]:
        """Apply the first improving move of a segment of 1–3 nodes starting at ``a``
        to between two near nodes; return the nodes whose edges changed."""
        cost_m = self.cost_m
        directions: tuple[tuple[Callable[[int], int], Callable[[int], int]], ...] = (
            (self.succ, self.pred),
            (self.pred, self.succ),
        )
        for step, back in directions:
            p0 = back(a)
            if self.is_fixed(p0, a):
                continue
            segment = [a]
            while len(segment) <= _OR_OPT_MAX_SEGMENT and self.size - len(segment) >= 3:
                s2 = segment[-1]
                n0 = step(s2)
                if n0 == p0:
                    break
                gain_cut = cost_m[p0][a] + cost_m[s2][n0] - cost_m[p0][n0]
                if gain_cut > 0 and not self.is_fixed(s2, n0):
                    touched = self._try_insert(segment=segment, p0=p0, n0=n0, gain_cut=gain_cut)
                    if touched:
                        return touched
                segment.append(n0)
        return ()

    def _try_insert(
        self, *, segment: list[int], p0: int, n0: int, gain_cut: int
    ) -> tuple[int, ...]:
        """Put ``segment`` (cut out for ``gain_cut``) between two adjacent nodes
        near one of its ends, if that shortens the tour; the nodes touched."""
        cost_m = self.cost_m
        s1, s2 = segment[0], segment[-1]
        ends = ((s1, s2),) if s1 == s2 else ((s1, s2), (s2, s1))
        for e, f in ends:
            cost_e = cost_m[e]
            for c in self.neighbours[e]:
                gain_partial = gain_cut - cost_e[c]
                if gain_partial <= 0:
                    break
                if c in segment:
                    continue
                for d in (self.succ(c), self.pred(c)):
                    if d in segment or self.is_fixed(c, d):
                        continue
                    gain = gain_partial + cost_m[c][d] - cost_m[f][d]
                    if gain > 0:
                        self._move_segment(p0=p0, s1=s1, s2=s2, n0=n0, c=c, d=d, e=e)
                        self.length -= gain
                        return (p0, s1, s2, n0, c, d)
        return ()

    def _double_bridge(self, rng: random.Random) -> tuple[int, ...]:
        """Kick: cut three edges within ``_KICK_SPAN`` positions and swap the two
        middle segments (A B C D → A C B D), which no 2-opt or Or-opt move undoes
        in one step. Returns the nodes whose edges changed."""
        size = self.size
        cuts_from = range(1, min(_KICK_SPAN, size - 1) + 1)
        for _ in range(100):
            p = rng.randrange(size)
            i, j, k = sorted(rng.sample(cuts_from, 3))
            r = self.tour[p:] + self.tour[:p]
            cut = ((r[i - 1], r[i]), (r[j - 1], r[j]), (r[k - 1], r[k % size]))
            if any(self.is_fixed(x, y) for x, y in cut):
                continue
            cost_m = self.cost_m
            added = cost_m[r[i - 1]][r[j]] + cost_m[r[k - 1]][r[i]] + cost_m[r[j - 1]][r[k % size]]
            self.length += added - sum(cost_m[x][y] for x, y in cut)
            self.tour[:] = r[:i] + r[j:k] + r[i:j] + r[k:]
            for index, node in enumerate(self.tour):
                self.pos[node] = index
            return tuple(node for edge in cut for node in edge)
        return ()

    # -- searches -----------------------------------------------------------------------
    def _descend(self, queue: deque[int], queued: list[bool]) -> None:
        """Improve until no 2-opt or Or-opt move from a queued node helps
        ("don't-look bits": only nodes next to a change are looked at again)."""
        while queue:
            a = queue.popleft()
            queued[a] = False
            touched = self._try_two_opt(a) or self._try_or_opt(a)
            for node in (*touched, a) if touched else ():
                if not queued[node]:
                    queued[node] = True
                    queue.append(node)

    def polish(self, *, stall_kicks: int, deadline_s: float, rng: random.Random) -> int:
        """Iterated local search: descend, then kick and descend again, keeping a
        kicked tour only if it is no longer. Stops after ``stall_kicks`` kicks in
        a row without a shorter tour, or at ``deadline_s`` (``time.perf_counter``);
        returns the number of kicks."""
        queued = [True] * self.size
        self._descend(deque(self.tour), queued)
        best_tour, best_pos, best_length = self.tour[:], self.pos[:], self.length
        kicks = last_gain_kick = 0
        while kicks - last_gain_kick < stall_kicks and time.perf_counter() < deadline_s:
            kicks += 1
            queue: deque[int] = deque()
            for node in self._double_bridge(rng):
                if not queued[node]:
                    queued[node] = True
                    queue.append(node)
            self._descend(queue, queued)
            if self.length < best_length:
                last_gain_kick = kicks
            if self.length <= best_length:  # equal: drift across plateaus
                best_tour[:], best_pos[:], best_length = self.tour, self.pos, self.length
            else:
                self.tour[:], self.pos[:], self.length = best_tour, best_pos, best_length
        return kicks


# -- from a stop order to a route ---------------------------------------------------------
def _floors_climbed(stops: Sequence[Stop], order: Sequence[int]) -> int:
    """Floors climbed in total: each run of consecutive stops in one building
    and unit climbs once from the ground floor (1) to its highest floor."""
    climbed = 0
    for _, run in itertools.groupby(order, key=lambda i: (_site_key(stops[i]), stops[i].unit)):
        floors = [floor for i in run if (floor := stops[i].floor) is not None]
        if floors:
            climbed += max(0, max(floors) - 1)
    return climbed


def _route_along(
    *,
    stops: Sequence[Stop],
    order: tuple[int, ...],
    start_lonlat: Lonlat | None,
    detour_factor: float,
    walking_speed_m_s: float,
    solver: str,
) -> Route:
    """The route walking ``order``: distance along the stops' own points, stairs."""
    points: list[Lonlat] = [] if start_lonlat is None else [start_lonlat]
    points.extend((stops[i].lon, stops[i].lat) for i in order)
    line_lonlat = tuple(p for k, p in enumerate(points) if k == 0 or p != points[k - 1])
    lonlat = np.array(line_lonlat, dtype=np.float64).reshape(-1, 2)
    legs_m = _haversine_m(
        lon1_deg=lonlat[:-1, 0], lat1_deg=lonlat[:-1, 1],
        lon2_deg=lonlat[1:, 0], lat2_deg=lonlat[1:, 1],
    )  # fmt: skip
    distance_m = math.fsum(legs_m.tolist()) * detour_factor
    duration_s = distance_m / walking_speed_m_s + STAIRS_S_PER_FLOOR * _floors_climbed(stops, order)
    return Route(
        order=order,
        distance_m=distance_m,
        duration_s=duration_s,
        line_lonlat=line_lonlat,
        solver=solver,
    )
