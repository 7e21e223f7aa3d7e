"""Engines and sessions. The one place connections are made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from db.cluster import REQUEST_ROLE, Cluster, find_pg_bindir
from db.settings import DatabaseSettings


def embedded_cluster(settings: DatabaseSettings) -> Cluster:
    """The embedded cluster described by ``settings`` (not started)."""
    return Cluster(
        data_dir=settings.data_dir.resolve(),
        port=settings.db_port,
        bindir=find_pg_bindir(configured=settings.pg_bindir),
    )


def normalise_url(url: str) -> str:
    """Accept libpq-style URLs (``postgres://``, ``postgresql://``) and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def database_url(settings: DatabaseSettings, *, start_embedded: bool = True) -> str:
    """``DATABASE_URL`` when set; otherwise the embedded cluster's URL, started
    first when ``start_embedded`` (so every command just works after a reboot)."""
    if settings.database_url:
        return normalise_url(settings.database_url)
    cluster = embedded_cluster(settings)
    if start_embedded:
        cluster.start()
    return cluster.url()


@lru_cache(maxsize=8)
def engine_for(url: str, *, request_role: str | None = REQUEST_ROLE) -> Engine:
    """One pooled engine per URL (and role) for the life of the process.

    Every connection first does ``SET ROLE request_role``: requests and
    commands work with that role's rights — all of the data, none to rewrite
    the audit trail (migration 0005). ``request_role=None`` keeps the login
    role, the schema's owner: for migrations and loading the demo only.
    """
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if request_role:
        _set_role_on_connect(engine, role=request_role)
    return engine


def _set_role_on_connect(engine: Engine, *, role: str) -> None:
    @event.listens_for(engine, "connect")
    def set_role(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True  # SET ROLE outside any transaction: it lasts
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET ROLE "{role}"')
        dbapi_connection.autocommit = autocommit


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
