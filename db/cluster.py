"""The embedded PostgreSQL + PostGIS cluster that Wangge runs when no
``DATABASE_URL`` is given.

The cluster lives in one data directory, listens only on a unix socket inside
that directory, and holds one database ``wangge`` owned by a login role
``wangge`` with PostGIS installed. PostgreSQL refuses to run as root, so when
Wangge runs as root every server command runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from geo.errors import Unavailable

DB_NAME = "wangge"
APP_ROLE = "wangge"
REQUEST_ROLE = "wangge_app"  # what HTTP requests and commands work as: no rewriting the audit trail
SUPERUSER = "postgres"
DEBIAN_HINT = "on Debian: apt-get install postgresql-15 postgresql-15-postgis-3"


class ClusterState(StrEnum):
    MISSING = "missing"  # no cluster initialised in the data directory
    STOPPED = "stopped"
    RUNNING = "running"


def find_pg_bindir(*, configured: Path | None = None) -> Path:
    """Directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Order: the configured directory, the newest ``/usr/lib/postgresql/N/bin``
    (Debian's layout), then ``pg_ctl`` on ``PATH``. Raises ``Unavailable``
    naming what is missing.
    """
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
        )
        candidates.extend(p / "bin" for p in reversed(versions))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise Unavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found"
        f" (looked in {', '.join(map(str, candidates)) or 'PATH'}); {DEBIAN_HINT},"
        " or set WANGGE_PG_BINDIR, or point DATABASE_URL at a PostgreSQL server with PostGIS"
    )


def postgis_available(*, bindir: Path) -> bool:
    """True when the PostGIS extension files are installed for this server."""
    major = bindir.parent.name
    candidates = [
        Path(f"/usr/share/postgresql/{major}/extension/postgis.control"),
        bindir.parent / "share" / "extension" / "postgis.control",
        bindir.parent.parent / "share" / "postgresql" / "extension" / "postgis.control",
    ]
    return any(path.exists() for path in candidates)


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster in ``data_dir`` that listens on ``port`` (socket only)."""

    data_dir: Path
    port: int
    bindir: Path

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.resolve()

    def url(self, *, user: str = APP_ROLE, dbname: str = DB_NAME) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of the cluster's database."""
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql+psycopg://{user}@/{dbname}?host={host}&port={self.port}"

    # -- state ---------------------------------------------------------------
    def state(self) -> ClusterState:
        if not (self.data_dir / "PG_VERSION").exists():
            return ClusterState.MISSING
        result = self._run(
            [self.bindir / "pg_ctl", "status", "-D", str(self.data_dir)], check=False
        )
        return ClusterState.RUNNING if result.returncode == 0 else ClusterState.STOPPED

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        """Create the cluster the first time, start it, and make sure the
        ``wangge`` database with PostGIS exists. Idempotent."""
        if not postgis_available(bindir=self.bindir):
            raise Unavailable(f"PostGIS is not installed for {self.bindir.parent}; {DEBIAN_HINT}")
        state = self.state()
        if state is ClusterState.MISSING:
            self._initdb()
        if state is not ClusterState.RUNNING:
            self._pg_ctl_start()
        self.ensure_database()

    def stop(self) -> None:
        """Stop the server (fast shutdown: committed data is kept)."""
        if self.state() is ClusterState.RUNNING:
            self._run(
                [self.bindir / "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w"]
            )

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown_for_server(self.data_dir)
        self._run(
            [
                self.bindir / "initdb",
                "-D", str(self.data_dir),
                "--username", SUPERUSER,
                "--auth-local", "trust",
                "--auth-host", "scram-sha-256",
                "--encoding", "UTF8",
                "--locale", "C.UTF-8",
            ]
        )  # fmt: skip
        settings = {
            "listen_addresses": "''",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "shared_buffers": "'512MB'",
            "work_mem": "'64MB'",
            "maintenance_work_mem": "'512MB'",
            "max_wal_size": "'4GB'",
            "synchronous_commit": "off",
            "logging_collector": "off",
        }
        conf = "\n".join(f"{key} = {value}" for key, value in settings.items())
        auto_conf = self.data_dir / "postgresql.auto.conf"
        with auto_conf.open("a", encoding="utf-8") as handle:
            handle.write(f"\n# written by wangge db start\n{conf}\n")

    def _pg_ctl_start(self) -> None:
        log = self.data_dir / "server.log"
        self._run(
            [
                self.bindir / "pg_ctl",
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
            ]
        )

    def ensure_database(self, dbname: str = DB_NAME) -> str:
        """Create database ``dbname`` (owned by the application role, with
        PostGIS) unless it exists; return its URL. The cluster must be running."""
        psql: list[str | Path] = [
            self.bindir / "psql" if (self.bindir / "psql").exists() else Path("psql"),
            "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER,
        ]  # fmt: skip
        exists = self._run(
            [
                *psql,
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{dbname}'",
            ]
        ).stdout.strip()
        # The login role owns the schema (migrations run as it); requests run as
        # the narrower REQUEST_ROLE it may SET ROLE to (migration 0005). Run
        # every time, so a cluster made before the request role gains it.
        self._run(
            [*psql, "-d", "postgres", "-c",
             f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}')"
             f" THEN CREATE ROLE {APP_ROLE} LOGIN; END IF;"
             f" IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{REQUEST_ROLE}')"
             f" THEN CREATE ROLE {REQUEST_ROLE} NOLOGIN; END IF; END$$;"
             f" GRANT {REQUEST_ROLE} TO {APP_ROLE};"]
        )  # fmt: skip
        if exists != "1":
            self._run(
                [*psql, "-d", "postgres", "-c", f'CREATE DATABASE "{dbname}" OWNER {APP_ROLE}']
            )
        # Extensions need a superuser; the application role owns everything else.
        self._run(
            [*psql, "-d", dbname, "-c",
             "CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS btree_gist;"]
        )  # fmt: skip
        return self.url(dbname=dbname)

    # -- running commands as the server's OS user -----------------------------
    @staticmethod
    def _server_user() -> str | None:
        """The OS user to run server commands as: ``postgres`` when we are root."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError as exc:
            raise Unavailable(
                "running as root, but there is no 'postgres' OS user to run the server as;"
                f" {DEBIAN_HINT} (it creates the user), or run wangge as an ordinary user"
            ) from exc
        return SUPERUSER

    def _chown_for_server(self, path: Path) -> None:
        user = self._server_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)

    def _run(
        self, argv: list[str | Path], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(part) for part in argv]
        user = self._server_user()
        if user is not None:
            command = ["runuser", "-u", user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if check and result.returncode != 0:
            raise Unavailable(
                f"command failed ({result.returncode}): {' '.join(command)}\n"
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result
