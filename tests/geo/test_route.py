"""Walking-route promises: every stop once, the distance is the walk along the
order, the start comes first, buildings are visited stairwell by stairwell,
small routes are optimal, and bad input is refused with a useful message.

Distances are recomputed here with an independent haversine (``math``, mean
Earth radius) times the detour factor, never with ``geo.route``'s own.
"""

from __future__ import annotations

import itertools
import math
import random
import re

import numpy as np
import pytest

from geo.errors import InvalidInput
from geo.route import (
    DETOUR_FACTOR,
    STAIRS_S_PER_FLOOR,
    WALKING_SPEED_M_S,
    Route,
    Stop,
    plan_route,
    walking_distance_matrix_m,
)

EARTH_RADIUS_M = 6_371_008.8
# A neighbourhood of about 1 km × 1 km in Xinxing county (Guangdong).
LON0_DEG, LAT0_DEG = 112.2, 22.7
NEIGHBOURHOOD_DEG = 0.009
# Short limits keep the file fast; small routes converge long before.
QUICK_S = 0.4


def walk_m(a_lonlat: tuple[float, float], b_lonlat: tuple[float, float]) -> float:
    """Great-circle distance × detour factor, written out once more."""
    (lon1, lat1), (lon2, lat2) = a_lonlat, b_lonlat
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h)) * DETOUR_FACTOR


def walk_along_m(points_lonlat: list[tuple[float, float]]) -> float:
    return sum(walk_m(a, b) for a, b in itertools.pairwise(points_lonlat))


def scattered_stops(*, n: int, seed: int) -> list[Stop]:
    """``n`` households at their own points (ids 1000, 1007, …)."""
    rng = random.Random(seed)
    return [
        Stop(
            household_id=1000 + 7 * i,
            lon=LON0_DEG + rng.uniform(0, NEIGHBOURHOOD_DEG),
            lat=LAT0_DEG + rng.uniform(0, NEIGHBOURHOOD_DEG),
        )
        for i in range(n)
    ]


def stops_with_buildings(*, seed: int) -> list[Stop]:
    """60 households: 8 buildings of 2–6 households (units, floors), the rest
    alone; shuffled."""
    rng = random.Random(seed)
    stops = []
    for b in range(8):
        lon = LON0_DEG + rng.uniform(0, NEIGHBOURHOOD_DEG)
        lat = LAT0_DEG + rng.uniform(0, NEIGHBOURHOOD_DEG)
        for _ in range(rng.randint(2, 6)):
            stops.append(
                Stop(
                    household_id=len(stops) + 1,
                    lon=lon,
                    lat=lat,
                    building_id=100 + b,
                    unit=rng.choice(["1", "2", "10", None]),
                    floor=rng.choice([1, 2, 3, 6, 11, None]),
                )
            )
    stops += scattered_stops(n=60 - len(stops), seed=seed)
    rng.shuffle(stops)
    return stops


def unit_then_floor(stop: Stop) -> tuple[int, int]:
    """Visiting order inside a building for the units of ``stops_with_buildings``."""
    unit_rank = {"1": 0, "2": 1, "10": 2, None: 3}[stop.unit]
    return (unit_rank, 10**6 if stop.floor is None else stop.floor)


def line_of(stops: list[Stop], route: Route, start: tuple[float, float] | None) -> list:
    points = [] if start is None else [start]
    return points + [(stops[i].lon, stops[i].lat) for i in route.order]


# -- what every route promises --------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("with_start", [True, False])
def test_every_stop_once_and_distance_is_the_walk_along_the_order(
    seed: int, with_start: bool
) -> None:
    stops = stops_with_buildings(seed=seed)
    start = (LON0_DEG - 0.001, LAT0_DEG - 0.001) if with_start else None
    route = plan_route(stops, start_lonlat=start, time_limit_s=QUICK_S)

    assert sorted(route.order) == list(range(len(stops)))
    assert route.distance_m == pytest.approx(walk_along_m(line_of(stops, route, start)), rel=1e-9)
    assert route.solver.startswith("or-tools")
    for building_id in {s.building_id for s in stops} - {None}:
        positions = [k for k, i in enumerate(route.order) if stops[i].building_id == building_id]
        assert positions == list(range(positions[0], positions[-1] + 1))
        visits = [stops[route.order[k]] for k in positions]
        assert visits == sorted(visits, key=unit_then_floor)


def test_line_starts_at_the_start_and_follows_the_stops() -> None:
    stops = stops_with_buildings(seed=3)
    start = (LON0_DEG + 0.0045, LAT0_DEG + 0.0045)
    route = plan_route(stops, start_lonlat=start, time_limit_s=QUICK_S)

    points = line_of(stops, route, start)
    deduplicated = [p for k, p in enumerate(points) if k == 0 or p != points[k - 1]]
    assert route.line_lonlat[0] == start
    assert list(route.line_lonlat) == deduplicated
    assert walk_along_m(list(route.line_lonlat)) == pytest.approx(route.distance_m, rel=1e-9)


def test_building_visited_at_once_by_unit_then_floor() -> None:
    building = [
        Stop(household_id=h, lon=112.2040, lat=22.7040, building_id=7, unit=u, floor=f)
        for h, u, f in [
            (1, "10", 1),
            (2, None, 2),
            (3, "2", 5),
            (4, "2", 3),
            (5, "1", None),
            (6, "1", 4),
            (7, "10", 2),
        ]
    ]
    stops = scattered_stops(n=12, seed=4) + building
    route = plan_route(stops, start_lonlat=(LON0_DEG, LAT0_DEG), time_limit_s=QUICK_S)

    visits = [stops[i] for i in route.order if stops[i].building_id == 7]
    positions = [k for k, i in enumerate(route.order) if stops[i].building_id == 7]
    assert positions == list(range(positions[0], positions[0] + len(building)))
    # Units numerically ("2" before "10"), no unit last; floors climbing, no floor last.
    assert [(s.unit, s.floor) for s in visits] == [
        ("1", 4), ("1", None), ("2", 3), ("2", 5), ("10", 1), ("10", 2), (None, 2),
    ]  # fmt: skip


def test_same_point_without_building_id_is_one_site() -> None:
    shared_lonlat = (112.2050, 22.7020)
    stops = scattered_stops(n=10, seed=5) + [
        Stop(household_id=h, lon=shared_lonlat[0], lat=shared_lonlat[1]) for h in (1, 2, 3)
    ]
    route = plan_route(stops, time_limit_s=QUICK_S)

    positions = [k for k, i in enumerate(route.order) if stops[i].household_id in (1, 2, 3)]
    assert positions == list(range(positions[0], positions[0] + 3))
    assert route.line_lonlat.count(shared_lonlat) == 1


def test_duration_is_walking_time_plus_stairs() -> None:
    stops = [
        Stop(household_id=1, lon=112.2000, lat=22.7000),
        Stop(household_id=2, lon=112.2010, lat=22.7000, building_id=9, unit="1", floor=3),
        Stop(household_id=3, lon=112.2010, lat=22.7000, building_id=9, unit="1", floor=5),
        Stop(household_id=4, lon=112.2010, lat=22.7000, building_id=9, unit="2", floor=2),
        Stop(household_id=5, lon=112.2020, lat=22.7000, building_id=10, floor=None),
    ]
    route = plan_route(stops, start_lonlat=(112.1990, 22.7000))

    # Unit 1 is climbed to floor 5 (4 floors), unit 2 to floor 2 (1 floor).
    expected_s = route.distance_m / WALKING_SPEED_M_S + 5 * STAIRS_S_PER_FLOOR
    assert route.duration_s == pytest.approx(expected_s)
    assert route.solver == "trivial"  # three buildings


# -- optimality -------------------------------------------------------------------------------
def brute_force_lengths_m(
    points_lonlat: list[tuple[float, float]], *, start: tuple[float, float] | None
) -> tuple[float, float]:
    """The shortest and the second-shortest open path over all orders of the
    points (itertools, numpy sums); a path and its reverse count once."""
    n = len(points_lonlat)
    nodes = points_lonlat + ([start] if start is not None else [])
    legs = np.array([[walk_m(a, b) for b in nodes] for a in nodes])
    orders = np.array(list(itertools.permutations(range(n))), dtype=np.intp)
    lengths = legs[orders[:, :-1], orders[:, 1:]].sum(axis=1)
    if start is not None:
        lengths += legs[n, orders[:, 0]]
    distinct = np.unique(np.round(lengths, 6))
    return float(distinct[0]), float(distinct[1])


@pytest.mark.parametrize(
    ("seed", "sites", "with_start"), [(11, 9, True), (13, 8, True), (12, 8, False), (13, 9, False)]
)
def test_small_route_is_the_brute_force_optimum(seed: int, sites: int, with_start: bool) -> None:
    stops = scattered_stops(n=sites, seed=seed)
    start = (LON0_DEG + 0.003, LAT0_DEG + 0.006) if with_start else None
    route = plan_route(stops, start_lonlat=start, time_limit_s=QUICK_S)

    optimum_m, second_m = brute_force_lengths_m([(s.lon, s.lat) for s in stops], start=start)
    # The solver adds whole metres, so its optimum may be longer than the exact
    # one by the rounding: at most 0.5 m per leg on each of the two routes. The
    # instances are chosen so that the second-best route is further off than
    # that: only the optimum passes.
    rounding_m = 1.0 * (sites if with_start else sites - 1)
    assert second_m - optimum_m > rounding_m
    assert route.distance_m == pytest.approx(optimum_m, abs=rounding_m)


def test_same_input_same_route() -> None:
    stops = stops_with_buildings(seed=7)[:25]
    first = plan_route(stops, start_lonlat=(LON0_DEG, LAT0_DEG), time_limit_s=QUICK_S)
    again = plan_route(stops, start_lonlat=(LON0_DEG, LAT0_DEG), time_limit_s=QUICK_S)

    assert (again.order, again.distance_m) == (first.order, first.distance_m)


def test_collinear_stops_are_walked_end_to_end() -> None:
    lons = [112.2000 + 0.0003 * k for k in range(15)]
    stops = [Stop(household_id=k, lon=lon, lat=22.7000) for k, lon in enumerate(lons)]
    shuffled = random.Random(6).sample(stops, len(stops))

    from_west = plan_route(shuffled, start_lonlat=(112.1990, 22.7000), time_limit_s=QUICK_S)
    anywhere = plan_route(shuffled, time_limit_s=QUICK_S)

    assert [shuffled[i].household_id for i in from_west.order] == list(range(15))
    assert [shuffled[i].household_id for i in anywhere.order] in (
        list(range(15)),
        list(range(14, -1, -1)),
    )
    assert anywhere.distance_m == pytest.approx(walk_m((lons[0], 22.7), (lons[-1], 22.7)))


def test_few_stops_need_no_solver() -> None:
    start = (112.2000, 22.7000)
    near = Stop(household_id=1, lon=112.2010, lat=22.7000)
    far = Stop(household_id=2, lon=112.2030, lat=22.7000)

    empty = plan_route([], start_lonlat=start)
    assert (empty.order, empty.distance_m, empty.line_lonlat) == ((), 0.0, (start,))
    assert plan_route([]).line_lonlat == ()
    one = plan_route([far], start_lonlat=start)
    assert one.order == (0,)
    assert one.distance_m == pytest.approx(walk_m(start, (far.lon, far.lat)))
    two = plan_route([far, near], start_lonlat=start)
    assert (two.order, two.solver) == ((1, 0), "trivial")


# -- the distance matrix ---------------------------------------------------------------------
def test_distance_matrix_is_haversine_times_detour() -> None:
    lonlat = np.array([[112.2, 22.7], [112.2, 23.7], [113.2, 22.7], [112.21, 22.71]])
    matrix_m = walking_distance_matrix_m(lonlat)

    assert matrix_m.shape == (4, 4)
    assert np.allclose(matrix_m, matrix_m.T)
    assert np.all(np.diag(matrix_m) == 0.0)
    # One degree of latitude on the mean sphere is R·π/180 ≈ 111.195 km.
    assert matrix_m[0, 1] == pytest.approx(EARTH_RADIUS_M * math.pi / 180 * DETOUR_FACTOR)
    for i, j in itertools.combinations(range(4), 2):
        assert matrix_m[i, j] == pytest.approx(walk_m(tuple(lonlat[i]), tuple(lonlat[j])))
    assert walking_distance_matrix_m(lonlat, detour_factor=1.0)[0, 1] == pytest.approx(
        matrix_m[0, 1] / DETOUR_FACTOR
    )


# -- bad input ---------------------------------------------------------------------------------
GOOD = Stop(household_id=1, lon=112.2, lat=22.7)


@pytest.mark.parametrize(
    ("stops", "kwargs", "message"),
    [
        (
            [GOOD, Stop(household_id=7, lon=math.nan, lat=22.7)],
            {},
            "stop 1 (household 7): longitude nan",
        ),
        ([Stop(household_id=8, lon=200.0, lat=22.7)], {}, "longitude 200.0"),
        ([Stop(household_id=9, lon=112.2, lat=95.0)], {}, "latitude 95.0"),
        ([Stop(household_id=9, lon=112.2, lat=math.inf)], {}, "latitude inf"),
        ([GOOD], {"start_lonlat": (112.2, math.nan)}, "start_lonlat: latitude nan"),
        ([GOOD], {"time_limit_s": 0.0}, "time_limit_s must be more than 0"),
        ([GOOD], {"time_limit_s": -1.0}, "time_limit_s must be more than 0"),
        ([GOOD], {"time_limit_s": math.nan}, "time_limit_s"),
        ([GOOD], {"detour_factor": 0.5}, "detour_factor must be a finite number ≥ 1"),
        ([GOOD], {"walking_speed_m_s": 0.0}, "walking_speed_m_s must be a positive"),
        (
            [
                GOOD,
                Stop(household_id=3, lon=112.21, lat=22.7),
                Stop(household_id=3, lon=112.22, lat=22.7),
                Stop(household_id=1, lon=112.23, lat=22.7),
            ],
            {},
            "household_id must be unique among the stops; repeated: 1, 3",
        ),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_it(
    stops: list[Stop], kwargs: dict, message: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        plan_route(stops, **kwargs)


def test_bad_matrix_input_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"\(n, 2\) array"):
        walking_distance_matrix_m(np.zeros((3, 3)))
    with pytest.raises(InvalidInput, match=re.escape("point 1: latitude -91.0")):
        walking_distance_matrix_m(np.array([[112.2, 22.7], [112.2, -91.0]]))
