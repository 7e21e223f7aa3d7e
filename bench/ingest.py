"""Benchmark: registry ingest of 1 M demo-shaped resident rows (issue 3,
benchmark a; DESIGN.md budget: ≥ 0.6× ``psql \\copy``'s rows/s).

Measured beside its anchor in the same run, on the same throwaway cluster:

* wangge: ``db.registry.import_residents`` end to end (file read → committed),
  mode all-or-nothing, of a register written by ``geo.registry_export`` from
  the demo county (standard addresses, CSV UTF-8), into a database that holds
  the county's areas and address registry and no household or resident;
* anchor: ``psql \\copy resident(<columns>) FROM`` a CSV holding exactly the
  rows the import wrote into ``resident`` (dumped with ``\\copy (SELECT …) TO``),
  into the same table with the same indexes and constraints (the households
  the import created stay, so the foreign key is checked as in the import).

Every timed run starts from truncated tables, VACUUM ANALYZE and a CHECKPOINT
(untimed); each import starts with cold caches (the address index and the
standard addresses are built again), as ``wangge import residents`` does in a
fresh process. Also measured, to say what bounds the ratio: the server's time
for the other rows the import must write (the households, and one
``resident_history`` row per new resident), each inserted again in a
transaction rolled back. A smaller ``.xlsx`` register is imported once: XLSX
reading is openpyxl-bound, which is why the 1 M figure is for CSV.

Run: ``python -m bench.ingest [--rows 1000000] [--repeat 3] [--xlsx-rows 100000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

import db.geocoder
import db.registry
from bench.common import (
    BenchCluster,
    machine_description,
    machine_lines,
    markdown_table,
    throwaway_cluster,
    utc_now_text,
    write_section,
)
from db.demo import build_demo, load_demo
from db.engine import session_scope
from db.migrate import upgrade
from db.registry import ResidentImportRequest, import_residents
from geo.demo import DEFAULT_SEED, DemoCounty
from geo.demo_state import DemoState, generate_state
from geo.registry_export import RegistryFormat, write_registry_file

SECTION_TITLE = "Registry ingest, 1 M rows (issue 3)"
COUNTY_CODE = "445321"
DBNAME = "bench"
BUDGET_RATIO = 0.6
DEFAULT_ROWS = 1_000_000
DEFAULT_XLSX_ROWS = 100_000
# The demo averages 2.8 residents per household (209,998 for 75,000): households
# to generate for a register of N rows, with a little to spare.
HOUSEHOLDS_PER_RESIDENT = 0.36
# The columns an import writes into ``resident`` (id, updated_at: defaults).
RESIDENT_COLUMNS = (
    "county_code", "household_id", "name", "id_number", "phone", "sex", "birth_date",
    "category", "tags", "hukou", "health_code", "source",
)  # fmt: skip
# The columns an import writes into ``household`` (id: default).
HOUSEHOLD_COLUMNS = (
    "county_code", "building_id", "unit", "room", "address", "geom", "geocode_level",
    "geocode_status", "geocode_score", "area_code", "address_key", "microgrid_code",
)  # fmt: skip
# Everything an import creates; areas and buildings (the address registry) stay.
RESET_TABLES = "household, resident, import_batch"
# The phases ``import_residents`` reports through ``timings``, in order.
PHASES = (
    ("read", "read the file (`geo.tabular.read_table`)"),
    ("check", "check every row (`geo.registry.check_columns`)"),
    ("geocode", "geocode each distinct address (index built cold)"),
    ("households_stage", "households: known ones looked up, COPY to a stage"),
    ("households", "households: INSERT, review queue"),
    ("residents_stage", "residents: known ones looked up, COPY to a stage"),
    ("residents", "residents: INSERT with their `resident_history` rows"),
    ("updates", "residents already known: upsert, history"),
    ("quarantines", "quarantines"),
    ("assign", "micro-grid assignment (`db.assign`), households not at a building"),
    ("batch", "`import_batch` row (file digest, report)"),
)
TODAY = dt.date(2020, 2, 6)  # the demo's reference date (geo.demo.REFERENCE_DATE)


@dataclass(frozen=True)
class ImportRun:
    """One timed ``import_residents`` call and the commit after it."""

    total_seconds: float
    phases: dict[str, float]
    commit_seconds: float
    created: int
    households_created: int
    quarantines_created: int
    review_queued: int
    geocoding: dict[str, int]


@dataclass
class Measurements:
    """Everything one benchmark run measured."""

    rows: int
    households: int
    file_bytes: int
    import_runs: list[ImportRun] = field(default_factory=list)
    copy_seconds: list[float] = field(default_factory=list)
    history_seconds: list[float] = field(default_factory=list)
    household_seconds: list[float] = field(default_factory=list)
    xlsx_rows: int = 0
    xlsx_run: ImportRun | None = None
    machine: dict[str, str] = field(default_factory=dict)
    date_utc: str = ""


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[ingest] {message}", file=sys.stderr, flush=True)


def settle(*, bench: BenchCluster) -> None:
    """VACUUM ANALYZE and CHECKPOINT, so one run's leftovers do not land in the next's time."""
    bench.psql(dbname=DBNAME, commands=["VACUUM ANALYZE", "CHECKPOINT"])


def reset(*, bench: BenchCluster) -> None:
    """Drop what an import created (households, residents and all that hangs on
    them), keeping the address registry (untimed)."""
    bench.psql(dbname=DBNAME, commands=[f"TRUNCATE {RESET_TABLES} RESTART IDENTITY CASCADE"])
    settle(bench=bench)


def households_for(rows: int) -> int:
    """Demo households to generate for a register of ``rows`` residents."""
    return max(1, math.ceil(rows * HOUSEHOLDS_PER_RESIDENT))


def write_register(
    *, demo: DemoCounty, state: DemoState, path: Path, rows: int, fmt: RegistryFormat
) -> int:
    """The demo county's register, its first ``rows`` residents, as ``fmt``."""
    if len(demo.residents) < rows:
        raise RuntimeError(f"the demo has {len(demo.residents):,} residents, fewer than {rows:,}")
    return write_registry_file(demo, path, fmt=fmt, state=state, rows=slice(0, rows))


def forget_caches() -> None:
    """Drop the per-process caches of the address index and the standard
    addresses: every import starts cold, as in a fresh ``wangge`` process."""
    db.geocoder._INDEXES.clear()
    db.registry._StandardAddresses._cache.clear()


def time_import(*, engine: Engine, path: Path) -> ImportRun:
    """Wall time of one ``import_residents`` (all-or-nothing) up to its commit."""
    request = ResidentImportRequest.build(mode="all-or-nothing", today=TODAY)
    timings: dict[str, float] = {}
    forget_caches()
    started = time.perf_counter()
    with session_scope(engine) as session:
        report, _ = import_residents(session, path=path, request=request, timings=timings)
        returned = time.perf_counter()
    done = time.perf_counter()
    if report.rejected:
        raise RuntimeError(f"the register had rejected rows: {report.rejected[:3]}")
    return ImportRun(
        total_seconds=done - started,
        phases=timings,
        commit_seconds=done - returned,
        created=report.created,
        households_created=report.households_created,
        quarantines_created=report.quarantines_created,
        review_queued=report.review_queued,
        geocoding=dict(report.geocoding),
    )


def time_rolled_back(*, bench: BenchCluster, engine: Engine, setup: list[str], timed: str) -> float:
    """Server time of ``timed`` after ``setup`` in one transaction, rolled back."""
    settle(bench=bench)
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(text("SET LOCAL jit = off"))
            for statement in setup:
                connection.execute(text(statement))
            started = time.perf_counter()
            connection.execute(text(timed))
            return time.perf_counter() - started
        finally:
            transaction.rollback()


def time_history_rows(*, bench: BenchCluster, engine: Engine) -> float:
    """The server's time for one "created" ``resident_history`` row per resident
    (what the import writes beside each new resident), into the emptied table."""
    return time_rolled_back(
        bench=bench,
        engine=engine,
        setup=["TRUNCATE resident_history"],
        timed="INSERT INTO resident_history (resident_id, source, changes)"
        " SELECT id, source, '{\"created\": true}'::jsonb FROM resident ORDER BY id",
    )


def time_household_rows(*, bench: BenchCluster, engine: Engine) -> float:
    """The server's time for the households the import created, inserted again
    into the emptied table."""
    columns = ", ".join(HOUSEHOLD_COLUMNS)
    return time_rolled_back(
        bench=bench,
        engine=engine,
        setup=[
            "CREATE TEMP TABLE household_copy ON COMMIT DROP AS"
            f" SELECT {columns} FROM household ORDER BY id",
            "TRUNCATE household CASCADE",
        ],
        timed=f"INSERT INTO household ({columns}) SELECT {columns} FROM household_copy",
    )


def dump_residents(*, bench: BenchCluster) -> Path:
    """``\\copy (SELECT <columns> FROM resident) TO`` a CSV file (untimed)."""
    path = bench.scratch_dir / "resident.csv"
    columns = ", ".join(RESIDENT_COLUMNS)
    bench.psql(
        dbname=DBNAME,
        commands=[
            f"\\copy (SELECT {columns} FROM resident ORDER BY id) TO '{path}' WITH (FORMAT csv)"
        ],
    )
    return path


def time_copy_anchor(*, bench: BenchCluster, csv_path: Path) -> float:
    """Wall time of ``psql \\copy resident(<columns>) FROM`` into the emptied
    table (truncate, vacuum and checkpoint untimed); households stay."""
    bench.psql(dbname=DBNAME, commands=["TRUNCATE resident CASCADE"])
    settle(bench=bench)
    command = f"\\copy resident({', '.join(RESIDENT_COLUMNS)}) FROM '{csv_path}' WITH (FORMAT csv)"
    argv = [*bench.psql_argv(dbname=DBNAME), "-c", command]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def count(*, bench: BenchCluster, table: str) -> int:
    return int(bench.scalar(dbname=DBNAME, sql=f"SELECT count(*) FROM {table}"))


def measure(*, rows: int, repeat: int, seed: int, xlsx_rows: int) -> Measurements:
    """Start a throwaway cluster, time wangge and the anchor ``repeat`` times each."""
    with throwaway_cluster() as bench:
        url = bench.cluster.ensure_database(DBNAME)
        upgrade(url)
        engine = create_engine(url)
        try:
            households = households_for(rows)
            log(f"loading the demo county ({households:,} households) for its address registry")
            load_demo(engine, county_code=COUNTY_CODE, households=households, seed=seed)
            demo = build_demo(county_code=COUNTY_CODE, households=households, seed=seed)
            state = generate_state(demo)
            csv_path = bench.scratch_dir / "人员登记表.csv"
            log(f"writing the {rows:,}-row register")
            write_register(demo=demo, state=state, path=csv_path, rows=rows, fmt="csv-utf8")
            m = Measurements(rows=rows, households=households, file_bytes=csv_path.stat().st_size)
            for index in range(repeat):
                reset(bench=bench)
                run = time_import(engine=engine, path=csv_path)
                if run.created != rows:
                    raise RuntimeError(f"import created {run.created:,} residents, not {rows:,}")
                phases = ", ".join(f"{k} {v:.1f}" for k, v in run.phases.items())
                log(f"wangge import {index + 1}/{repeat}: {run.total_seconds:.2f} s ({phases})")
                m.import_runs.append(run)
            for index in range(repeat):
                m.history_seconds.append(time_history_rows(bench=bench, engine=engine))
                m.household_seconds.append(time_household_rows(bench=bench, engine=engine))
                log(
                    f"server alone {index + 1}/{repeat}: history rows {m.history_seconds[-1]:.2f} s,"
                    f" households {m.household_seconds[-1]:.2f} s"
                )
            resident_csv = dump_residents(bench=bench)
            for index in range(repeat):
                seconds = time_copy_anchor(bench=bench, csv_path=resident_csv)
                log(f"psql \\copy {index + 1}/{repeat}: {seconds:.2f} s")
                m.copy_seconds.append(seconds)
            if count(bench=bench, table="resident") != rows:
                raise RuntimeError("the anchor did not load every row")
            if xlsx_rows > 0:
                xlsx_path = bench.scratch_dir / "人员登记表.xlsx"
                log(f"writing and importing a {xlsx_rows:,}-row .xlsx register")
                write_register(demo=demo, state=state, path=xlsx_path, rows=xlsx_rows, fmt="xlsx")
                reset(bench=bench)
                m.xlsx_rows = xlsx_rows
                m.xlsx_run = time_import(engine=engine, path=xlsx_path)
            m.machine = machine_description(bench=bench, dbname=DBNAME)
        finally:
            engine.dispose()
    m.date_utc = utc_now_text()
    return m


# --- the section -----------------------------------------------------------------------


def seconds_cell(values: list[float]) -> tuple[str, str]:
    """(median, every run) formatted in seconds."""
    return f"{statistics.median(values):.2f} s", ", ".join(f"{v:.2f}" for v in values)


def verdict(*, ratio: float, rows: int) -> str:
    """PASS/FAIL against "≥ 0.6× \\copy's rows/s" (informational only)."""
    if rows != DEFAULT_ROWS:
        return f"n/a at {rows:,} rows (budget is for {DEFAULT_ROWS:,}); ratio {ratio:.2f}"
    if ratio >= BUDGET_RATIO:
        return f"PASS ({ratio:.2f}× ≥ {BUDGET_RATIO}×)"
    return f"FAIL ({ratio:.2f}× < {BUDGET_RATIO}×: {BUDGET_RATIO / ratio:.1f}× short)"


def result_rows(*, m: Measurements) -> list[list[str]]:
    """The headline table: both rates, the ratio, the verdict, and the bound."""
    totals = [r.total_seconds for r in m.import_runs]
    copy_seconds = statistics.median(m.copy_seconds)
    wangge_rate = m.rows / statistics.median(totals)
    copy_rate = m.rows / copy_seconds
    ratio = wangge_rate / copy_rate
    floor = copy_seconds + statistics.median(m.history_seconds)
    floor += statistics.median(m.household_seconds)
    return [
        ["wangge `import_residents`, file → committed", *seconds_cell(totals)],
        ["anchor: `psql \\copy resident(…) FROM`, same rows", *seconds_cell(m.copy_seconds)],
        ["wangge rows/s", f"{wangge_rate:,.0f}", ""],
        ["`\\copy` rows/s", f"{copy_rate:,.0f}", ""],
        ["**ratio** wangge ÷ `\\copy`", f"**{ratio:.3f}**", ""],
        ["budget: ≥ 0.6× `\\copy`'s rows/s", verdict(ratio=ratio, rows=m.rows), "informational"],
        ["server alone: one `resident_history` row per resident", *seconds_cell(m.history_seconds)],
        ["server alone: the import's households", *seconds_cell(m.household_seconds)],
        [
            "floor: `\\copy` + history rows + households",
            f"{floor:.2f} s",
            f"best ratio with no client time: {copy_seconds / floor:.2f}",
        ],
    ]


def breakdown_rows(*, m: Measurements) -> list[list[str]]:
    """Where the import spends its time: the median of each phase."""
    total = statistics.median(r.total_seconds for r in m.import_runs)
    out = []
    for key, label in PHASES:
        values = [r.phases.get(key, 0.0) for r in m.import_runs]
        median = statistics.median(values)
        runs = ", ".join(f"{v:.2f}" for v in values)
        out.append([label, f"{median:.2f} s", f"{median / total:.0%}", runs])
    commits = [r.commit_seconds for r in m.import_runs]
    median = statistics.median(commits)
    runs = ", ".join(f"{v:.2f}" for v in commits)
    out.append(["commit", f"{median:.2f} s", f"{median / total:.0%}", runs])
    return out


def xlsx_lines(*, m: Measurements) -> str:
    """One paragraph on the smaller XLSX register."""
    run = m.xlsx_run
    if run is None:
        return ""
    read = run.phases.get("read", 0.0)
    csv_read = statistics.median(r.phases.get("read", 0.0) for r in m.import_runs)
    return (
        f"XLSX, {m.xlsx_rows:,} rows (the same register's first rows, one run):"
        f" {run.total_seconds:.2f} s file → committed, {m.xlsx_rows / run.total_seconds:,.0f}"
        f" rows/s; reading the workbook alone (openpyxl, read-only mode) {read:.2f} s ="
        f" {m.xlsx_rows / read:,.0f} rows/s, against {m.rows / csv_read:,.0f} rows/s for"
        " reading the CSV above."
    )


def render_section(*, m: Measurements, repeat: int) -> str:
    """The markdown body of this benchmark's section in RESULTS.md."""
    last = m.import_runs[-1]
    command = "python -m bench.ingest"
    if m.rows != DEFAULT_ROWS or repeat != 3 or m.xlsx_rows != DEFAULT_XLSX_ROWS:
        command += f" --rows {m.rows} --repeat {repeat} --xlsx-rows {m.xlsx_rows}"
    headline = markdown_table(header=["what", "median", "runs"], rows=result_rows(m=m))
    breakdown = markdown_table(
        header=["wangge phase", "median", "share", "runs"], rows=breakdown_rows(m=m)
    )
    located = ", ".join(f"{k} {v:,}" for k, v in sorted(last.geocoding.items()))
    return f"""\
`db.registry.import_residents` (mode all-or-nothing) of a {m.rows:,}-row register
of the demo county (445321, seed {DEFAULT_SEED}, {m.households:,} households
generated; written by `geo.registry_export.write_registry_file` as CSV UTF-8,
{m.file_bytes / 1e6:,.0f} MB, standard addresses as a registry export has them),
end to end: file read, every row checked, each distinct address geocoded,
households and residents written, history, quarantines, micro-grid assignment,
the `import_batch` row, commit. The database holds the county's areas and
address registry (`load_demo`, then `TRUNCATE household, resident … CASCADE`).
Anchor in the same run: `psql \\copy resident({", ".join(RESIDENT_COLUMNS)}) FROM`
a CSV of exactly the rows the import wrote into `resident` (dumped with
`\\copy (SELECT …) TO`), into the same table with the same indexes, constraints
and foreign key (the import's households stay). {repeat} run(s) each, medians;
before every timed run the tables are truncated, vacuumed and CHECKPOINTed
(untimed), and every import starts with cold caches (address index and standard
addresses built again, as in a fresh `wangge` process). CSV, not XLSX, for the
1 M figure: reading `.xlsx` is openpyxl-bound (see the XLSX line below).

- reproduce: `{command}` (or `make bench`)
- date: {m.date_utc}
{machine_lines(machine=m.machine)}
- the import created {last.created:,} residents (and as many history rows),
  {last.households_created:,} households, {last.quarantines_created:,} quarantines,
  {last.review_queued:,} review items; located (rows): {located}

{headline}

What bounds the ratio: the import must also write, besides the residents the
anchor writes, one `resident_history` row per new resident (its foreign key
check locks the resident row: most of that row's cost) and the households
(GiST and six B-tree indexes, a foreign key to `building`). The "server alone"
rows time just those inserts, in transactions rolled back; with the anchor they
make a floor that no client-side speed can go below.

Where wangge spends its time (phases as `import_residents(…, timings=…)` reports
them; "stage" phases include formatting the rows for COPY in Python, and the
residents' rows are formatted in a thread while the households are inserted):

{breakdown}

{xlsx_lines(m=m)}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--xlsx-rows", type=int, default=DEFAULT_XLSX_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--no-write", action="store_true", help="print the section, leave RESULTS.md alone"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the section and write it to bench/RESULTS.md."""
    args = parse_args(argv)
    if args.repeat < 1 or args.rows < 1 or args.xlsx_rows < 0:
        raise SystemExit("--repeat and --rows must be at least 1, --xlsx-rows at least 0")
    m = measure(rows=args.rows, repeat=args.repeat, seed=args.seed, xlsx_rows=args.xlsx_rows)
    body = render_section(m=m, repeat=args.repeat)
    if not args.no_write:
        write_section(title=SECTION_TITLE, body=body)
    print(f"## {SECTION_TITLE}\n\n{body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
