"""Benchmark: choropleth layers (issue 4) — MVT tiles, uncached and cached
(ETag / 304), and the GeoJSON layer of 7,000 grids, beside tipg serving the
same tables, the raw tile SQL run by pgbench, and a naive ORM → shapely → json
path; same data, same run.

The city is bench.assignment's synthetic one (100,000 micro-grids with wavy
shared edges), grouped into 7,000 grids of 12 or 16 micro-grids, 700
communities, 28 townships and one county, with households at its clustered
building points, each given its micro-grid here (the lowest code covering it,
the rule of db.assign), one screening round and visits for about 80 % of the
households, so the coverage layer has values.

Run: ``python -m bench.layers [--households 2700000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import shapely
from sqlalchemy import Connection, Engine, create_engine, text

from bench.assignment import generate_city, grid_shape
from bench.common import (
    BenchCluster,
    copy_lines,
    ewkb_hex,
    machine_description,
    machine_lines,
    markdown_table,
    throwaway_cluster,
    utc_now_text,
    write_section,
)
from db.migrate import upgrade
from db.models import Area
from db.tiles import TILE_SQL, TileAddress, tile_parameters

SECTION_TITLE = "Layers: MVT tiles and GeoJSON (issue 4)"
BENCH_DB = "bench_layers"
COUNTY_CODE = "440106"
DEFAULT_HOUSEHOLDS = 2_700_000
DEFAULT_SEED = 20200204
MICROGRIDS = 100_000
VALID_FROM = dt.date(2020, 1, 1)
ROUND_START = dt.date(2020, 2, 1)
ROUND_END = dt.date(2020, 2, 14)
AS_OF = dt.date(2020, 2, 10)
LAYER = "coverage"
BENCH_SCHEMA = "bench"  # the tables tipg serves (and nothing else of the database)
TILE_ZOOMS = (12, 13, 14, 15, 16)
TILES_PER_ZOOM = 40

REPO_ROOT = Path(__file__).resolve().parent.parent
TIPG_VENV = REPO_ROOT / "var" / "bench-tipg-venv"
TIPG_PACKAGES = ("tipg", "uvicorn[standard]")


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[layers] {message}", file=sys.stderr, flush=True)


# -- the city: micro-grids grouped into grids, communities, townships -------------------
@dataclass(frozen=True)
class Level:
    """The areas of one level: codes, names, parent codes and geometries (EPSG:4326)."""

    name: str
    codes: list[str]
    names: list[str]
    parents: list[str | None]
    geoms: np.ndarray  # shapely MultiPolygons


@dataclass(frozen=True)
class LayersCity:
    levels: list[Level]  # county, township, community, grid, microgrid
    household_lon: np.ndarray
    household_lat: np.ndarray
    household_microgrid: np.ndarray  # object: micro-grid code, or None outside every one
    household_grid: np.ndarray  # int: index of the household's grid in level "grid", -1 outside
    seed: int

    @property
    def households(self) -> int:
        return len(self.household_lon)

    def level(self, name: str) -> Level:
        return next(level for level in self.levels if level.name == name)


def _strips(rng: np.random.Generator, *, total: int, parts: int) -> np.ndarray:
    """Split ``total`` cells into ``parts`` strips of two adjacent sizes (in a
    random order); return the strip index of each cell."""
    small = total // parts
    sizes = np.full(parts, small)
    sizes[: total - small * parts] += 1
    rng.shuffle(sizes)
    return np.repeat(np.arange(parts), sizes)


def _union(polygons: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """One MultiPolygon per group: the union of its members (an exact coverage)."""
    order = np.argsort(groups, kind="stable")
    bounds = np.searchsorted(groups[order], np.arange(count + 1))
    out = np.empty(count, dtype=object)
    for index in range(count):
        members = polygons[order[bounds[index] : bounds[index + 1]]]
        merged = shapely.coverage_union_all(members)
        if not shapely.is_valid(merged):
            merged = shapely.make_valid(shapely.union_all(members))
        out[index] = merged
    return _as_multi(out)


def _as_multi(geoms: np.ndarray) -> np.ndarray:
    """Every geometry as a MultiPolygon (the area table's type)."""
    out = np.empty(len(geoms), dtype=object)
    for index, geom in enumerate(geoms):
        if geom.geom_type == "MultiPolygon":
            out[index] = geom
        elif geom.geom_type == "Polygon":
            out[index] = shapely.MultiPolygon([geom])
        else:
            parts = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon"]
            out[index] = shapely.MultiPolygon(parts)
    return out


def build_city(*, households: int, seed: int) -> LayersCity:
    """bench.assignment's city (same polygons and points for the seed) with the
    hierarchy above the micro-grids: 100 × 70 grids of 4 × 3 or 4 × 4 cells,
    communities of 5 × 2 grids, townships of 5 × 5 communities."""
    city = generate_city(microgrids=MICROGRIDS, points=households, seed=seed)
    rng = np.random.default_rng(seed + 1)
    cols, rows = grid_shape(MICROGRIDS)  # 400 × 250; cell (i, j) is polygon i * rows + j
    grid_col = _strips(rng, total=cols, parts=100)
    grid_row = _strips(rng, total=rows, parts=70)
    i, j = np.divmod(np.arange(cols * rows), rows)
    gx, gy = grid_col[i], grid_row[j]  # grid column 0..99, grid row 0..69
    cx, cy = gx // 5, gy // 2  # community 20 × 35
    tx, ty = cx // 5, cy // 5  # township 4 × 7
    township = ty * 4 + tx
    community_in_township = (cy % 5) * 5 + (cx % 5)
    grid_in_community = (gy % 2) * 5 + (gx % 5)
    township_code = np.char.add(COUNTY_CODE, np.char.zfill((township + 1).astype(str), 3))
    community_code = np.char.add(
        township_code, np.char.zfill((community_in_township + 1).astype(str), 3)
    )
    grid_code = np.char.add(community_code, np.char.zfill((grid_in_community + 1).astype(str), 3))
    # Micro-grids numbered within their grid, south-west first.
    order = np.lexsort((i, j, grid_code))
    rank = np.empty(len(order), dtype=np.int64)
    sorted_grids = grid_code[order]
    starts = np.r_[0, np.flatnonzero(sorted_grids[1:] != sorted_grids[:-1]) + 1]
    first = np.zeros(len(order), dtype=np.int64)
    first[starts] = starts
    first = np.maximum.accumulate(first)
    rank[order] = np.arange(len(order)) - first
    microgrid_code = np.char.add(grid_code, np.char.zfill((rank + 1).astype(str), 2))

    polygons = city.polygons
    microgrid = Level(
        name="microgrid",
        codes=microgrid_code.tolist(),
        names=[f"微网格{c[-7:]}" for c in microgrid_code.tolist()],
        parents=grid_code.tolist(),
        geoms=_as_multi(polygons),
    )
    built: dict[str, Level] = {"microgrid": microgrid}
    child_geoms, child_parent, child_cell = polygons, grid_code, np.arange(len(polygons))
    for name, label, parent_code_of_cell in (
        ("grid", "网格", community_code),
        ("community", "社区", township_code),
        ("township", "街道", np.full(len(township_code), COUNTY_CODE)),
    ):
        unique, inverse = np.unique(child_parent, return_inverse=True)
        geoms = _union(child_geoms, inverse, len(unique))
        cell = np.empty(len(unique), dtype=np.int64)
        cell[inverse] = child_cell  # one cell of each area of this level
        parents = parent_code_of_cell[cell]
        built[name] = Level(
            name=name,
            codes=unique.tolist(),
            names=[f"{label}{c[len(COUNTY_CODE) :]}" for c in unique.tolist()],
            parents=parents.tolist(),
            geoms=geoms,
        )
        child_geoms, child_parent, child_cell = geoms, parents, cell
    county = Level(
        name="county",
        codes=[COUNTY_CODE],
        names=["基准区"],
        parents=[None],
        geoms=_union(child_geoms, np.zeros(len(child_geoms), dtype=np.int64), 1),
    )
    levels = [county, built["township"], built["community"], built["grid"], microgrid]

    # Each household's micro-grid: the lowest code among those covering its point.
    points = shapely.points(city.lon, city.lat)
    tree = shapely.STRtree(polygons)
    point_index, polygon_index = tree.query(points, predicate="covered_by")
    codes_hit = microgrid_code[polygon_index]
    order = np.lexsort((codes_hit, point_index))
    point_index, codes_hit = point_index[order], codes_hit[order]
    keep = np.ones(len(point_index), dtype=bool)
    keep[1:] = point_index[1:] != point_index[:-1]
    assigned = np.full(city.households, None, dtype=object)
    assigned[point_index[keep]] = codes_hit[keep]
    grid_of_cell = np.searchsorted(np.asarray(built["grid"].codes), grid_code)
    household_grid = np.full(city.households, -1, dtype=np.int64)
    household_grid[point_index[keep]] = grid_of_cell[polygon_index[order][keep]]
    return LayersCity(
        levels=levels,
        household_lon=city.lon,
        household_lat=city.lat,
        household_microgrid=assigned,
        household_grid=household_grid,
        seed=seed,
    )


# -- loading (untimed) -----------------------------------------------------------------
NULL = "\\N"  # NULL in COPY's text format


def _area_chunks(city: LayersCity) -> Iterator[str]:
    for level in city.levels:
        hexes = ewkb_hex(level.geoms)
        yield "".join(
            f"{code}\t{name}\t{level.name}\t{parent or NULL}\t{COUNTY_CODE}\t{VALID_FROM}\tbench\t{wkb}\n"
            for code, name, parent, wkb in zip(
                level.codes, level.names, level.parents, hexes, strict=True
            )
        )


def _household_chunks(city: LayersCity, *, chunk: int = 200_000) -> Iterator[str]:
    for start in range(0, city.households, chunk):
        stop = min(start + chunk, city.households)
        hexes = ewkb_hex(
            np.asarray(
                shapely.points(city.household_lon[start:stop], city.household_lat[start:stop])
            )
        )
        codes = city.household_microgrid[start:stop].tolist()
        yield "".join(
            f"{start + k + 1}\t{COUNTY_CODE}\t{wkb}\tbuilding\tmatched\t{code or NULL}\n"
            for k, (wkb, code) in enumerate(zip(hexes, codes, strict=True))
        )


@dataclass(frozen=True)
class Visits:
    household_ids: np.ndarray  # int64, one visit each
    results: np.ndarray  # str
    days: np.ndarray  # int: day of February 2020 (Asia/Shanghai)
    minutes: np.ndarray  # int: minute of the day (Asia/Shanghai)

    @property
    def complete(self) -> int:
        return int((self.results == "complete").sum())


def generate_visits(city: LayersCity, *, seed: int) -> Visits:
    """One visit for about 80 % of the located households, every visit on or
    before AS_OF: each grid has its own share visited (Beta(8, 2), mean 0.8)
    so the coverage layer spreads over its classes; 9 visits in 10 complete."""
    rng = np.random.default_rng(seed + 2)
    grids = len(city.level("grid").codes)
    share = rng.beta(8.0, 2.0, size=grids)
    located = np.flatnonzero(city.household_grid >= 0)
    visited = located[rng.random(len(located)) < share[city.household_grid[located]]]
    results = np.where(
        rng.random(len(visited)) < 0.9,
        "complete",
        rng.choice(np.array(["partial", "nobody_home", "refused"]), size=len(visited)),
    )
    return Visits(
        household_ids=visited.astype(np.int64) + 1,
        results=results,
        days=rng.integers(ROUND_START.day, AS_OF.day + 1, size=len(visited)),
        minutes=rng.integers(8 * 60, 20 * 60, size=len(visited)),
    )


def _visit_chunks(visits: Visits, *, round_id: int, chunk: int = 200_000) -> Iterator[str]:
    for start in range(0, len(visits.household_ids), chunk):
        stop = start + chunk
        rows = zip(
            visits.household_ids[start:stop].tolist(),
            visits.results[start:stop].tolist(),
            visits.days[start:stop].tolist(),
            visits.minutes[start:stop].tolist(),
            strict=True,
        )
        yield "".join(
            f"{start + k + 1}\t{COUNTY_CODE}\t{round_id}\t{hid}\t{result}"
            f"\t2020-02-{day:02d} {minute // 60:02d}:{minute % 60:02d}:00+08\n"
            for k, (hid, result, day, minute) in enumerate(rows)
        )


def _vacuum(engine: Engine, *tables: str) -> None:
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            connection.execute(text(f"VACUUM (ANALYZE) {table}"))


def _copy_without_indexes(
    connection: Connection, *, table: str, statement: str, chunks: Iterator[str]
) -> None:
    """COPY into an empty table with its secondary indexes dropped, then
    rebuilt from their own definitions (faster than millions of inserts)."""
    definitions = connection.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = :table"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        ),
        {"table": table},
    ).all()
    for name, _ in definitions:
        connection.execute(text(f'DROP INDEX "{name}"'))
    copy_lines(connection, statement=statement, lines=chunks)
    for _, definition in definitions:
        connection.execute(text(definition))


def load_city(engine: Engine, *, city: LayersCity, visits: Visits) -> None:
    """Areas, households (with their micro-grid), one screening round over
    the county and its visits; then VACUUM ANALYZE."""
    with engine.begin() as connection:
        copy_lines(
            connection,
            statement="COPY area (code, name, level, parent_code, county_code, valid_from,"
            " source, geom) FROM STDIN",
            lines=_area_chunks(city),
        )
        _copy_without_indexes(
            connection,
            table="household",
            statement="COPY household (id, county_code, geom, geocode_level, geocode_status,"
            " microgrid_code) FROM STDIN",
            chunks=_household_chunks(city),
        )
        round_id = connection.execute(
            text(
                "INSERT INTO screening_round (county_code, area_code, name, start_date, end_date)"
                " VALUES (:county, :county, '第一轮全员排查', :start, :end) RETURNING id"
            ),
            {"county": COUNTY_CODE, "start": ROUND_START, "end": ROUND_END},
        ).scalar_one()
        _copy_without_indexes(
            connection,
            table="visit",
            statement="COPY visit (id, county_code, round_id, household_id, result, visited_at)"
            " FROM STDIN",
            chunks=_visit_chunks(visits, round_id=int(round_id)),
        )
    _vacuum(engine, "area", "household", "screening_round", "visit")


# -- CPU time of processes (where a request's time goes) ------------------------------
_TICK = float(os.sysconf("SC_CLK_TCK"))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (all its threads)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _TICK if fields else 0.0


def cluster_cpu_seconds(postmaster: int) -> float:
    """CPU of the postmaster, its live children and the children it reaped."""
    fields = _stat_fields(postmaster)
    if fields is None:
        return 0.0
    total = sum(int(v) for v in fields[11:15]) / _TICK
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = _stat_fields(int(entry.name))
            if child is not None and int(child[1]) == postmaster:
                total += (int(child[11]) + int(child[12])) / _TICK
    return total


def postmaster_pid(bench: BenchCluster) -> int:
    return int((bench.cluster.data_dir / "postmaster.pid").read_text().split()[0])


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    return (sum(values) - values[3] - values[4]) / _TICK  # minus idle and iowait


@dataclass
class CpuProbe:
    """CPU seconds used, between start() and stop(), by the HTTP server, the
    database cluster, this (client) process with its waited-for children
    (pgbench), and everything else on the machine."""

    postmaster: int
    server_pid: int | None = None
    _start: tuple[float, ...] = ()

    def _now(self) -> tuple[float, ...]:
        server = process_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (
            server,
            cluster_cpu_seconds(self.postmaster),
            time.process_time() + children.ru_utime + children.ru_stime,
            machine_busy_seconds(),
        )

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> Cpu:
        now = self._now()
        server, db, client, busy = (a - b for a, b in zip(now, self._start, strict=True))
        return Cpu(server=server, db=db, client=client, other=max(0.0, busy - server - db - client))


def wait_for_quiet(*, max_wait_s: float = 20.0, threshold_cores: float = 0.2) -> float:
    """Wait (at most ``max_wait_s``) for a second in which the whole machine
    keeps fewer than ``threshold_cores`` busy — this benchmark is idle between
    passes, so that is other work (on a shared machine: other people's tests).
    Returns the seconds waited."""
    started = time.perf_counter()
    while True:
        before, t0 = machine_busy_seconds(), time.perf_counter()
        time.sleep(1.0)
        busy = (machine_busy_seconds() - before) / (time.perf_counter() - t0)
        waited = time.perf_counter() - started
        if busy < threshold_cores or waited >= max_wait_s:
            return waited


@dataclass(frozen=True)
class Cpu:
    server: float
    db: float
    client: float
    other: float  # other processes on the machine


# -- HTTP servers: Wangge and tipg under uvicorn, one worker each ----------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid


def start_server(
    *, name: str, argv: list[str], env: dict[str, str], cwd: Path, ready_path: str, log_path: Path
) -> Server:
    """Start ``argv`` (a uvicorn command missing --port) and wait until
    ``ready_path`` answers 200."""
    port = free_port()
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()
    server = Server(
        name=name, process=process, base_url=f"http://127.0.0.1:{port}", log_path=log_path
    )
    deadline = time.monotonic() + 120
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if client.get(server.base_url + ready_path).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    stop_server(server)
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
    raise RuntimeError(f"{name} did not start on port {port}:\n{tail}")


def stop_server(server: Server) -> None:
    """Stop the server this benchmark started (its own process only)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


SOURCE_PACKAGES = ("api", "db", "geo", "web", "migrations")


def snapshot_source(scratch: Path) -> Path:
    """A copy of Wangge's packages as they are when the run starts: every
    restart of the server runs the same code, whatever is edited meanwhile."""
    target = scratch / "src"
    for package in SOURCE_PACKAGES:
        shutil.copytree(
            REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target


BENCH_ACCOUNT = "bench-wall"  # a wall_viewer of the county: the wall map's account
SECRET_KEY = secrets.token_urlsafe(48)  # signs this run's tokens (nothing written to var/)


def wangge_env(bench: BenchCluster) -> dict[str, str]:
    """The environment of Wangge's server and CLI in this run. The per-account
    request limit (600 a minute by default) is lifted: one client sends
    hundreds a second here; the limiter itself still runs on every request."""
    env = dict(os.environ)
    env["DATABASE_URL"] = bench.cluster.url(dbname=BENCH_DB)
    env["WANGGE_SECRET_KEY"] = SECRET_KEY
    env["WANGGE_REQUESTS_PER_MINUTE"] = "100000000"
    return env


def create_bench_account(*, bench: BenchCluster, source: Path) -> str | None:
    """Create the benchmark's account with ``wangge users add`` (from the
    snapshot); return its password (None when this Wangge has no accounts)."""
    password = secrets.token_urlsafe(24)
    result = subprocess.run(
        [
            sys.executable, "-c", "from api.cli import main; main()", "users", "add", BENCH_ACCOUNT,
            "--role", "wall_viewer", "--area", COUNTY_CODE, "--password-stdin",
        ],
        input=password + "\n", capture_output=True, text=True, cwd=source,
        env=wangge_env(bench), check=False,
    )  # fmt: skip
    if result.returncode != 0:
        if "No such command" in result.stderr:
            return None
        raise RuntimeError(f"wangge users add failed: {result.stderr[-2000:]}")
    return password


def log_in(server: Server, *, password: str | None) -> dict[str, str]:
    """The Authorization header of a fresh token (none without accounts)."""
    if password is None:
        return {}
    with httpx.Client(timeout=60) as client:
        response = client.post(
            server.base_url + "/api/auth/token",
            data={"username": BENCH_ACCOUNT, "password": password},
        )
    if response.status_code != 200:
        raise RuntimeError(f"log in: {response.status_code} {response.text[:500]}")
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wangge_server(*, bench: BenchCluster, source: Path, log_path: Path) -> Server:
    """Wangge from the snapshot ``source`` (first on sys.path: it is the
    working directory of ``python -m uvicorn``)."""
    env = wangge_env(bench)
    return start_server(
        name="wangge",
        argv=[
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=source,
        ready_path="/api/health",
        log_path=log_path,
    )


def ensure_tipg() -> str:
    """tipg and uvicorn (the same version as ours) in their own venv
    (var/bench-tipg-venv), so tipg's pins never touch Wangge's; returns tipg's version."""
    import importlib.metadata

    uvicorn_version = importlib.metadata.version("uvicorn")
    python = TIPG_VENV / "bin" / "python"
    probe = [
        str(python),
        "-c",
        "import tipg, uvicorn; print(tipg.__version__, uvicorn.__version__)",
    ]

    def installed() -> str | None:
        if not python.exists():
            return None
        result = subprocess.run(probe, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return None
        tipg_version, their_uvicorn = result.stdout.split()
        return tipg_version if their_uvicorn == uvicorn_version else None

    version = installed()
    if version is not None:
        return version
    log(f"installing tipg and uvicorn=={uvicorn_version} into {TIPG_VENV}")
    if not python.exists():
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(TIPG_VENV)], check=True)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "tipg", f"uvicorn=={uvicorn_version}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    version = installed()
    if result.returncode != 0 or version is None:
        raise SystemExit(f"could not install tipg into {TIPG_VENV}:\n{result.stderr[-3000:]}")
    return version


def tipg_server(*, bench: BenchCluster, log_path: Path) -> Server:
    """tipg on the same database, as the same role, over the same unix socket;
    it serves the tables of schema ``bench`` only."""
    c = bench.cluster
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIPG_", "DATABASE_"))}
    # asyncpg takes the socket directory as a percent-encoded host
    env["DATABASE_URL"] = (
        f"postgresql://wangge@{quote(str(c.socket_dir), safe='')}:{c.port}/{BENCH_DB}"
    )
    env.update(
        {
            "TIPG_DB_SCHEMAS": json.dumps([BENCH_SCHEMA]),
            "TIPG_MAX_FEATURES_PER_TILE": "200000",  # every feature, as Wangge's tiles
            "TIPG_MAX_FEATURES_PER_QUERY": "10000",
            "TIPG_CATALOG_TTL": "0",  # no catalogue refresh in the middle of a timing
            "TIPG_DEBUG": "FALSE",
        }
    )
    scratch = log_path.parent / "tipg-cwd"  # tipg reads a .env from its working directory
    scratch.mkdir(exist_ok=True)
    return start_server(
        name="tipg",
        argv=[
            str(TIPG_VENV / "bin" / "python"),
            "-m",
            "uvicorn",
            "tipg.main:app",
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=scratch,
        ready_path="/healthz",
        log_path=log_path,
    )


# -- the tiles ------------------------------------------------------------------------------
Tile = tuple[int, int, int]


def _tile_x(lon: float, z: int) -> int:
    return int((lon + 180.0) / 360.0 * 2**z)


def _tile_y(lat: float, z: int) -> int:
    phi = math.radians(lat)
    return int((1.0 - math.asinh(math.tan(phi)) / math.pi) / 2.0 * 2**z)


def tile_list(*, bounds: tuple[float, float, float, float], seed: int) -> list[Tile]:
    """Up to TILES_PER_ZOOM distinct tiles at each zoom of TILE_ZOOMS meeting
    the city's bounding box, drawn at random, in a random order (zooms mixed)."""
    rng = np.random.default_rng(seed + 3)
    west, south, east, north = bounds
    tiles: list[Tile] = []
    for z in TILE_ZOOMS:
        xs = range(_tile_x(west, z), _tile_x(east, z) + 1)
        ys = range(_tile_y(north, z), _tile_y(south, z) + 1)
        every = [(z, x, y) for x in xs for y in ys]
        pick = rng.choice(len(every), size=min(TILES_PER_ZOOM, len(every)), replace=False)
        tiles.extend(every[int(k)] for k in pick)
    order = rng.permutation(len(tiles))
    return [tiles[int(k)] for k in order]


# -- timing over HTTP: the same client for every server ------------------------------------
@dataclass
class Pass:
    """One timed pass over a list of URLs."""

    seconds: float
    requests: int
    statuses: dict[int, int]
    wire_bytes: int  # bodies as sent (compressed when the server compressed them)
    cpu: Cpu
    etags: dict[int, str] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def http_pass(
    urls: Sequence[str],
    *,
    concurrency: int,
    probe: CpuProbe,
    headers: dict[str, str],
    per_request_headers: Callable[[int], dict[str, str]] | None = None,
    laps: int = 1,
) -> Pass:
    """GET every URL (``laps`` times over) with ``concurrency`` keep-alive
    httpx clients in threads taking the next URL in turn; bodies are read raw
    (not decompressed)."""
    total = len(urls) * laps
    lock = threading.Lock()
    position = [0]
    statuses: dict[int, int] = {}
    etags: dict[int, str] = {}
    wire = [0]
    errors: list[BaseException] = []

    def worker(client: httpx.Client) -> None:
        try:
            while True:
                with lock:
                    index = position[0]
                    position[0] += 1
                if index >= total:
                    return
                k = index % len(urls)
                extra = per_request_headers(k) if per_request_headers else None
                with client.stream("GET", urls[k], headers=extra) as response:
                    size = sum(len(chunk) for chunk in response.iter_raw())
                    etag = response.headers.get("etag")
                with lock:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    wire[0] += size
                    if etag:
                        etags[k] = etag
        except BaseException as error:
            errors.append(error)

    clients = [httpx.Client(headers=headers, timeout=300) for _ in range(concurrency)]
    try:
        threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
        probe.start()
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        cpu = probe.stop()
    finally:
        for client in clients:
            client.close()
    if errors:
        raise RuntimeError(f"HTTP pass failed: {errors[0]!r}") from errors[0]
    return Pass(
        seconds=seconds, requests=total, statuses=statuses, wire_bytes=wire[0], cpu=cpu,
        etags=etags,
    )  # fmt: skip


def if_none_match(etags: dict[int, str]) -> Callable[[int], dict[str, str]]:
    """Request k revalidates the ETag its URL answered with."""

    def headers(k: int) -> dict[str, str]:
        return {"If-None-Match": etags[k]}

    return headers


def fetch(url: str, *, headers: dict[str, str] | None = None) -> httpx.Response:
    """One GET, body read and decoded (for checks, never timed)."""
    with httpx.Client(timeout=600) as client:
        response = client.get(url, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:500]}")
    return response


# -- the raw tile SQL in pgbench -------------------------------------------------------------
PGBENCH_SCHEMA = "pgbench_tiles"


def pgbench_binary(bench: BenchCluster) -> str:
    own = bench.cluster.bindir / "pgbench"
    found = str(own) if own.exists() else shutil.which("pgbench")
    if not found:
        raise SystemExit("pgbench not found (Debian: postgresql-client-15)")
    return found


def _sql_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, dt.date):
        return "date"
    return "text"


def pgbench_scripts(
    engine: Engine, *, tiles: Sequence[Tile], key: str, scratch: Path
) -> tuple[Path, Path]:
    """Write the tile parameters of every tile (db.tiles.tile_parameters, as
    the route binds them) into a table, and two pgbench scripts: one that
    takes the next tile's parameters (a sequence walks the list in order, so
    every tile is cut equally often) and runs db.tiles.TILE_SQL with them,
    and one with the look-up alone (its cost is subtracted)."""
    rows = [
        tile_parameters(
            key=key,
            tile=TileAddress(z=z, x=x, y=y),
            layer_name=LAYER,
            level="microgrid",
            as_of=AS_OF,
        )
        for z, x, y in tiles
    ]
    names = list(rows[0])
    for name in names:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise RuntimeError(f"tile parameter {name!r} is no pgbench variable name")
    used = set(re.findall(r"(?<!:):([a-z_][a-z0-9_]*)", TILE_SQL))
    if used - set(names):
        raise RuntimeError(f"TILE_SQL uses parameters tile_parameters lacks: {used - set(names)}")
    columns = ", ".join(f"{n} {_sql_type(rows[0][n])}" for n in names)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {PGBENCH_SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {PGBENCH_SCHEMA}"))
        connection.execute(
            text(f"CREATE TABLE {PGBENCH_SCHEMA}.tile (i integer PRIMARY KEY, {columns})")
        )
        connection.execute(
            text(
                f"INSERT INTO {PGBENCH_SCHEMA}.tile (i, {', '.join(names)})"
                f" VALUES (:i, {', '.join(':' + n for n in names)})"
            ),
            [{"i": i, **row} for i, row in enumerate(rows)],
        )
        connection.execute(text(f"CREATE SEQUENCE {PGBENCH_SCHEMA}.walk MINVALUE 0 START 0"))
    _vacuum(engine, f"{PGBENCH_SCHEMA}.tile")
    lookup = (
        f"SELECT {', '.join('t.' + n for n in names)} FROM {PGBENCH_SCHEMA}.tile t,"
        f" (SELECT nextval('{PGBENCH_SCHEMA}.walk') % {len(rows)} AS i) s WHERE t.i = s.i \\gset"
    )
    tile_script = scratch / "tile.pgbench"
    tile_script.write_text(f"{lookup}\n{TILE_SQL.strip()};\n", encoding="utf-8")
    lookup_script = scratch / "lookup.pgbench"
    lookup_script.write_text(f"{lookup}\n", encoding="utf-8")
    return tile_script, lookup_script


@dataclass(frozen=True)
class PgbenchRun:
    tiles_per_second: float  # pgbench's tps (without connection time)
    latency_ms: float
    transactions: int
    cpu: Cpu


def run_pgbench(
    bench: BenchCluster, *, script: Path, clients: int, transactions: int, probe: CpuProbe
) -> PgbenchRun:
    """pgbench -M prepared on the cluster's socket, as the application role."""
    c = bench.cluster
    bench.psql(dbname=BENCH_DB, commands=[f"SELECT setval('{PGBENCH_SCHEMA}.walk', 0, false)"])
    argv = [
        pgbench_binary(bench), "-n", "-M", "prepared", "-f", str(script),
        "-c", str(clients), "-j", str(clients), "-t", str(transactions),
        "-h", str(c.socket_dir), "-p", str(c.port), "-U", "wangge", BENCH_DB,
    ]  # fmt: skip
    probe.start()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    cpu = probe.stop()
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed: {result.stderr[-2000:]}")
    tps = re.search(r"^tps = ([\d.]+)", result.stdout, flags=re.MULTILINE)
    latency = re.search(r"^latency average = ([\d.]+) ms", result.stdout, flags=re.MULTILINE)
    if tps is None or latency is None:
        raise RuntimeError(f"unexpected pgbench output:\n{result.stdout}")
    return PgbenchRun(
        tiles_per_second=float(tps.group(1)), latency_ms=float(latency.group(1)),
        transactions=clients * transactions, cpu=cpu,
    )  # fmt: skip


# -- the tables tipg serves: Wangge's layer output, materialised -------------------------------
GRID_PROPERTIES = (
    ("code", "text"), ("name", "text"), ("level", "text"), ("parent", "text"),
    ("value", "double precision"), ("numerator", "bigint"), ("denominator", "bigint"),
    ("households", "bigint"), ("residents", "bigint"), ("class", "smallint"), ("colour", "text"),
)  # fmt: skip


def materialise_for_tipg(engine: Engine, *, grid_features: list[dict[str, Any]], key: str) -> None:
    """Schema ``bench``: the grid layer as Wangge's GeoJSON gave it (every
    property; geometry snapped to the 6 decimals Wangge writes), and the
    micro-grid figures of Wangge's tiles (the rows of ``layer_cache`` under
    ``key``) with the area's EPSG:3857 geometry (what Wangge's tiles read) and,
    in a second table, its EPSG:4326 one. tipg computes nothing: it reads."""
    columns = {name: [f["properties"][name] for f in grid_features] for name, _ in GRID_PROPERTIES}
    unnest = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in GRID_PROPERTIES)
    names = ", ".join(f'"{name}"' for name, _ in GRID_PROPERTIES)
    cache_columns = (
        "c.code::text AS code, c.name, c.level::text AS level, c.value, c.numerator,"
        " c.denominator, c.class, c.colour"
    )
    statements = [
        f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE",
        f"CREATE SCHEMA {BENCH_SCHEMA}",
        f"CREATE TABLE {BENCH_SCHEMA}.coverage_grid ("
        + ", ".join(f'"{name}" {kind}' for name, kind in GRID_PROPERTIES)
        + ", geom geometry(MultiPolygon, 4326) NOT NULL, PRIMARY KEY (code))",
        f"INSERT INTO {BENCH_SCHEMA}.coverage_grid ({names}, geom)"
        f" SELECT v.*, ST_Multi(ST_SnapToGrid(a.geom, 0.000001)) FROM unnest({unnest}) AS v({names})"
        " JOIN area a ON a.code = v.code AND a.valid_to IS NULL",
        f"CREATE TABLE {BENCH_SCHEMA}.coverage_microgrid AS SELECT {cache_columns},"
        " a.geom_3857 AS geom FROM layer_cache c"
        " JOIN area a ON a.code = c.code AND a.valid_to IS NULL WHERE c.cache_key = :key",
        f"CREATE TABLE {BENCH_SCHEMA}.coverage_microgrid_4326 AS SELECT {cache_columns},"
        " a.geom AS geom FROM layer_cache c"
        " JOIN area a ON a.code = c.code AND a.valid_to IS NULL WHERE c.cache_key = :key",
    ]
    for table in ("coverage_grid", "coverage_microgrid", "coverage_microgrid_4326"):
        if table != "coverage_grid":
            statements.append(f"ALTER TABLE {BENCH_SCHEMA}.{table} ADD PRIMARY KEY (code)")
        statements.append(f"CREATE INDEX ON {BENCH_SCHEMA}.{table} USING gist (geom)")
    with engine.begin() as connection:
        for statement in statements:
            params: dict[str, Any] = {"key": key} if ":key" in statement else {}
            if "unnest(" in statement:
                params = columns
            connection.execute(text(statement), params)
    _vacuum(
        engine,
        f"{BENCH_SCHEMA}.coverage_grid",
        f"{BENCH_SCHEMA}.coverage_microgrid",
        f"{BENCH_SCHEMA}.coverage_microgrid_4326",
    )


# -- anchor: a naive ORM → shapely → json GeoJSON layer ------------------------------------------
def naive_layer(engine: Engine) -> bytes:
    """What a first version would do: load the grid ``Area`` objects with the
    ORM, each geometry through shapely, the figures from the materialised
    table, and ``json.dumps`` a FeatureCollection (no layer computation: the
    same advantage tipg has)."""
    from geoalchemy2.shape import to_shape
    from shapely.geometry import mapping
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        figures = {
            row["code"]: dict(row)
            for row in session.execute(
                text(
                    "SELECT "
                    + ", ".join(f'"{name}"' for name, _ in GRID_PROPERTIES)
                    + f" FROM {BENCH_SCHEMA}.coverage_grid"
                )
            ).mappings()
        }
        areas = session.scalars(
            select(Area).where(Area.level == "grid", Area.valid_to.is_(None)).order_by(Area.code)
        ).all()
        features = [
            {
                "type": "Feature",
                "id": area.code,
                "geometry": mapping(to_shape(area.geom_4326)),
                "properties": figures[area.code],
            }
            for area in areas
        ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


# -- checks: every contender serves the same thing (untimed) ---------------------------------
def _decode_codes(tile: bytes) -> set[str]:
    import mapbox_vector_tile

    layers = mapbox_vector_tile.decode(tile)
    return {
        str(feature["properties"]["code"])
        for layer in layers.values()
        for feature in layer["features"]
    }


def check_sample(tiles: Sequence[Tile]) -> list[Tile]:
    """The first two tiles of each zoom in the list."""
    return [t for z in TILE_ZOOMS for t in [t for t in tiles if t[0] == z][:2]]


def wait_for_autoanalyze(bench: BenchCluster, *, timeout_s: float = 300) -> float:
    """Turn autovacuum on (as on any server; naptime 5 s instead of 1 min, so
    the run waits less) and wait until it has analysed ``layer_cache``;
    return the seconds waited."""
    bench.psql(
        dbname=BENCH_DB,
        commands=[
            "ALTER SYSTEM SET autovacuum = on",
            "ALTER SYSTEM SET autovacuum_naptime = '5s'",
            "SELECT pg_reload_conf()",
        ],
    )
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        done = bench.scalar(
            dbname=BENCH_DB,
            sql="SELECT coalesce(last_autoanalyze, last_analyze) IS NOT NULL"
            " FROM pg_stat_user_tables WHERE relname = 'layer_cache'",
        )
        if done == "t":
            return time.perf_counter() - started
        time.sleep(1)
    raise RuntimeError(f"autovacuum did not analyse layer_cache within {timeout_s:.0f} s")


@dataclass(frozen=True)
class TileCheck:
    tiles: int
    wangge_features: int
    tipg_features: int
    only_wangge: int  # features Wangge's tile has and tipg's lacks (its buffer differs)
    only_tipg: int
    sql_equal: int  # tiles with the same features as TILE_SQL run directly


def check_tiles(
    *,
    wangge: Server,
    wangge_headers: dict[str, str],
    tipg: Server,
    engine: Engine,
    tiles: Sequence[Tile],
    key: str,
) -> TileCheck:
    """Decode a sample of tiles from Wangge and tipg; compare with TILE_SQL run directly."""
    sample = check_sample(tiles)
    counts = [0, 0, 0, 0, 0]
    for z, x, y in sample:
        ours = fetch(wangge.base_url + wangge_tile_path((z, x, y)), headers=wangge_headers).content
        theirs = fetch(
            tipg.base_url + tipg_tile_path((z, x, y), table="coverage_microgrid")
        ).content
        a, b = _decode_codes(ours), _decode_codes(theirs)
        counts[0] += len(a)
        counts[1] += len(b)
        counts[2] += len(a - b)
        counts[3] += len(b - a)
        params = tile_parameters(
            key=key, tile=TileAddress(z=z, x=x, y=y), layer_name=LAYER, level="microgrid",
            as_of=AS_OF,
        )  # fmt: skip
        with engine.connect() as connection:
            direct = bytes(connection.execute(text(TILE_SQL), params).scalar_one())
        counts[4] += int(_decode_codes(direct) == a)
    return TileCheck(len(sample), *counts)


@dataclass(frozen=True)
class GeojsonCheck:
    wangge_features: int
    tipg_features: int
    naive_features: int
    property_mismatches: int
    wangge_bytes: int
    tipg_bytes: int
    naive_bytes: int


def check_geojson(*, ours: bytes, theirs: bytes, naive: bytes) -> GeojsonCheck:
    a = {f["id"]: f["properties"] for f in json.loads(ours)["features"]}
    b = {str(f["id"]): f["properties"] for f in json.loads(theirs)["features"]}
    c = json.loads(naive)["features"]
    keys = [name for name, _ in GRID_PROPERTIES]
    mismatches = sum(
        1
        for code, props in a.items()
        if {k: props[k] for k in keys} != {k: b.get(code, {}).get(k) for k in keys}
    )
    return GeojsonCheck(
        wangge_features=len(a), tipg_features=len(b), naive_features=len(c),
        property_mismatches=mismatches, wangge_bytes=len(ours), tipg_bytes=len(theirs),
        naive_bytes=len(naive),
    )  # fmt: skip


# -- paths ------------------------------------------------------------------------------------
def wangge_tile_path(tile: Tile) -> str:
    z, x, y = tile
    return f"/api/tiles/{LAYER}/{z}/{x}/{y}.mvt?level=microgrid&as_of={AS_OF.isoformat()}"


def tipg_tile_path(tile: Tile, *, table: str) -> str:
    z, x, y = tile
    return f"/collections/{BENCH_SCHEMA}.{table}/tiles/WebMercatorQuad/{z}/{x}/{y}"


WANGGE_LAYER_PATH = f"/api/layers/{LAYER}?level=grid&as_of={AS_OF.isoformat()}"
TIPG_ITEMS_PATH = f"/collections/{BENCH_SCHEMA}.coverage_grid/items?limit=7000&f=geojson"
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


# -- the run -----------------------------------------------------------------------------------
@dataclass
class Measurements:
    city: dict[str, int]  # areas per level, households, located, visits, complete
    tiles: list[Tile]
    tiles_per_zoom: dict[int, int]
    load_seconds: float
    build_seconds: float
    passes: dict[str, list[Pass]]
    pgbench: dict[str, list[PgbenchRun]]
    geojson: dict[str, list[Pass]]
    naive_seconds: list[float]
    first_layer_seconds: float
    first_tile_seconds: float
    analyse_wait_seconds: float
    quiet_waits: list[float]
    tile_check: TileCheck
    geojson_check: GeojsonCheck
    versions: dict[str, str]
    machine: dict[str, str]
    date_utc: str
    repeat: int
    households_arg: int


class Contenders:
    """The two servers, restartable (a fresh Wangge has an empty tile memory)."""

    def __init__(self, *, bench: BenchCluster, source: Path, warm_urls: Sequence[str]) -> None:
        self.bench = bench
        self.source = source
        self.password: str | None = None
        self.auth: dict[str, str] = {}
        self.logs = bench.scratch_dir
        self.warm_paths = list(warm_urls)
        self.wangge: Server | None = None
        self.tipg: Server | None = None
        self.postmaster = postmaster_pid(bench)

    def fresh_wangge(self, *, warm: bool = True) -> Server:
        """Stop Wangge (if running), start it again, and (``warm``) warm its
        connections and code paths on tiles outside the timed list."""
        if self.wangge is not None:
            stop_server(self.wangge)
        self.wangge = wangge_server(
            bench=self.bench, source=self.source, log_path=self.logs / "wangge.log"
        )
        if not self.auth:
            self.auth = log_in(self.wangge, password=self.password)
        if warm:
            urls = [self.wangge.base_url + p for p in self.warm_paths]
            http_pass(urls, concurrency=2, probe=self.probe(None), headers=self.wh(GZIP))
        return self.wangge

    def wh(self, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` with Wangge's Authorization header."""
        return {**headers, **self.auth}

    def start_tipg(self) -> Server:
        self.tipg = tipg_server(bench=self.bench, log_path=self.logs / "tipg.log")
        return self.tipg

    def probe(self, server: Server | None) -> CpuProbe:
        return CpuProbe(postmaster=self.postmaster, server_pid=server.pid if server else None)

    def stop(self) -> None:
        for server in (self.wangge, self.tipg):
            if server is not None:
                stop_server(server)


def _warm_paths(bounds: tuple[float, float, float, float]) -> list[str]:
    west, south, east, north = bounds
    z = min(TILE_ZOOMS) - 1
    return [
        wangge_tile_path((z, x, y))
        for x in range(_tile_x(west, z), _tile_x(east, z) + 1)
        for y in range(_tile_y(north, z), _tile_y(south, z) + 1)
    ]


def measure(*, households: int, repeat: int, seed: int) -> Measurements:
    load_at_start = os.getloadavg()[0]
    versions = {"tipg": ensure_tipg()}
    started = time.perf_counter()
    city = build_city(households=households, seed=seed)
    visits = generate_visits(city, seed=seed)
    build_seconds = time.perf_counter() - started
    log(
        f"city built ({build_seconds:.1f} s): {households:,} households, {len(visits.household_ids):,} visits"
    )
    west, south, east, north = (float(v) for v in shapely.bounds(city.level("county").geoms[0]))
    bounds = (west, south, east, north)
    tiles = tile_list(bounds=bounds, seed=seed)
    passes: dict[str, list[Pass]] = {}
    runs: dict[str, list[PgbenchRun]] = {}
    geojson: dict[str, list[Pass]] = {}
    naive_seconds: list[float] = []
    quiet_waits: list[float] = []

    def add(name: str, one: Pass, *, expect: int) -> Pass:
        if set(one.statuses) != {expect}:
            raise RuntimeError(f"{name}: statuses {one.statuses}, expected only {expect}")
        passes.setdefault(name, []).append(one)
        return one

    with throwaway_cluster() as bench:
        source = snapshot_source(bench.scratch_dir)
        url = bench.cluster.ensure_database(BENCH_DB)
        upgrade(url)
        bench.psql(
            dbname=BENCH_DB,
            commands=["ALTER SYSTEM SET autovacuum = off", "SELECT pg_reload_conf()"],
        )  # until the load is analysed and the first tiles timed: see wait_for_autoanalyze
        engine = create_engine(url)
        contenders = Contenders(bench=bench, source=source, warm_urls=_warm_paths(bounds))
        try:
            started = time.perf_counter()
            load_city(engine, city=city, visits=visits)
            load_seconds = time.perf_counter() - started
            log(f"loaded ({load_seconds:.1f} s)")
            contenders.password = create_bench_account(bench=bench, source=source)
            # A fresh server on freshly loaded data: the first GeoJSON layer
            # request, then the first tile (computes and stores the figures of
            # every micro-grid), then a few tiles before PostgreSQL has
            # statistics on the new layer_cache rows (as in the first minute
            # after any data change, until autovacuum analyses it).
            wangge = contenders.fresh_wangge(warm=False)
            started = time.perf_counter()
            grid_layer = fetch(
                wangge.base_url + WANGGE_LAYER_PATH, headers=contenders.wh(IDENTITY)
            ).content
            first_layer_seconds = time.perf_counter() - started
            started = time.perf_counter()
            fetch(wangge.base_url + wangge_tile_path(tiles[0]), headers=contenders.wh(GZIP))
            first_tile_seconds = time.perf_counter() - started
            log(
                f"first layer request {first_layer_seconds:.2f} s,"
                f" first tile {first_tile_seconds:.2f} s"
            )
            sample = [next(t for t in tiles[1:] if t[0] == z) for z in TILE_ZOOMS]
            add(
                "unanalysed c1",
                http_pass(
                    [wangge.base_url + wangge_tile_path(t) for t in sample],
                    concurrency=1,
                    probe=contenders.probe(wangge),
                    headers=contenders.wh(GZIP),
                ),
                expect=200,
            )
            log(f"before statistics: {passes['unanalysed c1'][-1].per_second:.2f} tiles/s")
            analyse_wait_seconds = wait_for_autoanalyze(bench)
            log(f"layer_cache analysed by autovacuum after {analyse_wait_seconds:.0f} s")
            with engine.connect() as connection:
                keys = (
                    connection.execute(
                        text("SELECT DISTINCT cache_key FROM layer_cache WHERE level = 'microgrid'")
                    )
                    .scalars()
                    .all()
                )
            if len(keys) != 1:
                raise RuntimeError(
                    f"expected one micro-grid figure set in layer_cache, found {len(keys)}"
                )
            key = str(keys[0])
            materialise_for_tipg(engine, grid_features=json.loads(grid_layer)["features"], key=key)
            tipg = contenders.start_tipg()
            tile_script, lookup_script = pgbench_scripts(
                engine, tiles=tiles, key=key, scratch=bench.scratch_dir
            )
            tile_check = check_tiles(
                wangge=wangge,
                wangge_headers=contenders.auth,
                tipg=tipg,
                engine=engine,
                tiles=tiles,
                key=key,
            )
            log(f"tile check: {tile_check}")

            def wangge_urls() -> list[str]:
                assert contenders.wangge is not None
                return [contenders.wangge.base_url + wangge_tile_path(t) for t in tiles]

            tipg_urls = {
                table: [tipg.base_url + tipg_tile_path(t, table=table) for t in tiles]
                for table in ("coverage_microgrid", "coverage_microgrid_4326")
            }
            # Warm-up (untimed): every tile once through every contender.
            for table_urls in tipg_urls.values():
                http_pass(table_urls, concurrency=1, probe=contenders.probe(tipg), headers=GZIP)
            http_pass(
                wangge_urls(),
                concurrency=1,
                probe=contenders.probe(wangge),
                headers=contenders.wh(GZIP),
            )
            run_pgbench(bench, script=tile_script, clients=1, transactions=len(tiles),
                        probe=contenders.probe(None))  # fmt: skip
            for index in range(repeat):
                for concurrency in (1, 2):
                    c = f"c{concurrency}"
                    wangge = contenders.fresh_wangge()
                    quiet_waits.append(wait_for_quiet())
                    uncached = add(
                        f"wangge {c}",
                        http_pass(
                            wangge_urls(),
                            concurrency=concurrency,
                            probe=contenders.probe(wangge),
                            headers=contenders.wh(GZIP),
                        ),
                        expect=200,
                    )
                    etags = uncached.etags
                    if concurrency == 1:
                        add(
                            "memory c1",
                            http_pass(
                                wangge_urls(),
                                concurrency=1,
                                laps=5,
                                probe=contenders.probe(wangge),
                                headers=contenders.wh(GZIP),
                            ),
                            expect=200,
                        )
                    add(
                        f"304 {c}",
                        http_pass(
                            wangge_urls(),
                            concurrency=concurrency,
                            laps=5,
                            probe=contenders.probe(wangge),
                            headers=contenders.wh(GZIP),
                            per_request_headers=if_none_match(etags),
                        ),
                        expect=304,
                    )
                    add(
                        f"tipg {c}",
                        http_pass(
                            tipg_urls["coverage_microgrid"],
                            concurrency=concurrency,
                            probe=contenders.probe(tipg),
                            headers=GZIP,
                        ),
                        expect=200,
                    )
                    if concurrency == 1:
                        add(
                            "tipg 4326 c1",
                            http_pass(
                                tipg_urls["coverage_microgrid_4326"],
                                concurrency=1,
                                probe=contenders.probe(tipg),
                                headers=GZIP,
                            ),
                            expect=200,
                        )
                    runs.setdefault(f"sql {c}", []).append(
                        run_pgbench(
                            bench,
                            script=tile_script,
                            clients=concurrency,
                            transactions=len(tiles),
                            probe=contenders.probe(None),
                        )
                    )
                    log(
                        f"round {index + 1}/{repeat} {c}: wangge {passes[f'wangge {c}'][-1].per_second:.1f}"
                        f" tiles/s, 304 {passes[f'304 {c}'][-1].per_second:.0f}/s,"
                        f" tipg {passes[f'tipg {c}'][-1].per_second:.1f} tiles/s,"
                        f" SQL {runs[f'sql {c}'][-1].tiles_per_second:.1f} tiles/s"
                    )
            for concurrency in (1, 2):
                runs[f"lookup c{concurrency}"] = [
                    run_pgbench(
                        bench,
                        script=lookup_script,
                        clients=concurrency,
                        transactions=len(tiles) * 5,
                        probe=contenders.probe(None),
                    )
                ]

            # The GeoJSON layer of the 7,000 grids.
            wangge = contenders.wangge or contenders.fresh_wangge()
            naive_bytes = naive_layer(engine)
            tipg_items = fetch(tipg.base_url + TIPG_ITEMS_PATH, headers=IDENTITY).content
            geojson_check = check_geojson(ours=grid_layer, theirs=tipg_items, naive=naive_bytes)
            log(f"GeoJSON check: {geojson_check}")
            for index in range(repeat):
                quiet_waits.append(wait_for_quiet())
                variants = [
                    ("wangge", wangge, WANGGE_LAYER_PATH, contenders.wh(IDENTITY)),
                    ("tipg", tipg, TIPG_ITEMS_PATH, IDENTITY),
                ]
                if index == 0:  # compressed: once each, for the record
                    variants += [
                        ("wangge gzip", wangge, WANGGE_LAYER_PATH, contenders.wh(GZIP)),
                        ("tipg gzip", tipg, TIPG_ITEMS_PATH, GZIP),
                    ]
                for name, server, path, headers in variants:
                    one = http_pass([server.base_url + path], concurrency=1,
                                    probe=contenders.probe(server), headers=headers)  # fmt: skip
                    if set(one.statuses) != {200}:
                        raise RuntimeError(f"GeoJSON {name}: {one.statuses}")
                    geojson.setdefault(name, []).append(one)
                started = time.perf_counter()
                naive_layer(engine)
                naive_seconds.append(time.perf_counter() - started)
                log(
                    f"GeoJSON round {index + 1}/{repeat}: wangge {geojson['wangge'][-1].seconds:.2f} s,"
                    f" tipg {geojson['tipg'][-1].seconds:.2f} s, naive {naive_seconds[-1]:.2f} s"
                )
            machine = machine_description(bench=bench, dbname=BENCH_DB)
        finally:
            contenders.stop()
            engine.dispose()
    machine["load average (1 min) before the run"] = f"{load_at_start:.2f}"
    versions["httpx"] = httpx.__version__
    city_counts = {level.name: len(level.codes) for level in city.levels}
    city_counts["households"] = city.households
    city_counts["located"] = int((city.household_grid >= 0).sum())
    city_counts["visits"] = len(visits.household_ids)
    city_counts["complete"] = visits.complete
    return Measurements(
        city=city_counts, tiles=tiles,
        tiles_per_zoom={z: sum(1 for t in tiles if t[0] == z) for z in TILE_ZOOMS},
        load_seconds=load_seconds, build_seconds=build_seconds, passes=passes, pgbench=runs,
        geojson=geojson, naive_seconds=naive_seconds, first_layer_seconds=first_layer_seconds,
        first_tile_seconds=first_tile_seconds, analyse_wait_seconds=analyse_wait_seconds,
        quiet_waits=quiet_waits,
        tile_check=tile_check, geojson_check=geojson_check,
        versions=versions, machine=machine, date_utc=utc_now_text(), repeat=repeat,
        households_arg=households,
    )  # fmt: skip


# -- the report ------------------------------------------------------------------------------
def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _rates(passes: Sequence[Pass]) -> list[float]:
    return [p.per_second for p in passes]


def _rate(passes: Sequence[Pass]) -> float:
    return _median(_rates(passes))


def _runs(values: Sequence[float], fmt: str = "{:.1f}") -> str:
    return ", ".join(fmt.format(v) for v in values)


def _verdict(*, passed: bool, detail: str) -> str:
    return f"{'PASS' if passed else 'FAIL'} ({detail})"


def _cpu_ms(passes: Sequence[Pass]) -> str:
    """Median CPU per request, ms: server / PostgreSQL / client / other processes."""
    parts = []
    for name in ("server", "db", "client", "other"):
        parts.append(_median([getattr(p.cpu, name) / p.requests * 1000 for p in passes]))
    return " / ".join(f"{v:.2f}" for v in parts)


def _pg_cpu_ms(runs: Sequence[PgbenchRun]) -> str:
    parts = []
    for name in ("db", "client", "other"):
        parts.append(_median([getattr(r.cpu, name) / r.transactions * 1000 for r in runs]))
    return f"– / {parts[0]:.2f} / {parts[1]:.2f} / {parts[2]:.2f}"


@dataclass(frozen=True)
class Figures:
    """The medians the budgets compare."""

    wangge: dict[int, float]  # tiles/s by concurrency
    tipg: dict[int, float]
    sql: dict[int, float]  # look-up subtracted
    sql_raw: dict[int, float]
    lookup: dict[int, float]
    not_modified: dict[int, float]
    memory: float
    tipg_4326: float
    layer_s: float
    items_s: float
    naive_s: float


def figures(m: Measurements) -> Figures:
    def net(c: int) -> float:
        per_tile = 1 / _median([r.tiles_per_second for r in m.pgbench[f"sql c{c}"]])
        per_lookup = 1 / m.pgbench[f"lookup c{c}"][0].tiles_per_second
        return 1 / max(per_tile - per_lookup, 1e-9)

    return Figures(
        wangge={c: _rate(m.passes[f"wangge c{c}"]) for c in (1, 2)},
        tipg={c: _rate(m.passes[f"tipg c{c}"]) for c in (1, 2)},
        sql={c: net(c) for c in (1, 2)},
        sql_raw={c: _median([r.tiles_per_second for r in m.pgbench[f"sql c{c}"]]) for c in (1, 2)},
        lookup={c: m.pgbench[f"lookup c{c}"][0].tiles_per_second for c in (1, 2)},
        not_modified={c: _rate(m.passes[f"304 c{c}"]) for c in (1, 2)},
        memory=_rate(m.passes["memory c1"]),
        tipg_4326=_rate(m.passes["tipg 4326 c1"]),
        layer_s=_median([p.seconds for p in m.geojson["wangge"]]),
        items_s=_median([p.seconds for p in m.geojson["tipg"]]),
        naive_s=_median(m.naive_seconds),
    )


def tile_rows(m: Measurements, f: Figures) -> list[list[str]]:
    p, g = m.passes, m.pgbench

    def both(d: dict[int, float], fmt: str = "{:.1f}") -> list[str]:
        return [fmt.format(d[1]), fmt.format(d[2])]

    def bytes_per(name: str) -> str:
        return f"{_median([x.wire_bytes / x.requests for x in p[name]]) / 1024:.1f} KiB"

    def runs_c1_c2(name: str) -> str:
        return f"c1: {_runs(_rates(p[name + ' c1']))}; c2: {_runs(_rates(p[name + ' c2']))}"

    return [
        ["**wangge** uncached: `GET /api/tiles/coverage/{z}/{x}/{y}.mvt?level=microgrid&as_of=…`, gzip", *[f"**{v}**" for v in both(f.wangge)], _cpu_ms(p["wangge c1"]), bytes_per("wangge c1"), runs_c1_c2("wangge")],
        ["**anchor: tipg** `/collections/bench.coverage_microgrid/tiles/WebMercatorQuad/{z}/{x}/{y}` (EPSG:3857 table), gzip", *[f"**{v}**" for v in both(f.tipg)], _cpu_ms(p["tipg c1"]), bytes_per("tipg c1"), runs_c1_c2("tipg")],
        ["tipg, the same figures with the EPSG:4326 geometry", f"{f.tipg_4326:.1f}", "–", _cpu_ms(p["tipg 4326 c1"]), bytes_per("tipg 4326 c1"), f"c1: {_runs(_rates(p['tipg 4326 c1']))}"],
        ["**anchor: raw `db.tiles.TILE_SQL`**, pgbench `-M prepared`, look-up subtracted", *[f"**{v}**" for v in both(f.sql)], _pg_cpu_ms(g["sql c1"]), "(not compressed)", "tps as measured — c1: " + _runs([r.tiles_per_second for r in g["sql c1"]]) + "; c2: " + _runs([r.tiles_per_second for r in g["sql c2"]])],
        ["— pgbench as measured (tile SQL + parameter look-up)", *both(f.sql_raw), "", "", ""],
        ["— the parameter look-up alone (subtracted above)", *both(f.lookup, "{:.0f}"), _pg_cpu_ms(g["lookup c1"]), "", "1 run each"],
        ["wangge uncached, right after the figures are stored (no statistics on `layer_cache` yet), 1 tile per zoom", f"{_rate(p['unanalysed c1']):.2f}", "–", _cpu_ms(p["unanalysed c1"]), bytes_per("unanalysed c1"), "1 run"],
        ["wangge, tile from its in-memory LRU (200, no `If-None-Match`)", f"{f.memory:.0f}", "–", _cpu_ms(p["memory c1"]), bytes_per("memory c1"), f"c1: {_runs(_rates(p['memory c1']), '{:.0f}')}"],
        ["**wangge cached**: `If-None-Match` → 304", *[f"**{v}**" for v in both(f.not_modified, "{:.0f}")], _cpu_ms(p["304 c1"]), "0", f"c1: {_runs(_rates(p['304 c1']), '{:.0f}')}; c2: {_runs(_rates(p['304 c2']), '{:.0f}')}"],
    ]  # fmt: skip


def budget_rows(f: Figures) -> list[list[str]]:
    ratio_tipg = {c: f.wangge[c] / f.tipg[c] for c in (1, 2)}
    ratio_sql = {c: f.sql[c] / f.wangge[c] for c in (1, 2)}  # wangge's time ÷ the SQL's time
    ratio_cached = {c: f.not_modified[c] / f.wangge[c] for c in (1, 2)}
    layer = f.layer_s / f.items_s
    return [
        ["**ratio** wangge ÷ tipg, tiles/s", f"**{ratio_tipg[1]:.2f}×**", f"{ratio_tipg[2]:.2f}×", f"vs tipg on EPSG:4326: {f.wangge[1] / f.tipg_4326:.2f}×"],
        ["budget: uncached ≥ 3× tipg's tiles/s", _verdict(passed=ratio_tipg[1] >= 3, detail=f"{f.wangge[1]:.1f} vs 3 × {f.tipg[1]:.1f}"), _verdict(passed=ratio_tipg[2] >= 3, detail=f"{f.wangge[2]:.1f} vs 3 × {f.tipg[2]:.1f}"), ""],
        ["**ratio** wangge's time per tile ÷ the SQL's", f"**{ratio_sql[1]:.2f}×**", f"{ratio_sql[2]:.2f}×", f"vs pgbench as measured: {f.sql_raw[1] / f.wangge[1]:.2f}× / {f.sql_raw[2] / f.wangge[2]:.2f}×"],
        ["budget: uncached ≤ 1.3× the SQL's time", _verdict(passed=ratio_sql[1] <= 1.3, detail=f"{1000 / f.wangge[1]:.2f} ms vs 1.3 × {1000 / f.sql[1]:.2f} ms"), _verdict(passed=ratio_sql[2] <= 1.3, detail=f"{1000 / f.wangge[2]:.2f} ms vs 1.3 × {1000 / f.sql[2]:.2f} ms"), "per tile, at the pass's throughput"],
        ["**ratio** cached (304) ÷ uncached, tiles/s", f"**{ratio_cached[1]:.1f}×**", f"{ratio_cached[2]:.1f}×", f"in-memory 200: {f.memory / f.wangge[1]:.1f}×"],
        ["budget: cached ≥ 50× own uncached", _verdict(passed=ratio_cached[1] >= 50, detail=f"{f.not_modified[1]:.0f} vs 50 × {f.wangge[1]:.1f}"), _verdict(passed=ratio_cached[2] >= 50, detail=f"{f.not_modified[2]:.0f} vs 50 × {f.wangge[2]:.1f}"), ""],
        ["**ratio** GeoJSON layer: wangge's time ÷ tipg's `/items`", f"**{layer:.2f}×**", "–", f"÷ naive ORM path: {f.layer_s / f.naive_s:.2f}×"],
        ["budget: GeoJSON layer ≤ 0.5× tipg's time", _verdict(passed=layer <= 0.5, detail=f"{f.layer_s:.2f} s vs 0.5 × {f.items_s:.2f} s"), "–", ""],
    ]  # fmt: skip


def geojson_rows(m: Measurements) -> list[list[str]]:
    g, c = m.geojson, m.geojson_check

    def row(label: str, passes: Sequence[Pass], size: str) -> list[str]:
        seconds = [p.seconds for p in passes]
        return [label, f"{_median(seconds):.2f} s", _cpu_ms(passes), size, _runs(seconds, "{:.2f}")]

    def wire(name: str) -> str:
        return f"{_median([p.wire_bytes for p in g[name]]) / 2**20:.1f} MiB"

    return [
        row(f"**wangge** `GET {WANGGE_LAYER_PATH}` (figures from the layer cache, computed once per data epoch: see the cold row)", g["wangge"], wire("wangge")),
        row(f"**anchor: tipg** `GET {TIPG_ITEMS_PATH}` (figures read from a table)", g["tipg"], wire("tipg")),
        ["**anchor: naive** ORM `Area` objects → `to_shape` → `mapping` → `json.dumps`, in process (figures read from the same table)", f"{_median(m.naive_seconds):.2f} s", "–", f"{c.naive_bytes / 2**20:.1f} MiB", _runs(m.naive_seconds, "{:.2f}")],
        row("wangge, `Accept-Encoding: gzip`", g["wangge gzip"], wire("wangge gzip")),
        row("tipg, `Accept-Encoding: gzip`", g["tipg gzip"], wire("tipg gzip")),
        ["wangge, the first request after the load (cold caches)", f"{m.first_layer_seconds:.2f} s", "", "", "1 run"],
    ]  # fmt: skip


def render_section(m: Measurements) -> str:
    f = figures(m)
    c, t, gc = m.city, m.tile_check, m.geojson_check
    command = "python -m bench.layers"
    if m.households_arg != DEFAULT_HOUSEHOLDS or m.repeat != 3:
        command += f" --households {m.households_arg} --repeat {m.repeat}"
    zooms = ", ".join(f"z{z}: {n}" for z, n in m.tiles_per_zoom.items())
    tiles = markdown_table(
        header=["tiles (same list for all)", "c=1 tiles/s", "c=2 tiles/s", "CPU ms per tile at c=1: server / PostgreSQL / client / other", "bytes per tile", "runs (tiles/s)"],
        rows=tile_rows(m, f),
    )  # fmt: skip
    layer = markdown_table(
        header=["GeoJSON layer, 7,000 grids, `Accept-Encoding: identity` unless said", "median", "CPU ms: server / PostgreSQL / client / other", "body", "runs (s)"],
        rows=geojson_rows(m),
    )  # fmt: skip
    budgets = markdown_table(header=["what", "c=1", "c=2", "note"], rows=budget_rows(f))
    return f"""\
The synthetic city of bench.assignment (seed 20200204): {c["microgrid"]:,} micro-grids
with wavy shared edges, grouped into {c["grid"]:,} grids (12 or 16 micro-grids each),
{c["community"]:,} communities, {c["township"]:,} townships and one county, all in `area`
with their EPSG:3857 copy (migration 0004); {c["households"]:,} households at clustered
building points ({c["located"]:,} inside a micro-grid, given the lowest covering code
here rather than by `db.assign`; no residents: the coverage layer counts households),
one screening round over the county and {c["visits"]:,} visits ({c["complete"]:,} complete), all on or
before the date asked ({AS_OF.isoformat()}). Generated in {m.build_seconds:.0f} s, loaded by COPY in {m.load_seconds:.0f} s (untimed).

Tiles: {len(m.tiles)} distinct tiles at zooms 12–16 drawn at random over the city ({zooms}),
the same list in the same order for every contender, micro-grid level, coverage layer.
Wangge runs as `uvicorn api.app:create_app --factory` (one worker), from a copy of its
packages taken when the run starts (every restart runs the same code); tipg {m.versions["tipg"]}
runs under the same uvicorn in its own venv (`var/bench-tipg-venv`, installed by this
benchmark), on the same database, as the same role, over the same unix socket. Both
are timed over HTTP/1.1 by the same client (httpx {m.versions["httpx"]}, keep-alive, one client per
thread, `Accept-Encoding: gzip`, bodies read raw). Wangge's requests carry the Bearer token
of a `wall_viewer` account of the county (token, account, rate-limit and scope checks on
every request; the per-account limit lifted for the run); tipg's carry none. "Uncached" is a freshly started
Wangge (empty tile memory) whose figures are already in `layer_cache` (computed once
per data epoch; the first tile after the load took {m.first_tile_seconds:.1f} s, figures
of all {c["microgrid"]:,} micro-grids included): each tile is cut by `TILE_SQL` and gzipped.
tipg reads tables materialised from Wangge's own output (`bench.coverage_microgrid`:
the `layer_cache` rows joined to `area.geom_3857`, GIST-indexed; `bench.coverage_grid`:
the GeoJSON layer's properties with the geometry snapped to Wangge's 6 decimals), so it
does no layer computation and no join — in its favour. tipg has no tile cache. The SQL
anchor is `db.tiles.TILE_SQL` itself in pgbench `-M prepared`, parameters from
`db.tiles.tile_parameters` taken per transaction from a table by a sequence (every
tile equally often); that look-up is timed alone and subtracted. Each round restarts
Wangge before its uncached pass; c=2 runs two client threads (pgbench `-c 2`).
{m.repeat} rounds; one untimed warm-up pass of every contender first. Autovacuum is off
for the load (which analyses its tables itself) and the first tiles, then on (naptime
5 s): the timed passes start once it has analysed `layer_cache` ({m.analyse_wait_seconds:.0f} s later).
CPU columns: the server process, PostgreSQL (all backends), this client process (with
pgbench), and every other process on the machine, per request, from /proc.

- reproduce: `{command}` (or `make bench`)
- date: {m.date_utc}
{machine_lines(machine=m.machine)}

{tiles}

{foreign_line(m)}

{layer}

{budgets}

Same content: in {t.tiles} sampled tiles (2 per zoom) Wangge's tiles hold {t.wangge_features:,}
features, tipg's {t.tipg_features:,} ({t.only_wangge:,} only in Wangge's, {t.only_tipg:,} only in tipg's: Wangge
keeps features within its 64-unit buffer, tipg those meeting the tile); {t.sql_equal} of {t.tiles}
Wangge tiles hold the same features as `TILE_SQL` run directly. GeoJSON: Wangge
{gc.wangge_features:,} features, tipg {gc.tipg_features:,}, naive {gc.naive_features:,}; properties differing
from Wangge's: {gc.property_mismatches:,}. Bodies: Wangge {gc.wangge_bytes / 2**20:.1f} MiB, tipg
{gc.tipg_bytes / 2**20:.1f} MiB, naive {gc.naive_bytes / 2**20:.1f} MiB (full-precision coordinates).

{reading(m, f)}
"""


def foreign_line(m: Measurements) -> str:
    """How busy other processes kept the 2 cores while the timed passes ran."""
    timed = [x for name, runs in m.passes.items() if name != "unanalysed c1" for x in runs]
    timed += [x for runs in m.geojson.values() for x in runs]
    cores = [x.cpu.other / x.seconds for x in timed]
    worst = max(m.passes.items(), key=lambda item: max(x.cpu.other / x.seconds for x in item[1]))
    return (
        f"Other processes on the machine (not this benchmark's client, servers or cluster) kept"
        f" {_median(cores):.2f} cores busy in the median timed pass, {max(cores):.2f} at most"
        f" (during `{worst[0]}`); the rounds interleave the contenders so that such load falls"
        " on all of them, and the ratios are taken within the run. Before each round the run"
        " waited (20 s at most) for a quiet second: "
        f"{sum(m.quiet_waits):.0f} s in all, {sum(w >= 20 for w in m.quiet_waits)} of"
        f" {len(m.quiet_waits)} waits in vain."
    )


def reading(m: Measurements, f: Figures) -> str:
    p = m.passes["wangge c1"]
    server_ms = _median([x.cpu.server / x.requests * 1000 for x in p])
    db_ms = _median([x.cpu.db / x.requests * 1000 for x in p])
    wall_ms = 1000 / f.wangge[1]
    sql_ms = 1000 / f.sql[1]
    nm = m.passes["304 c1"]
    nm_server = _median([x.cpu.server / x.requests * 1000 for x in nm])
    nm_db = _median([x.cpu.db / x.requests * 1000 for x in nm])
    nm_client = _median([x.cpu.client / x.requests * 1000 for x in nm])
    return f"""\
Reading: an uncached Wangge tile takes {wall_ms:.2f} ms at c=1 where `TILE_SQL` alone
takes {sql_ms:.2f} ms; per tile the server process spends {server_ms:.2f} ms of CPU (route,
token, account and scope checks, the data-epochs and cached-figures look-ups, gzip) and
PostgreSQL {db_ms:.2f} ms. A 304 costs {1000 / f.not_modified[1]:.2f} ms of wall time: {nm_server:.2f} ms of server CPU,
{nm_db:.2f} ms of PostgreSQL (the account and epochs queries) and {nm_client:.2f} ms in the client, on
2 cores shared by client, server and database."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--households", type=int, default=DEFAULT_HOUSEHOLDS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the section and write it to bench/RESULTS.md."""
    args = parse_args(argv)
    if args.repeat < 1 or args.households < 1:
        raise SystemExit("--repeat and --households must be at least 1")
    m = measure(households=args.households, repeat=args.repeat, seed=args.seed)
    body = render_section(m)
    write_section(title=SECTION_TITLE, body=body)
    print(f"## {SECTION_TITLE}\n\n{body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
