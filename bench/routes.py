"""Benchmark: walking routes (issue 8: "500 stops within 2 s wall time and
within 3 % of LKH's length").

Synthetic neighbourhoods: households scattered uniformly over about
1 km × 1 km near 112.2°E 22.7°N (Xinxing, Guangdong), each at its own point
(no two in one building: every stop is a site, the hardest case), and a start
point drawn the same way. For every instance one integer matrix of walking
metres (``np.rint(geo.route.walking_distance_matrix_m(...))``, node 0 the start)
is what every solver's route is measured on:

* wangge: ``geo.route.plan_route`` (whole call timed: checks, matrix, solve);
* anchor: LKH-3 through elkai, the same matrix as a symmetric TSP with a
  dummy node (0 to the start, a penalty above any leg to every stop), so the
  tour cut at the dummy is the open path from the start;
* anchor: VROOM through pyvroom, one vehicle starting at node 0 with no end,
  the same matrix as durations (its cost);
* ablation: OR-Tools routing alone (``PATH_CHEAPEST_ARC`` + guided local
  search for the same time limit, dummy end), i.e. ``plan_route`` without its
  2-opt/Or-opt polish.

Run: ``python -m bench.routes [--sizes 30,100,300,500] [--instances 10]
[--time-limit 1.0] [--lkh-runs 10] [--vroom-level 1]``. No database is needed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import elkai
import numpy as np
import vroom
from numpy.typing import NDArray
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from bench.common import (
    host_description,
    markdown_table,
    nproc,
    utc_now_text,
    write_section,
)
from geo.route import (
    DETOUR_FACTOR,
    ORTOOLS_MAX_S_PER_SITE,
    ORTOOLS_SHARE,
    STALL_KICKS_PER_SITE,
    Stop,
    plan_route,
    walking_distance_matrix_m,
)

SECTION_TITLE = "Walking routes (issue 8)"
DEFAULT_SIZES = (30, 100, 300, 500)
DEFAULT_INSTANCES = 10
DEFAULT_TIME_LIMIT_S = 1.0
DEFAULT_LKH_RUNS = 10  # elkai's default
# VROOM solves one vehicle without constraints with its TSP heuristics; on
# 300–500 stops levels 1–4 gave the same routes in a trial, level 1 fastest
# (76 s vs 186 s at level 3 for 500 stops), and its timeout is overshot.
DEFAULT_VROOM_LEVEL = 1
DEFAULT_SEED = 20200208
# The neighbourhood: south-west corner and extent (1 km each way at 22.7°N).
LON0_DEG, LAT0_DEG = 112.2, 22.7
WIDTH_DEG, HEIGHT_DEG = 0.00975, 0.009
# The budget (DESIGN.md): this many stops, this wall time, this ratio to LKH.
BUDGET_STOPS = 500
BUDGET_S = 2.0
BUDGET_RATIO = 1.03
SOLVERS = ("wangge", "lkh", "vroom", "ortools")


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[routes] {message}", file=sys.stderr, flush=True)


# -- instances --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    """Stops and a start point; ``cost_m[i][j]`` integer walking metres with
    node 0 the start and node ``k + 1`` stop ``k``."""

    size: int
    seed: int
    stops: tuple[Stop, ...]
    start_lonlat: tuple[float, float]
    cost_m: NDArray[np.int64]


def make_instance(*, size: int, seed: int) -> Instance:
    """``size`` households and a start, uniform over the neighbourhood."""
    rng = np.random.default_rng(seed)
    lon_deg = LON0_DEG + rng.uniform(0.0, WIDTH_DEG, size + 1)
    lat_deg = LAT0_DEG + rng.uniform(0.0, HEIGHT_DEG, size + 1)
    stops = tuple(
        Stop(household_id=k + 1, lon=float(lon_deg[k + 1]), lat=float(lat_deg[k + 1]))
        for k in range(size)
    )
    cost_m = np.rint(walking_distance_matrix_m(np.column_stack([lon_deg, lat_deg])))
    return Instance(
        size=size,
        seed=seed,
        stops=stops,
        start_lonlat=(float(lon_deg[0]), float(lat_deg[0])),
        cost_m=cost_m.astype(np.int64),
    )


def path_length_m(cost_m: NDArray[np.int64], *, stop_order: Sequence[int]) -> int:
    """Length of the open path start → stops in ``stop_order`` on the matrix."""
    nodes = [0, *(k + 1 for k in stop_order)]
    return int(sum(int(cost_m[a, b]) for a, b in itertools.pairwise(nodes)))


def check_order(order: Sequence[int], *, size: int, solver: str) -> list[int]:
    """The order as a list, after checking that it visits every stop once."""
    if sorted(order) != list(range(size)):
        raise RuntimeError(f"{solver} did not visit every stop exactly once")
    return list(order)


# -- the solvers (each returns the stop order) ------------------------------------------------
def solve_wangge(instance: Instance, *, time_limit_s: float) -> list[int]:
    route = plan_route(
        instance.stops, start_lonlat=instance.start_lonlat, time_limit_s=time_limit_s
    )
    return list(route.order)


def solve_lkh(instance: Instance, *, runs: int) -> list[int]:
    """LKH on a symmetric matrix with a dummy node: dummy–start 0, dummy–stop a
    penalty larger than any leg plus rounding, so an optimal tour puts the dummy
    next to the start and the rest of the tour is the open path."""
    n = instance.size + 1
    dummy = n
    penalty_m = int(instance.cost_m.max()) + 2
    matrix = np.zeros((n + 1, n + 1), dtype=np.int64)
    matrix[:n, :n] = instance.cost_m
    matrix[dummy, 1:n] = matrix[1:n, dummy] = penalty_m
    tour = elkai.DistanceMatrix(matrix.tolist()).solve_tsp(runs=runs)[:-1]
    cut = tour.index(dummy)
    path = tour[cut + 1 :] + tour[:cut]
    if path[0] != 0:
        path.reverse()
    if path[0] != 0:
        raise RuntimeError("LKH's tour does not pass dummy → start")
    return [node - 1 for node in path[1:]]


def solve_vroom(instance: Instance, *, level: int, threads: int) -> list[int]:
    """VROOM: one vehicle from node 0, no end; jobs at nodes 1..n."""
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=instance.cost_m)
    problem.add_vehicle(vroom.Vehicle(1, start=0, profile="car"))
    problem.add_job([vroom.Job(k, location=k) for k in range(1, instance.size + 1)])
    solution = problem.solve(exploration_level=level, nb_threads=threads)
    if len(solution.unassigned):
        raise RuntimeError("VROOM left stops unassigned")
    routes = solution.routes
    jobs = routes[routes["type"] == "job"]
    return [int(node) - 1 for node in jobs["location_index"]]


def solve_ortools_alone(instance: Instance, *, time_limit_s: float) -> list[int]:
    """OR-Tools routing as ``plan_route`` starts it, without the polish."""
    n = instance.size + 1
    end = n  # dummy end: 0 from every node
    matrix = np.zeros((n + 1, n + 1), dtype=np.int64)
    matrix[:n, :n] = instance.cost_m
    manager = pywrapcp.RoutingIndexManager(n + 1, 1, [0], [end])
    model = pywrapcp.RoutingModel(manager)
    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitMatrix(matrix.tolist()))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(round(time_limit_s * 1000))
    solution = model.SolveWithParameters(params)
    order, index = [], solution.Value(model.NextVar(model.Start(0)))
    while not model.IsEnd(index):
        order.append(manager.IndexToNode(index) - 1)
        index = solution.Value(model.NextVar(index))
    return order


# -- measuring --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One solver on one instance."""

    size: int
    seed: int
    solver: str
    seconds: float
    length_m: int


def timed_run(instance: Instance, *, solver: str, solve: Callable[[Instance], list[int]]) -> Run:
    started = time.perf_counter()
    order = solve(instance)
    seconds = time.perf_counter() - started
    order = check_order(order, size=instance.size, solver=solver)
    length_m = path_length_m(instance.cost_m, stop_order=order)
    return Run(instance.size, instance.seed, solver, seconds, length_m)


def measure(
    *,
    sizes: Sequence[int],
    instances: int,
    time_limit_s: float,
    lkh_runs: int,
    vroom_level: int,
    seed: int,
) -> list[Run]:
    """Every solver on every instance, one after the other (nothing in parallel)."""
    solvers: dict[str, Callable[[Instance], list[int]]] = {
        "wangge": lambda i: solve_wangge(i, time_limit_s=time_limit_s),
        "lkh": lambda i: solve_lkh(i, runs=lkh_runs),
        "vroom": lambda i: solve_vroom(i, level=vroom_level, threads=nproc()),
        "ortools": lambda i: solve_ortools_alone(i, time_limit_s=time_limit_s),
    }
    runs = []
    for size in sizes:
        for k in range(instances):
            instance = make_instance(size=size, seed=seed + 1000 * size + k)
            for name, solve in solvers.items():
                runs.append(timed_run(instance, solver=name, solve=solve))
            by = {r.solver: r for r in runs[-len(solvers) :]}
            log(
                f"{size} stops #{k + 1}: "
                + ", ".join(f"{s} {by[s].length_m} m {by[s].seconds:.2f} s" for s in SOLVERS)
            )
    return runs


# -- the section ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SizeSummary:
    size: int
    seconds: dict[str, list[float]]
    lengths_m: dict[str, list[int]]
    ratio_to_lkh: dict[str, list[float]]


def summarise(runs: Sequence[Run]) -> list[SizeSummary]:
    summaries = []
    for size in sorted({r.size for r in runs}):
        mine = [r for r in runs if r.size == size]
        lkh_m = {r.seed: r.length_m for r in mine if r.solver == "lkh"}
        summaries.append(
            SizeSummary(
                size=size,
                seconds={s: [r.seconds for r in mine if r.solver == s] for s in SOLVERS},
                lengths_m={s: [r.length_m for r in mine if r.solver == s] for s in SOLVERS},
                ratio_to_lkh={
                    s: [r.length_m / lkh_m[r.seed] for r in mine if r.solver == s] for s in SOLVERS
                },
            )
        )
    return summaries


def seconds_text(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}"


def ratio_text(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.4f} / {max(values):.4f}"


def budget_verdict(summaries: Sequence[SizeSummary]) -> str:
    at = [s for s in summaries if s.size == BUDGET_STOPS]
    if not at:
        return f"not measured (no run with {BUDGET_STOPS} stops)"
    worst_s = max(at[0].seconds["wangge"])
    worst_ratio = max(at[0].ratio_to_lkh["wangge"])
    passed = worst_s <= BUDGET_S and worst_ratio <= BUDGET_RATIO
    return (
        f"{'PASS' if passed else 'FAIL'}: slowest of {len(at[0].seconds['wangge'])} instances "
        f"{worst_s:.2f} s (≤ {BUDGET_S:g} s), longest {100 * (worst_ratio - 1):+.2f} % vs LKH "
        f"(≤ +{100 * (BUDGET_RATIO - 1):g} %)"
    )


def machine() -> dict[str, str]:
    versions = {
        name: importlib.metadata.version(name) for name in ("ortools", "elkai", "pyvroom", "numpy")
    }
    return {
        **host_description(),
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "load average (1 min) before the run": f"{os.getloadavg()[0]:.2f}",
    }


def render_section(
    *, runs: Sequence[Run], args: argparse.Namespace, machine_facts: dict[str, str], date: str
) -> str:
    summaries = summarise(runs)
    times = markdown_table(
        header=[
            "stops",
            "**wangge** `plan_route`",
            "LKH (elkai)",
            "VROOM (pyvroom)",
            "OR-Tools alone",
        ],
        rows=[
            [str(s.size), *(seconds_text(s.seconds[name]) for name in SOLVERS)] for s in summaries
        ],
    )
    lengths = markdown_table(
        header=[
            "stops",
            "median length wangge / LKH / VROOM / OR-Tools alone (m)",
            "**wangge ÷ LKH**",
            "VROOM ÷ LKH",
            "OR-Tools alone ÷ LKH",
        ],
        rows=[
            [
                str(s.size),
                " / ".join(f"{statistics.median(s.lengths_m[n]):,.0f}" for n in SOLVERS),
                f"**{ratio_text(s.ratio_to_lkh['wangge'])}**",
                ratio_text(s.ratio_to_lkh["vroom"]),
                ratio_text(s.ratio_to_lkh["ortools"]),
            ]
            for s in summaries
        ],
    )
    facts = "\n".join(f"- {k}: {v}" for k, v in machine_facts.items())
    return f"""\
`geo.route.plan_route` (time limit {args.time_limit:g} s: OR-Tools guided local
search for {ORTOOLS_SHARE:.0%} of it, at most {1000 * ORTOOLS_MAX_S_PER_SITE:g} ms
per stop, then 2-opt/Or-opt iterated local search until the limit, or until
{STALL_KICKS_PER_SITE} kicks per stop in a row find nothing shorter) beside two
anchors on the same integer matrix of walking metres (great-circle ×
{DETOUR_FACTOR:g}): LKH-3 via elkai ({args.lkh_runs} runs; open path from the
start through a dummy node) and VROOM via pyvroom (exploration level
{args.vroom_level}, {nproc()} threads; one vehicle from the start, no end), plus
OR-Tools routing alone for the same time limit (what `plan_route` does without
its polish). {args.instances} seeded instances per size (seed {args.seed}):
households uniform over about 1 km × 1 km near 112.2°E 22.7°N, each at its own
point (every stop a site), and a start point drawn the same way. Every length is
measured on that matrix; wangge's time is the whole call (checks, matrix,
solve). Solvers run one after the other, never in parallel.

- reproduce: `python -m bench.routes` (or `make bench`)
- date: {date}
{facts}

Wall time per instance, median / max (s):

{times}

Route length, and length ÷ LKH's on the same instance, median / worst:

{lengths}

Budget "{BUDGET_STOPS} stops ≤ {BUDGET_S:g} s and ≤ {100 * (BUDGET_RATIO - 1):g} % over LKH",
judged on the worst instance: **{budget_verdict(summaries)}**.

{reading(summaries)}
"""


def reading(summaries: Sequence[SizeSummary]) -> str:
    """What the largest size says about the polish and the anchors."""
    s = summaries[-1]

    def over(solver: str, pick: Callable[[Sequence[float]], float]) -> str:
        return f"{100 * (pick(s.ratio_to_lkh[solver]) - 1):.1f} %"

    return (
        f"Reading: at {s.size} stops OR-Tools alone ends {over('ortools', statistics.median)} "
        f"over LKH (worst {over('ortools', max)}) after the whole time limit; with the "
        f"2-opt/Or-opt polish in the same time the median is {over('wangge', statistics.median)} "
        f"(worst {over('wangge', max)}). LKH takes {statistics.median(s.seconds['lkh']):.1f} s "
        f"(median), VROOM {statistics.median(s.seconds['vroom']):.1f} s for a route "
        f"{over('vroom', statistics.median)} over LKH."
    )


# -- command line -----------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=DEFAULT_SIZES,
        help="comma-separated numbers of stops (default: %(default)s)",
    )
    parser.add_argument("--instances", type=int, default=DEFAULT_INSTANCES)
    parser.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S)
    parser.add_argument("--lkh-runs", type=int, default=DEFAULT_LKH_RUNS)
    parser.add_argument("--vroom-level", type=int, default=DEFAULT_VROOM_LEVEL)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--no-write", action="store_true", help="print the section, leave RESULTS.md alone"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the section and write it to bench/RESULTS.md."""
    args = parse_args(argv)
    if args.instances < 1 or args.lkh_runs < 1 or min(args.sizes) < 1:
        raise SystemExit("--instances and --lkh-runs must be ≥ 1, every size ≥ 1")
    machine_facts = machine()
    date = utc_now_text()
    runs = measure(
        sizes=args.sizes,
        instances=args.instances,
        time_limit_s=args.time_limit,
        lkh_runs=args.lkh_runs,
        vroom_level=args.vroom_level,
        seed=args.seed,
    )
    machine_facts["load average (1 min) after the run"] = f"{os.getloadavg()[0]:.2f}"
    body = render_section(runs=runs, args=args, machine_facts=machine_facts, date=date)
    if not args.no_write:
        write_section(title=SECTION_TITLE, body=body)
    print(f"## {SECTION_TITLE}\n\n{body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
