"""Migrations: up to head, down to base, up again, on real PostGIS."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from db.migrate import current_revision, downgrade, head_revision, upgrade
from db.models import Base

TABLES = {"area", "building", "household", "resident"}


def test_upgrade_downgrade_upgrade(pg) -> None:
    url = pg.database("migrations_roundtrip", migrate=False)
    engine = create_engine(url)
    try:
        upgrade(url)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES

        downgrade(url, revision="base")
        assert current_revision(engine) is None
        assert not TABLES & set(inspect(engine).get_table_names())

        upgrade(url)
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_models_match_the_migrated_schema(engine) -> None:
    """The ORM mappings describe the columns the migrations create, no more, no less."""
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        stored = {c["name"] for c in inspector.get_columns(table.name)}
        assert stored == {c.name for c in table.columns}, table.name


def test_spatial_indexes_exist(engine) -> None:
    inspector = inspect(engine)
    for table in ("area", "building"):
        indexes = {ix["name"]: ix for ix in inspector.get_indexes(table)}
        assert f"ix_{table}_geom" in indexes, table
