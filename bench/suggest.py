"""Benchmark: micro-grid suggestion (issue 7, ``geo.suggest.suggest_microgrids``).

DESIGN.md ("Performance budgets") names no anchor and no budget for this one,
so nothing here passes or fails. As context, the step it builds on — plain
``geo.partition.band_partition`` of the same buildings (point = building,
weight = households, band 30–50) — is timed on the same input in the same run,
and the ratio is given: it is what the contiguity fix and the repair cost on
top of the cuts.

Synthetic grids near Xinxing (112.2°E, 22.7°N), generated deterministically
from a seed: an irregular outline (a wavy, non-convex star with a narrow inlet,
like a river or a road reaching in) of about 0.5 km² for 500 households and
3 km² for 5,000, and buildings clustered like estates — lattices of apartment
blocks (8–24 households each) and scattered village houses (1–6) — so that
building sizes run from 1 to 24 households. No database is needed.

Run: ``python -m bench.suggest [--seeds 5] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from bench.common import (
    host_description,
    machine_lines,
    markdown_table,
    utc_now_text,
    write_section,
)
from geo.partition import M_PER_DEG_LAT, M_PER_DEG_LON_EQUATOR, band_partition
from geo.suggest import Building, Suggestion, suggest_microgrids

SECTION_TITLE = "Micro-grid suggestion (issue 7)"
CENTRE_LONLAT = (112.2, 22.7)
MIN_HOUSEHOLDS, MAX_HOUSEHOLDS = 30, 50
# (label, households, area of the outline in km²)
SIZES = (("grid of 500 households", 500, 0.5), ("grid of 5,000 households", 5000, 3.0))
DEFAULT_SEEDS = 5
DEFAULT_REPEAT = 3
FIRST_SEED = 20200207
M_PER_DEG_LON = M_PER_DEG_LON_EQUATOR * math.cos(math.radians(CENTRE_LONLAT[1]))


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[suggest] {message}", file=sys.stderr, flush=True)


# -- the synthetic grids ------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticGrid:
    """One grid outline (EPSG:4326) and its buildings."""

    label: str
    seed: int
    outline_4326: Polygon
    buildings: tuple[Building, ...]

    @property
    def households(self) -> int:
        return sum(b.households for b in self.buildings)

    @property
    def area_km2(self) -> float:
        return self.outline_4326.area * M_PER_DEG_LON * M_PER_DEG_LAT / 1e6


def _to_lonlat(xy_m: np.ndarray) -> np.ndarray:
    """Local metres around the centre to lon/lat, rounded as GeoJSON keeps them."""
    lon = CENTRE_LONLAT[0] + xy_m[:, 0] / M_PER_DEG_LON
    lat = CENTRE_LONLAT[1] + xy_m[:, 1] / M_PER_DEG_LAT
    return np.column_stack([lon, lat])


def irregular_outline(rng: np.random.Generator, *, area_km2: float) -> Polygon:
    """A wavy, non-convex star of about ``area_km2`` with a narrow inlet, in lon/lat
    (vertices on the 1e-6° grid)."""
    theta = np.linspace(0, 2 * math.pi, 120, endpoint=False)
    radius = np.ones_like(theta)
    for k in range(2, 8):  # a few smooth waves, weaker as they get finer
        radius += (
            rng.uniform(0.04, 0.16) / (k / 2) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
        )
    shape_m = Polygon(np.column_stack([radius * np.cos(theta), radius * np.sin(theta)]))
    shape_m = shapely.affinity.scale(shape_m, xfact=rng.uniform(1.0, 1.6), yfact=1.0)
    shape_m = shapely.affinity.rotate(shape_m, rng.uniform(0, 180), origin=(0, 0))
    scale = math.sqrt(area_km2 * 1e6 / shape_m.area)
    shape_m = shapely.affinity.scale(shape_m, xfact=scale, yfact=scale, origin=(0, 0))
    # The inlet: a strip about 40 m wide from the edge halfway to the centre.
    reach_m = 1.2 * scale * float(radius.max())
    inlet = box(0, -20, reach_m, 20)
    inlet = shapely.affinity.translate(inlet, xoff=0.5 * scale)
    inlet = shapely.affinity.rotate(inlet, rng.uniform(0, 360), origin=(0, 0))
    body = shape_m.difference(inlet)
    if isinstance(body, MultiPolygon):  # keep the main body if the strip cut a tip off
        body = max(body.geoms, key=lambda p: p.area)
    outline = shapely.set_precision(shapely.transform(body, _to_lonlat), 1e-6)
    assert isinstance(outline, Polygon) and outline.is_valid
    return outline


def _estate_m(rng: np.random.Generator, *, centre_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apartment blocks on a rotated lattice, 8–24 households each."""
    rows, cols = (int(v) for v in rng.integers(2, 6, size=2))
    spacing_m = rng.uniform(25, 45)
    grid = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), axis=-1).reshape(-1, 2)
    xy = (grid - (np.array([cols, rows]) - 1) / 2) * spacing_m
    angle = rng.uniform(0, math.pi)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    xy = xy @ rot.T + centre_m + rng.normal(0, 2, size=xy.shape)
    return xy, rng.integers(8, 25, size=len(xy))


def _village_m(rng: np.random.Generator, *, centre_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scattered houses, 1–6 households each."""
    count = int(rng.integers(8, 30))
    xy = centre_m + rng.normal(0, rng.uniform(25, 60), size=(count, 2))
    return xy, rng.integers(1, 7, size=count)


def clustered_buildings(
    rng: np.random.Generator, *, outline_4326: Polygon, households: int
) -> tuple[Building, ...]:
    """Estates and villages inside the outline (≥ 5 m from its edge, ≥ 8 m apart)
    until they hold exactly ``households`` households."""
    outline_m = shapely.transform(
        outline_4326,
        lambda ll: np.column_stack(
            [
                (ll[:, 0] - CENTRE_LONLAT[0]) * M_PER_DEG_LON,
                (ll[:, 1] - CENTRE_LONLAT[1]) * M_PER_DEG_LAT,
            ]
        ),
    )
    inner_m = outline_m.buffer(-5)
    xmin, ymin, xmax, ymax = inner_m.bounds
    kept_xy: list[np.ndarray] = []
    kept_hh: list[int] = []
    total = 0
    while total < households:
        centre = rng.uniform((xmin, ymin), (xmax, ymax))
        if not inner_m.contains(shapely.Point(centre)):
            continue
        make = _estate_m if rng.random() < 0.5 else _village_m
        xy, hh = make(rng, centre_m=centre)
        for point, count in zip(xy, hh.tolist(), strict=True):
            if total >= households or not shapely.contains_xy(inner_m, *point):
                continue
            if kept_xy and np.min(np.hypot(*(np.array(kept_xy) - point).T)) < 8:
                continue
            count = min(count, households - total)
            kept_xy.append(point)
            kept_hh.append(count)
            total += count
    lonlat = np.round(_to_lonlat(np.array(kept_xy)), 7)
    return tuple(
        Building(building_id=i + 1, lon=float(lon), lat=float(lat), households=hh)
        for i, ((lon, lat), hh) in enumerate(zip(lonlat.tolist(), kept_hh, strict=True))
    )


def synthetic_grid(*, label: str, households: int, area_km2: float, seed: int) -> SyntheticGrid:
    """One deterministic grid for ``seed``."""
    rng = np.random.default_rng(seed)
    outline = irregular_outline(rng, area_km2=area_km2)
    buildings = clustered_buildings(rng, outline_4326=outline, households=households)
    return SyntheticGrid(label=label, seed=seed, outline_4326=outline, buildings=buildings)


# -- measuring ----------------------------------------------------------------------
@dataclass(frozen=True)
class GridRun:
    """What one grid gave: timings (median of the repeats) and quality."""

    grid: SyntheticGrid
    suggest_seconds: float
    band_seconds: float
    parts: int
    within_band: int
    contiguous: int
    tiles: bool
    band_parts: int
    band_within: int
    band_multi_piece: int
    reasons: int


def _timed(call: Callable[[], object], *, repeat: int) -> tuple[float, object]:
    seconds = []
    result: object = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def _tiles(grid: SyntheticGrid, suggestion: Suggestion) -> bool:
    """Parts cover every building exactly once, with the households they claim,
    do not overlap, and their union is the outline (within the snapping)."""
    geoms = [p.geom_4326 for p in suggestion.parts]
    points = shapely.points([(b.lon, b.lat) for b in grid.buildings])
    households = np.array([b.households for b in grid.buildings])
    covered = np.array([shapely.covers(g, points) for g in geoms])
    if not (covered.sum(axis=0) == 1).all():
        return False
    if any(
        int(households[row].sum()) != p.households
        for p, row in zip(suggestion.parts, covered, strict=True)
    ):
        return False
    union = shapely.union_all(geoms)
    overlap_deg2 = sum(g.area for g in geoms) - union.area
    gap_deg2 = union.symmetric_difference(grid.outline_4326).area
    limit_deg2 = grid.outline_4326.length * 1e-6  # a 1e-6° band along the edge
    return overlap_deg2 < limit_deg2 and gap_deg2 < limit_deg2


def measure_grid(grid: SyntheticGrid, *, repeat: int) -> GridRun:
    """Time the suggestion and plain band_partition on ``grid`` and check the result."""
    lonlat = np.array([(b.lon, b.lat) for b in grid.buildings])
    weights = np.array([b.households for b in grid.buildings], dtype=np.float64)
    suggest_s, suggestion = _timed(
        lambda: suggest_microgrids(
            grid.outline_4326, grid.buildings, min_households=MIN_HOUSEHOLDS,
            max_households=MAX_HOUSEHOLDS,
        ),
        repeat=repeat,
    )  # fmt: skip
    band_s, band_parts = _timed(
        lambda: band_partition(
            grid.outline_4326, lonlat, weights=weights, min_weight=MIN_HOUSEHOLDS,
            max_weight=MAX_HOUSEHOLDS,
        ),
        repeat=repeat,
    )  # fmt: skip
    assert isinstance(suggestion, Suggestion) and isinstance(band_parts, list)
    return GridRun(
        grid=grid,
        suggest_seconds=suggest_s,
        band_seconds=band_s,
        parts=len(suggestion.parts),
        within_band=sum(p.within_band for p in suggestion.parts),
        contiguous=sum(
            type(p.geom_4326) is Polygon and p.geom_4326.is_valid for p in suggestion.parts
        ),
        tiles=_tiles(grid, suggestion),
        band_parts=len(band_parts),
        band_within=sum(MIN_HOUSEHOLDS <= p.weight <= MAX_HOUSEHOLDS for p in band_parts),
        band_multi_piece=sum(len(p.geom_4326.geoms) > 1 for p in band_parts),
        reasons=len(suggestion.reasons),
    )


def measure(*, seeds: int, repeat: int) -> list[GridRun]:
    """Every size, ``seeds`` grids each."""
    warm = synthetic_grid(label="warm-up", households=200, area_km2=0.2, seed=FIRST_SEED - 1)
    suggest_microgrids(warm.outline_4326, warm.buildings)  # imports, GEOS: untimed
    runs = []
    for label, households, area_km2 in SIZES:
        for seed in range(FIRST_SEED, FIRST_SEED + seeds):
            grid = synthetic_grid(label=label, households=households, area_km2=area_km2, seed=seed)
            run = measure_grid(grid, repeat=repeat)
            log(
                f"{label}, seed {seed}: {len(grid.buildings)} buildings, {run.parts} parts, "
                f"{run.within_band} in band, {run.suggest_seconds:.3f} s "
                f"(band_partition {run.band_seconds:.3f} s)"
            )
            runs.append(run)
    return runs


# -- the section --------------------------------------------------------------------
def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "–"


def _ratio(runs: list[GridRun]) -> float:
    """Median suggestion time ÷ median band_partition time."""
    return statistics.median(r.suggest_seconds for r in runs) / statistics.median(
        r.band_seconds for r in runs
    )


def summary_rows(runs: list[GridRun]) -> list[list[str]]:
    """One row per grid size, over its seeds."""
    rows = []
    for label, _, _ in SIZES:
        mine = [r for r in runs if r.grid.label == label]
        suggest = [r.suggest_seconds for r in mine]
        band = [r.band_seconds for r in mine]
        ratio = _ratio(mine)
        parts = [r.parts for r in mine]
        buildings = [len(r.grid.buildings) for r in mine]
        rows.append([
            label,
            f"{min(buildings)}–{max(buildings)}",
            f"{statistics.median(r.grid.area_km2 for r in mine):.2f}",
            f"**{statistics.median(suggest):.3f} s**",
            f"{max(suggest):.3f} s",
            f"{statistics.median(band):.3f} s",
            f"**{ratio:.1f}×**",
            f"{min(parts)}–{max(parts)}",
            _share(sum(r.within_band for r in mine), sum(parts)),
            _share(sum(r.contiguous for r in mine), sum(parts)),
            "yes" if all(r.tiles for r in mine) else "**no**",
            _share(sum(r.band_within for r in mine), sum(r.band_parts for r in mine)),
            f"{sum(r.band_multi_piece for r in mine)}/{sum(r.band_parts for r in mine)}",
        ])  # fmt: skip
    return rows


def detail_rows(runs: list[GridRun]) -> list[list[str]]:
    """One row per grid."""
    return [
        [
            r.grid.label, str(r.grid.seed), str(len(r.grid.buildings)), f"{r.grid.area_km2:.2f}",
            f"{r.suggest_seconds:.3f}", f"{r.band_seconds:.3f}",
            f"{r.suggest_seconds / r.band_seconds:.1f}×", str(r.parts),
            f"{r.within_band}/{r.parts}", f"{r.contiguous}/{r.parts}", str(r.reasons),
            f"{r.band_within}/{r.band_parts}", str(r.band_multi_piece),
        ]
        for r in runs
    ]  # fmt: skip


def machine(*, load_at_start: float) -> dict[str, str]:
    """nproc, CPU, RAM, kernel, Python, shapely (GEOS) and numpy versions, and
    the load average before the run (other processes share the cores)."""
    return {
        **host_description(),
        "shapely": f"{shapely.__version__} (GEOS {shapely.geos_version_string})",
        "numpy": np.__version__,
        "load average (1 min) before the run": f"{load_at_start:.2f}",
    }


def render_section(
    *, runs: list[GridRun], seeds: int, repeat: int, date_utc: str, load_at_start: float
) -> str:
    """The markdown body of this benchmark's section in RESULTS.md."""
    command = "python -m bench.suggest"
    if seeds != DEFAULT_SEEDS or repeat != DEFAULT_REPEAT:
        command += f" --seeds {seeds} --repeat {repeat}"
    summary = markdown_table(
        header=[
            "grid", "buildings", "km²", "suggest, median", "suggest, max",
            "band_partition, median", "ratio", "parts", "parts within [30, 50]",
            "parts one Polygon", "tiling + households check", "band_partition: within",
            "band_partition: parts in several pieces",
        ],
        rows=summary_rows(runs),
    )  # fmt: skip
    detail = markdown_table(
        header=[
            "grid", "seed", "buildings", "km²", "suggest s", "band_partition s", "ratio",
            "parts", "within", "one Polygon", "reasons", "band_partition within",
            "band_partition multi-piece",
        ],
        rows=detail_rows(runs),
    )  # fmt: skip
    return f"""\
`geo.suggest.suggest_microgrids` (band {MIN_HOUSEHOLDS}–{MAX_HOUSEHOLDS} households) on synthetic
grids near Xinxing: an irregular non-convex outline (a wavy star with a 40 m
inlet) of about 0.5 km² (500 households) or 3 km² (5,000 households), and
buildings of 1–24 households clustered like estates (lattices of apartment
blocks of 8–24 households, scattered village houses of 1–6), {seeds} seeds per
size. Each time is the median of {repeat} calls on the same input; the table
gives the median and the maximum over the seeds. **No anchor**: DESIGN.md
("Performance budgets") names none for the suggestion, so there is no budget
and no PASS/FAIL. As context only, the step it builds on, plain
`geo.partition.band_partition` of the same points and weights (its parts may
be MultiPolygons, and are not repaired), is timed on the same input in the same
run; "ratio" is suggest ÷ band_partition. "Tiling + households check": no
overlap, no gap beyond the 1e-6° snapping, every building covered by exactly one
part, each part's households recomputed from the buildings it covers.

- reproduce: `{command}` (or `make bench`)
- date: {date_utc}
{machine_lines(machine=machine(load_at_start=load_at_start))}

{summary}

Per grid:

{detail}

{reading(runs)}
"""


def reading(runs: list[GridRun]) -> str:
    """What the figures say, with this run's numbers."""
    parts = sum(r.parts for r in runs)
    band_parts = sum(r.band_parts for r in runs)
    multi = sum(r.band_multi_piece for r in runs)
    band_out = band_parts - sum(r.band_within for r in runs)
    out = parts - sum(r.within_band for r in runs)
    big = [r for r in runs if r.grid.households == max(x.grid.households for x in runs)]
    return (
        f"Reading: on these {len(runs)} grids plain `band_partition` leaves {multi} of its "
        f"{band_parts} parts in several pieces (a cut across the inlet or a bay of the "
        f"outline) and {band_out} outside the band; the suggestion has {out} of {parts} "
        f"outside the band, and every part is one Polygon. That costs "
        f"{_ratio(big):.1f}× "
        f"`band_partition`'s time on the largest grids (ratio of the medians): snapping the "
        f"linework again, finding each part's pieces and neighbours, and the repair."
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the section and write it to bench/RESULTS.md."""
    args = parse_args(argv)
    if args.seeds < 1 or args.repeat < 1:
        raise SystemExit("--seeds and --repeat must be at least 1")
    date_utc = utc_now_text()
    load_at_start = os.getloadavg()[0]
    runs = measure(seeds=args.seeds, repeat=args.repeat)
    body = render_section(
        runs=runs, seeds=args.seeds, repeat=args.repeat, date_utc=date_utc,
        load_at_start=load_at_start,
    )  # fmt: skip
    write_section(title=SECTION_TITLE, body=body)
    print(f"## {SECTION_TITLE}\n\n{body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
