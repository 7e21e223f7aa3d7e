"""Registry: standard addresses, located households, person state
(health code, quarantine, temperature checks), geocoding review queue,
import batches and resident history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GEOCODE_LEVELS = "('building', 'point', 'community', 'township', 'county', 'none')"
GEOCODE_STATUSES = "('matched', 'review', 'unmatched', 'manual')"


def _point(nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "geom", geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False), nullable=nullable
    )


def upgrade() -> None:
    # -- the standard address registry (标准地址库) ------------------------------------
    op.add_column("building", sa.Column("county", sa.Text()))
    op.add_column("building", sa.Column("village_group", sa.Text()))
    op.add_column("building", sa.Column("source", sa.Text()))
    op.add_column(
        "building",
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_building_county_code", "building", ["county_code"])

    # -- households: where they are, and how sure we are -------------------------------
    op.add_column("household", sa.Column("address", sa.Text()))
    op.add_column(
        "household",
        sa.Column("geom", geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False)),
    )
    op.add_column(
        "household",
        sa.Column("geocode_level", sa.String(12), nullable=False, server_default="none"),
    )
    op.add_column("household", sa.Column("geocode_score", sa.Float()))
    op.add_column(
        "household",
        sa.Column("geocode_status", sa.String(12), nullable=False, server_default="unmatched"),
    )
    # The smallest area known to hold the household when it is located only
    # to a community, township or county (fallback); its micro-grid stays null.
    op.add_column("household", sa.Column("area_code", sa.String(32)))
    # What makes two registry rows the same household: its building and
    # unit/room when the address matched a building, else the normalised address.
    op.add_column("household", sa.Column("address_key", sa.Text()))
    op.create_check_constraint(
        op.f("ck_household_geocode_level"), "household", f"geocode_level IN {GEOCODE_LEVELS}"
    )
    op.create_check_constraint(
        op.f("ck_household_geocode_status"), "household", f"geocode_status IN {GEOCODE_STATUSES}"
    )
    op.create_index("ix_household_geom", "household", ["geom"], postgresql_using="gist")
    op.create_index("ix_household_county_code", "household", ["county_code"])
    op.create_index("ix_household_area_code", "household", ["area_code"])
    op.create_index(
        "uq_household_address_key", "household", ["county_code", "address_key"], unique=True
    )
    # The demo's households are located at their building's point.
    op.execute(
        "UPDATE household h SET geom = b.geom, geocode_level = 'building', geocode_score = 1,"
        " geocode_status = 'matched', address = b.address FROM building b WHERE b.id = h.building_id"
    )

    # -- residents: registry fields and state -----------------------------------------------
    op.add_column("resident", sa.Column("hukou", sa.Text()))  # 户籍地, as written
    op.add_column("resident", sa.Column("health_code", sa.String(8)))
    op.add_column("resident", sa.Column("source", sa.Text()))
    op.add_column(
        "resident",
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_check_constraint(
        op.f("ck_resident_health_code"),
        "resident",
        "health_code IS NULL OR health_code IN ('green', 'yellow', 'red')",
    )
    op.create_index("ix_resident_tags", "resident", ["tags"], postgresql_using="gin")
    op.create_index("ix_resident_county_code", "resident", ["county_code"])

    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column(
            "resident_id",
            sa.BigInteger(),
            sa.ForeignKey("resident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("site_name", sa.Text()),
        _point(),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("planned_end", sa.Date(), nullable=False),
        sa.Column("extended_to", sa.Date()),
        sa.Column("released_on", sa.Date()),
        sa.Column("note", sa.Text()),
        sa.CheckConstraint("kind IN ('home', 'central')", name=op.f("ck_quarantine_kind")),
        sa.CheckConstraint("planned_end > start_date", name=op.f("ck_quarantine_planned_end")),
        sa.CheckConstraint(
            "extended_to IS NULL OR extended_to > planned_end", name=op.f("ck_quarantine_extension")
        ),
        sa.CheckConstraint(
            "released_on IS NULL OR released_on >= start_date", name=op.f("ck_quarantine_release")
        ),
        sa.CheckConstraint(
            "kind = 'home' OR site_name IS NOT NULL", name=op.f("ck_quarantine_central_site")
        ),
    )
    op.create_index("ix_quarantine_resident_id", "quarantine", ["resident_id"])
    op.create_index("ix_quarantine_geom", "quarantine", ["geom"], postgresql_using="gist")

    op.create_table(
        "temperature_check",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column(
            "resident_id",
            sa.BigInteger(),
            sa.ForeignKey("resident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("temperature_c", sa.Numeric(3, 1), nullable=False),
        # 37.3 °C and above is a fever (the national screening threshold).
        sa.Column(
            "fever",
            sa.Boolean(),
            sa.Computed("temperature_c >= 37.3", persisted=True),
            nullable=False,
        ),
        sa.CheckConstraint(
            "temperature_c BETWEEN 30.0 AND 45.0", name=op.f("ck_temperature_check_plausible")
        ),
    )
    op.create_index(
        "ix_temperature_check_resident_id", "temperature_check", ["resident_id", "checked_at"]
    )

    op.create_table(
        "geocode_review",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column(
            "household_id",
            sa.BigInteger(),
            sa.ForeignKey("household.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(12), nullable=False),
        sa.Column("candidates", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("status", sa.String(10), nullable=False, server_default="open"),
        sa.Column("resolved_building_id", sa.BigInteger(), sa.ForeignKey("building.id")),
        _point(),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "reason IN ('ambiguous', 'unmatched', 'fallback')",
            name=op.f("ck_geocode_review_reason"),
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_geocode_review_status")),
    )
    op.create_index(
        "uq_geocode_review_open_household", "geocode_review", ["household_id"], unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )  # fmt: skip

    op.create_table(
        "import_batch",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_applied", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("report", postgresql.JSONB(), nullable=False),
        # The rejected rows with their reasons, as the office downloads them (CSV/XLSX).
        sa.Column("rejected_file", sa.LargeBinary()),
        sa.Column("rejected_format", sa.String(4)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )

    op.create_table(
        "resident_history",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "resident_id",
            sa.BigInteger(),
            sa.ForeignKey("resident.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(), nullable=False),
    )
    op.create_index(
        "ix_resident_history_resident_id", "resident_history", ["resident_id", "changed_at"]
    )


def downgrade() -> None:
    op.drop_table("resident_history")
    op.drop_table("import_batch")
    op.drop_table("geocode_review")
    op.drop_table("temperature_check")
    op.drop_table("quarantine")
    op.drop_index("ix_resident_county_code", "resident")
    op.drop_index("ix_resident_tags", "resident")
    op.drop_constraint(op.f("ck_resident_health_code"), "resident")
    for column in ("updated_at", "source", "health_code", "hukou"):
        op.drop_column("resident", column)
    for index in (
        "uq_household_address_key",
        "ix_household_area_code",
        "ix_household_county_code",
        "ix_household_geom",
    ):
        op.drop_index(index, "household")
    op.drop_constraint(op.f("ck_household_geocode_status"), "household")
    op.drop_constraint(op.f("ck_household_geocode_level"), "household")
    for column in (
        "area_code",
        "geocode_status",
        "geocode_score",
        "geocode_level",
        "geom",
        "address",
    ):
        op.drop_column("household", column)
    op.drop_index("ix_building_county_code", "building")
    for column in ("updated_at", "source", "village_group", "county"):
        op.drop_column("building", column)
