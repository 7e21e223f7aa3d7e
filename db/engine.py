"""Engines and sessions. The one place connections are made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from db.cluster import Cluster, find_pg_bindir
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
def engine_for(url: str) -> Engine:
    """One pooled engine per URL for the life of the process."""
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session, session.begin():
        yield session
