"""Serving layers fast: a Web Mercator copy of every area geometry for tiles,
data epochs that change whenever a table a layer reads is written, and an
unlogged cache of computed layer figures keyed by those epochs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Every table a layer's figure depends on.
EPOCH_TABLES = (
    "area", "household", "resident", "screening_round", "visit", "case_report",
    "case_status_change", "quarantine", "temperature_check", "passage", "checkpoint",
)  # fmt: skip


def upgrade() -> None:
    # Tiles are cut in EPSG:3857: transforming every polygon on every request
    # costs more than the tile itself (DESIGN.md: 385 vs 232 tiles/s).
    op.execute(
        "ALTER TABLE area ADD COLUMN geom_3857 geometry(MultiPolygon, 3857)"
        " GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED"
    )
    op.create_index("ix_area_geom_3857", "area", ["geom_3857"], postgresql_using="gist")

    # One counter per table, bumped by a statement-level trigger: a COPY of a
    # million rows costs one update, and writers of different tables never
    # wait for each other. The row lock is held to commit, so a reader sees
    # the new epoch only with the new data.
    op.create_table(
        "data_epoch",
        sa.Column("table_name", sa.Text(), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute(
        "INSERT INTO data_epoch (table_name) VALUES "
        + ", ".join(f"('{table}')" for table in EPOCH_TABLES)
    )
    op.execute(
        """
        CREATE FUNCTION bump_data_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE data_epoch SET n = n + 1 WHERE table_name = TG_TABLE_NAME;
            RETURN NULL;
        END $$
        """
    )
    for table in EPOCH_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_data_epoch AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_data_epoch()"
        )

    # Computed figures of a layer (one row per area), keyed by a digest of the
    # request and the epochs: never stale, rebuilt on demand, so unlogged.
    op.execute(
        """
        CREATE UNLOGGED TABLE layer_cache (
            cache_key text NOT NULL,
            code varchar(32) NOT NULL,
            name text NOT NULL,
            level varchar(16) NOT NULL,
            value double precision,
            numerator bigint NOT NULL,
            denominator bigint NOT NULL,
            class smallint,
            colour text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_layer_cache PRIMARY KEY (cache_key, code)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE layer_cache")
    for table in EPOCH_TABLES:
        op.execute(f"DROP TRIGGER {table}_data_epoch ON {table}")
    op.execute("DROP FUNCTION bump_data_epoch()")
    op.drop_table("data_epoch")
    op.drop_index("ix_area_geom_3857", "area")
    op.drop_column("area", "geom_3857")
