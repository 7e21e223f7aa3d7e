"""Benchmark: the demo county load (``wangge demo``, issue 2: "at default size
it finishes in under 2 minutes here").

Measured beside its anchor in the same run, on the same throwaway cluster:

* wangge: ``db.demo.load_demo`` at the default size, the whole call (generate,
  COPY, PostGIS micro-grid assignment, VACUUM ANALYZE), with the generate/write split;
* anchor: ``psql \\copy ... FROM`` of exactly the same rows (exported from the
  wangge run with ``\\copy ... TO``) into a second freshly migrated database,
  in one transaction: the raw bulk-load floor, with nothing generated and no
  assignment step.

Run: ``python -m bench.demo_load [--households N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine

from bench.common import (
    BenchCluster,
    machine_description,
    machine_lines,
    markdown_table,
    throwaway_cluster,
    utc_now_text,
    write_section,
)
from db.demo import load_demo
from db.migrate import upgrade
from geo.demo import DEFAULT_HOUSEHOLDS, DEFAULT_SEED

SECTION_TITLE = "Demo county load (issue 2)"
COUNTY_CODE = "445321"
TABLES = ("area", "building", "household", "resident")  # in foreign-key order
WANGGE_DB = "bench"
ANCHOR_DB = "bench_copy"
BUDGET_SECONDS = 120.0


@dataclass(frozen=True)
class DemoRun:
    """One timed ``load_demo`` call."""

    total_seconds: float
    generate_seconds: float
    write_seconds: float
    households_assigned: int
    households_unassigned: int


@dataclass(frozen=True)
class Measurements:
    """Everything one benchmark run measured."""

    households: int
    demo_runs: list[DemoRun]
    copy_seconds: list[float]
    rows_by_table: dict[str, int]
    machine: dict[str, str]
    date_utc: str

    @property
    def rows_total(self) -> int:
        return sum(self.rows_by_table.values())


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"[demo_load] {message}", file=sys.stderr, flush=True)


def checkpoint(*, bench: BenchCluster, dbname: str) -> None:
    """Flush dirty pages so one run's writes do not land in the next run's time."""
    bench.psql(dbname=dbname, commands=["CHECKPOINT"])


def time_wangge_demo(*, bench: BenchCluster, engine: Engine, households: int, seed: int) -> DemoRun:
    """Wall time of one whole ``load_demo`` call (it replaces earlier data)."""
    checkpoint(bench=bench, dbname=WANGGE_DB)
    started = time.perf_counter()
    summary = load_demo(engine, county_code=COUNTY_CODE, households=households, seed=seed)
    total_seconds = time.perf_counter() - started
    load = summary["load"]
    return DemoRun(
        total_seconds=total_seconds,
        generate_seconds=float(load["generate_s"]),
        write_seconds=float(load["write_s"]),
        households_assigned=int(load["households_assigned"]),
        households_unassigned=int(load["households_unassigned"]),
    )


def count_rows(*, bench: BenchCluster, dbname: str) -> dict[str, int]:
    """Row count of each table."""
    return {
        table: int(bench.scalar(dbname=dbname, sql=f"SELECT count(*) FROM {table}"))
        for table in TABLES
    }


def export_tables(*, bench: BenchCluster, dbname: str) -> dict[str, Path]:
    """``\\copy <table> TO`` a CSV file per table (untimed); return the paths."""
    paths = {table: bench.scratch_dir / f"{table}.csv" for table in TABLES}
    commands = [f"\\copy {table} TO '{path}' WITH (FORMAT csv)" for table, path in paths.items()]
    bench.psql(dbname=dbname, commands=commands)
    return paths


def time_copy_anchor(*, bench: BenchCluster, csv_paths: dict[str, Path]) -> float:
    """Wall time of ``psql \\copy ... FROM`` of all four tables in one
    transaction, into emptied tables (truncate and checkpoint untimed)."""
    bench.psql(dbname=ANCHOR_DB, commands=[f"TRUNCATE {', '.join(reversed(TABLES))}"])
    checkpoint(bench=bench, dbname=ANCHOR_DB)
    commands = [
        f"\\copy {table} FROM '{path}' WITH (FORMAT csv)" for table, path in csv_paths.items()
    ]
    argv = [*bench.psql_argv(dbname=ANCHOR_DB), "--single-transaction"]
    for command in commands:
        argv.extend(["-c", command])
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def measure(*, households: int, repeat: int, seed: int) -> Measurements:
    """Start a throwaway cluster, time wangge and the anchor ``repeat`` times each."""
    with throwaway_cluster() as bench:
        url = bench.cluster.ensure_database(WANGGE_DB)
        upgrade(url)
        engine = create_engine(url)
        try:
            demo_runs = []
            for index in range(repeat):
                run = time_wangge_demo(bench=bench, engine=engine, households=households, seed=seed)
                log(f"wangge demo run {index + 1}/{repeat}: {run.total_seconds:.2f} s")
                demo_runs.append(run)
        finally:
            engine.dispose()
        rows_by_table = count_rows(bench=bench, dbname=WANGGE_DB)
        csv_paths = export_tables(bench=bench, dbname=WANGGE_DB)
        upgrade(bench.cluster.ensure_database(ANCHOR_DB))
        copy_seconds = []
        for index in range(repeat):
            seconds = time_copy_anchor(bench=bench, csv_paths=csv_paths)
            log(f"psql \\copy run {index + 1}/{repeat}: {seconds:.2f} s")
            copy_seconds.append(seconds)
        anchor_rows = count_rows(bench=bench, dbname=ANCHOR_DB)
        if anchor_rows != rows_by_table:
            raise RuntimeError(f"anchor loaded {anchor_rows}, wangge {rows_by_table}")
        machine = machine_description(bench=bench, dbname=WANGGE_DB)
    return Measurements(
        households=households,
        demo_runs=demo_runs,
        copy_seconds=copy_seconds,
        rows_by_table=rows_by_table,
        machine=machine,
        date_utc=utc_now_text(),
    )


def seconds_cell(*, values: list[float]) -> tuple[str, str]:
    """(median, every run) formatted in seconds."""
    runs = ", ".join(f"{v:.2f}" for v in values)
    return f"{statistics.median(values):.2f} s", runs


def budget_verdict(*, m: Measurements, total_seconds: float) -> str:
    """PASS/FAIL against "< 120 s at default size" (informational only)."""
    if m.households != DEFAULT_HOUSEHOLDS:
        return f"n/a (budget is for {DEFAULT_HOUSEHOLDS:,} households)"
    verdict = "PASS" if total_seconds < BUDGET_SECONDS else "FAIL"
    return f"{verdict} ({total_seconds:.1f} s < {BUDGET_SECONDS:.0f} s)"


def result_rows(*, m: Measurements) -> list[list[str]]:
    """The rows of the results table."""
    total = [r.total_seconds for r in m.demo_runs]
    write = [r.write_seconds for r in m.demo_runs]
    total_seconds = statistics.median(total)
    write_seconds = statistics.median(write)
    copy_seconds = statistics.median(m.copy_seconds)
    wangge_rows_per_s = m.rows_total / total_seconds
    write_rows_per_s = m.rows_total / write_seconds
    copy_rows_per_s = m.rows_total / copy_seconds
    return [
        ["wangge demo, whole call", *seconds_cell(values=total)],
        ["— generate (`generate_s`)", *seconds_cell(values=[r.generate_seconds for r in m.demo_runs])],
        ["— write: COPY + assignment (`write_s`)", *seconds_cell(values=write)],
        ["— rest: VACUUM ANALYZE, connect", *seconds_cell(values=[r.total_seconds - r.generate_seconds - r.write_seconds for r in m.demo_runs])],
        ["anchor: `psql \\copy … FROM`, same rows", *seconds_cell(values=m.copy_seconds)],
        ["rows loaded (area+building+household+resident)", f"{m.rows_total:,}", _rows_detail(m=m)],
        ["wangge rows/s (whole call)", f"{wangge_rows_per_s:,.0f}", ""],
        ["wangge rows/s (write only)", f"{write_rows_per_s:,.0f}", ""],
        ["`\\copy` rows/s", f"{copy_rows_per_s:,.0f}", ""],
        ["**ratio** wangge rows/s ÷ `\\copy` rows/s", f"**{wangge_rows_per_s / copy_rows_per_s:.3f}**", f"write only: {write_rows_per_s / copy_rows_per_s:.3f}"],
        *first_run_rows(m=m, copy_rows_per_s=copy_rows_per_s),
        ["budget: < 120 s at default size", budget_verdict(m=m, total_seconds=total_seconds), "informational"],
    ]  # fmt: skip


def first_run_rows(*, m: Measurements, copy_rows_per_s: float) -> list[list[str]]:
    """Run 1 alone: empty tables, as on a fresh ``make demo``; later runs
    replace data and pay for the dead rows the earlier ones left."""
    first = m.demo_runs[0]
    ratio = m.rows_total / first.total_seconds / copy_rows_per_s
    write_ratio = m.rows_total / first.write_seconds / copy_rows_per_s
    return [
        ["wangge demo, run 1 only (empty tables)", f"{first.total_seconds:.2f} s", f"write {first.write_seconds:.2f} s"],
        ["ratio, run 1 only", f"{ratio:.3f}", f"write only: {write_ratio:.3f}"],
    ]  # fmt: skip


def _rows_detail(*, m: Measurements) -> str:
    return ", ".join(f"{table} {count:,}" for table, count in m.rows_by_table.items())


def render_section(*, m: Measurements, repeat: int) -> str:
    """The markdown body of this benchmark's section in RESULTS.md."""
    last = m.demo_runs[-1]
    command = "python -m bench.demo_load"
    if m.households != DEFAULT_HOUSEHOLDS or repeat != 3:
        command += f" --households {m.households} --repeat {repeat}"
    table = markdown_table(header=["what", "median", "runs"], rows=result_rows(m=m))
    return f"""\
`wangge demo` (`db.demo.load_demo`, county 445321, {m.households:,} households,
seed {DEFAULT_SEED}) beside its anchor: `psql \\copy … FROM` of exactly the same rows
(exported with `\\copy … TO` CSV) into a second freshly migrated database of the
same cluster, all four tables in one transaction — the raw bulk-load floor, with
nothing generated and no PostGIS assignment. {repeat} runs each; each wangge run
replaces the previous data (as a re-run of `wangge demo` does), each anchor run
starts from truncated tables; a CHECKPOINT precedes every timed run (untimed).
A re-run first DELETEs the previous demo (the load vacuums afterwards), so
re-runs pay for the delete and for index entries of dead rows; run 1 (empty
tables, as on a fresh `make demo`) is therefore also shown alone.

- reproduce: `{command}` (or `make bench`)
- date: {m.date_utc}
{machine_lines(machine=m.machine)}
- households assigned to a micro-grid: {last.households_assigned:,}, unassigned: {last.households_unassigned:,}

{table}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    body = render_section(m=m, repeat=args.repeat)
    write_section(title=SECTION_TITLE, body=body)
    print(f"## {SECTION_TITLE}\n\n{body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
