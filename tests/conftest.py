"""Shared fixtures: a throwaway PostGIS cluster started the way ``wangge db
start`` starts one, migrated once; each test runs in a transaction that is
rolled back, so tests never see each other's rows. Tests that must commit
(the CLI, the demo loader, migrations down and up) get a database of their own.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from db.cluster import Cluster, find_pg_bindir
from db.migrate import upgrade

# Fails the run on any unmasked ID or phone number in a response or a log line.
pytest_plugins = ["tests.pii_scan"]

REPO_ROOT = Path(__file__).resolve().parent.parent
# Tokens of the test run are signed with a key of its own, never the one a
# developer's `make demo` keeps in var/secret_key (servers started by tests inherit it).
os.environ.setdefault("WANGGE_SECRET_KEY", secrets.token_urlsafe(32))
SHARED_BOUNDARIES = REPO_ROOT.parent / "shared" / "data" / "boundaries"


class ThrowawayCluster:
    """A cluster of the suite's own, with one fresh database per purpose."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._made: dict[str, str] = {}

    def database(self, name: str, *, migrate: bool = True) -> str:
        """URL of database ``name``, created (and migrated to head) on first use."""
        if name not in self._made:
            url = self.cluster.ensure_database(name)
            if migrate:
                upgrade(url)
            self._made[name] = url
        return self._made[name]

    def superuser_url(self, name: str) -> str:
        return self.cluster.url(user="postgres", dbname=name)


@pytest.fixture(scope="session")
def pg() -> Iterator[ThrowawayCluster]:
    root = Path(tempfile.mkdtemp(prefix="wangge-test-"))
    root.chmod(0o755)  # the server runs as 'postgres' when we are root: it must reach its data dir
    cluster = Cluster(
        data_dir=root / "pg", port=random.randint(40000, 49999), bindir=find_pg_bindir()
    )
    cluster.start()
    try:
        yield ThrowawayCluster(cluster)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def db_url(pg: ThrowawayCluster) -> str:
    return pg.database("wangge_test")


@pytest.fixture(scope="session")
def demo_db_url(pg: ThrowawayCluster) -> str:
    """A small demo county (3,000 households, seed 11), loaded once; read it, don't write it."""
    from db.demo import load_demo

    url = pg.database("demo_small")
    demo_engine = create_engine(url)
    load_demo(demo_engine, county_code="445321", households=3_000, seed=11)
    demo_engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction rolled back after the test; code under
    test that commits only releases a savepoint."""
    connection = engine.connect()
    outer = connection.begin()
    db_session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield db_session
    finally:
        db_session.close()
        outer.rollback()
        connection.close()


def count_rows(session: Session, table: str) -> int:
    return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def live_demo_database(pg: ThrowawayCluster, name: str, *, households: int, seed: int) -> tuple[str, Engine]:
    """A database ``name`` holding the demo county moved to today, for tests
    whose writes must commit. Returns its URL and an owner engine (the caller
    disposes of it)."""
    from db.demo import load_demo
    from geo.localtime import local_today

    url = pg.database(name)
    engine = create_engine(url)
    load_demo(engine, county_code="445321", households=households, seed=seed, today=local_today())
    return url, engine


def add_account(engine: Engine, *, name: str, role: str, areas: list[str], password_hash: str) -> None:
    """Make (or remake) an account, as the schema owner."""
    from db.accounts import replace_account
    from db.engine import session_scope
    from geo.localtime import local_today

    with session_scope(engine) as session:
        replace_account(session, name=name, role=role, areas=areas, password_hash=password_hash,
                        today=local_today())  # fmt: skip


def scalar_sql(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar_one()


BUSIEST_MICROGRID_SQL = (
    "SELECT h.microgrid_code FROM household h WHERE h.microgrid_code IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM visit v WHERE v.household_id = h.id)"
    " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
)
GRID_WITH_MOST_MICROGRIDS_SQL = (
    "SELECT parent_code FROM area WHERE level = 'microgrid' AND valid_to IS NULL"
    " GROUP BY parent_code ORDER BY count(*) DESC, parent_code LIMIT 1"
)


@pytest.fixture
def shared_boundaries() -> Path:
    if not SHARED_BOUNDARIES.is_dir():
        pytest.skip("../shared/data/boundaries is not beside the repository")
    return SHARED_BOUNDARIES


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = REPO_ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
