"""Foundation: areas of every level with effective-dated boundaries,
buildings, households, residents.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LEVELS = "('city', 'county', 'township', 'community', 'grid', 'microgrid')"
CATEGORIES = "('local_permanent', 'nonlocal_permanent', 'local_temporary', 'nonlocal_temporary')"


def upgrade() -> None:
    # The embedded cluster creates these as superuser; an external server's
    # owner may need to do it once by hand (IF NOT EXISTS keeps that working).
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")

    op.create_table(
        "area",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False, server_default="land"),
        sa.Column("parent_code", sa.String(32)),
        sa.Column("county_code", sa.String(12)),
        sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date()),
        sa.Column("source", sa.Text()),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(f"level IN {LEVELS}", name=op.f("ck_area_level")),
        sa.CheckConstraint("kind IN ('land', 'sea')", name=op.f("ck_area_kind")),
        sa.CheckConstraint(
            "kind = 'land' OR level IN ('grid', 'microgrid')", name=op.f("ck_area_sea_is_grid")
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_area_validity")
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_area_geom_valid")),
        postgresql.ExcludeConstraint(
            ("code", "="),
            (sa.text("daterange(valid_from, valid_to)"), "&&"),
            name="area_one_version_at_a_time",
            using="gist",
        ),
    )
    op.create_index("ix_area_geom", "area", ["geom"], postgresql_using="gist")
    op.create_index("ix_area_parent_code", "area", ["parent_code"])
    op.create_index("ix_area_level", "area", ["level"])
    op.create_index(
        "uq_area_current_code",
        "area",
        ["code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )

    op.create_table(
        "building",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("township", sa.Text()),
        sa.Column("community", sa.Text()),
        sa.Column("road", sa.Text()),
        sa.Column("house_number", sa.Text()),
        sa.Column("estate", sa.Text()),
        sa.Column("building_no", sa.Text()),
        sa.Column("geom", geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False)),
    )
    op.create_index("ix_building_geom", "building", ["geom"], postgresql_using="gist")

    op.create_table(
        "household",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column(
            "building_id", sa.BigInteger(), sa.ForeignKey("building.id", ondelete="RESTRICT")
        ),
        sa.Column("unit", sa.Text()),
        sa.Column("floor", sa.Integer()),
        sa.Column("room", sa.Text()),
        sa.Column("microgrid_code", sa.String(32)),
    )
    op.create_index("ix_household_microgrid_code", "household", ["microgrid_code"])
    op.create_index("ix_household_building_id", "household", ["building_id"])

    op.create_table(
        "resident",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("county_code", sa.String(12), nullable=False),
        sa.Column(
            "household_id", sa.BigInteger(), sa.ForeignKey("household.id", ondelete="RESTRICT")
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("id_number", sa.String(18), unique=True),
        sa.Column("phone", sa.String(20)),
        sa.Column("sex", sa.String(1)),
        sa.Column("birth_date", sa.Date()),
        sa.Column("category", sa.String(24), nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.CheckConstraint(f"category IN {CATEGORIES}", name=op.f("ck_resident_category")),
        sa.CheckConstraint("sex IS NULL OR sex IN ('M', 'F')", name=op.f("ck_resident_sex")),
    )
    op.create_index("ix_resident_household_id", "resident", ["household_id"])


def downgrade() -> None:
    op.drop_table("resident")
    op.drop_table("household")
    op.drop_table("building")
    op.drop_table("area")
