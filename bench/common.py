"""Shared helpers for the benchmarks: a throwaway PostGIS cluster, psql,
a description of the machine, and the writer of ``bench/RESULTS.md``.

Every benchmark measures its figure beside an anchor in the same run, on the
same cluster, so the ratio means something on any machine.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from psycopg import Connection as PgConnection
from sqlalchemy import Connection

from db.cluster import SUPERUSER, Cluster, find_pg_bindir

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "RESULTS.md"
RESULTS_HEADER = """\
# Benchmark results

Every figure below is measured beside its anchor **in the same run**, on the same
machine and the same throwaway PostgreSQL cluster; compare the ratios, not the
absolute seconds, across machines. Each section names the command that
reproduces it, the date and the machine. Regenerate all with `make bench`
(`python -m bench.run`); each benchmark replaces only its own section.
"""


@dataclass(frozen=True)
class BenchCluster:
    """A running throwaway cluster and a scratch directory beside it."""

    cluster: Cluster
    scratch_dir: Path

    def psql_argv(self, *, dbname: str) -> list[str]:
        """psql as the superuser on the cluster's socket, stopping at the first error."""
        c = self.cluster
        return [
            str(c.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", str(c.socket_dir), "-p", str(c.port), "-U", SUPERUSER, "-d", dbname,
        ]  # fmt: skip

    def psql(
        self,
        *,
        dbname: str,
        commands: Sequence[str],
        single_transaction: bool = False,
        tuples_only: bool = False,
    ) -> str:
        """Run ``commands`` (SQL or one backslash command each) with psql; return
        stdout (unaligned values only with ``tuples_only``)."""
        argv = self.psql_argv(dbname=dbname)
        if single_transaction:
            argv.append("--single-transaction")
        if tuples_only:
            argv.append("--tuples-only")
            argv.append("--no-align")
        for command in commands:
            argv.extend(["-c", command])
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def scalar(self, *, dbname: str, sql: str) -> str:
        """The single value that ``sql`` returns."""
        return self.psql(dbname=dbname, commands=[sql], tuples_only=True).strip()


@contextmanager
def throwaway_cluster() -> Iterator[BenchCluster]:
    """Start a fresh cluster in a temporary directory; stop it and remove
    everything on exit, also on error."""
    root = Path(tempfile.mkdtemp(prefix="wangge-bench-"))
    root.chmod(0o755)  # as root the server runs as 'postgres': it must reach its data dir
    cluster = Cluster(
        data_dir=root / "pg", port=random.randint(40000, 49999), bindir=find_pg_bindir()
    )
    scratch_dir = root / "scratch"
    scratch_dir.mkdir()
    try:
        cluster.start()
        yield BenchCluster(cluster=cluster, scratch_dir=scratch_dir)
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (first core)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def ram_gib() -> float:
    """Total RAM in GiB from /proc/meminfo."""
    text = Path("/proc/meminfo").read_text(encoding="utf-8")
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", text, flags=re.MULTILINE)
    return int(match.group(1)) / 1024**2 if match else float("nan")


def nproc() -> int:
    """Processors available to this process (what ``nproc`` prints)."""
    return len(os.sched_getaffinity(0))


def host_description() -> dict[str, str]:
    """nproc, CPU, RAM, kernel and Python version: what every benchmark reports."""
    return {
        "nproc": str(nproc()),
        "CPU": cpu_model(),
        "RAM": f"{ram_gib():.1f} GiB",
        "kernel": platform.release(),
        "Python": platform.python_version(),
    }


def machine_description(*, bench: BenchCluster, dbname: str) -> dict[str, str]:
    """The host, PostgreSQL and PostGIS (with GEOS) versions."""
    return {
        **host_description(),
        "PostgreSQL": bench.scalar(dbname=dbname, sql="SHOW server_version"),
        "PostGIS": bench.scalar(
            dbname=dbname,
            sql="SELECT postgis_lib_version() || ' (GEOS ' || postgis_geos_version() || ')'",
        ),
    }


def utc_now_text() -> str:
    """The date and time of the run, in UTC (as ``date -u`` would say)."""
    return dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def markdown_table(*, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def machine_lines(*, machine: dict[str, str]) -> str:
    """The machine description as one markdown bullet list."""
    return "\n".join(f"- {key}: {value}" for key, value in machine.items())


def split_sections(*, text: str) -> dict[str, str]:
    """The level-2 sections of RESULTS.md, title -> body (the header is dropped)."""
    sections: dict[str, str] = {}
    title: str | None = None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            title = line[3:].strip()
            sections[title] = ""
        elif title is not None:
            sections[title] += line
    return sections


def write_section(*, title: str, body: str, path: Path = RESULTS_PATH) -> None:
    """Add or replace section ``## title`` in RESULTS.md, keeping the others
    (in their order) and rewriting the header at the top."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    sections = split_sections(text=existing)
    sections[title] = "\n" + body.strip() + "\n\n"
    parts = [RESULTS_HEADER, "\n"]
    for name, content in sections.items():
        parts.append(f"## {name}\n{content.rstrip()}\n\n")
    path.write_text("".join(parts).rstrip() + "\n", encoding="utf-8")


# -- loading benchmark data with COPY (untimed) ------------------------------------------
def pg_connection(connection: Connection) -> PgConnection[Any]:
    """The psycopg connection under a SQLAlchemy one (for COPY)."""
    raw = connection.connection.driver_connection
    assert isinstance(raw, PgConnection)
    return raw


def copy_lines(connection: Connection, *, statement: str, lines: Iterator[str]) -> None:
    """COPY ... FROM STDIN (text format) from an iterator of newline-ended chunks."""
    with pg_connection(connection).cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in lines:
            copy.write(chunk)


def ewkb_hex(geoms: Any) -> list[str]:
    """COPY's text format takes PostGIS geometry as hex EWKB (SRID 4326 included)."""
    hexes: np.ndarray = np.asarray(
        shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    )
    return [str(h) for h in hexes.tolist()]
