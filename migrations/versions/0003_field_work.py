"""Field work: screening rounds and visits (with idempotency records), cases
with their status history, checkpoints and passages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VISIT_RESULTS = "('complete', 'partial', 'nobody_home', 'refused', 'vacant')"
CASE_STATUSES = "('suspected', 'confirmed', 'asymptomatic', 'recovered', 'ruled_out')"
CHECKPOINT_KINDS = "('highway_exit', 'village_entrance', 'estate_gate', 'port')"


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("id", sa.BigInteger(), primary_key=True)


def _county() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("county_code", sa.String(12), nullable=False)


def _now(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _point(nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "geom", geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False), nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "screening_round",
        _id(),
        _county(),
        sa.Column("area_code", sa.String(32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        _now("created_at"),
        sa.CheckConstraint("end_date >= start_date", name=op.f("ck_screening_round_dates")),
    )
    op.create_index("ix_screening_round_area_code", "screening_round", ["area_code"])
    op.create_index("ix_screening_round_county_code", "screening_round", ["county_code"])

    op.create_table(
        "visit",
        _id(),
        _county(),
        sa.Column(
            "round_id",
            sa.BigInteger(),
            sa.ForeignKey("screening_round.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column(
            "household_id",
            sa.BigInteger(),
            sa.ForeignKey("household.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("result", sa.String(12), nullable=False),
        sa.Column("persons_seen", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("note", sa.Text()),
        sa.Column("worker", sa.Text()),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        _point(),
        sa.Column("distance_m", sa.Float()),
        sa.Column("far_reason", sa.Text()),
        _now("created_at"),
        sa.CheckConstraint(f"result IN {VISIT_RESULTS}", name=op.f("ck_visit_result")),
        sa.CheckConstraint("persons_seen >= 0", name=op.f("ck_visit_persons_seen")),
    )
    op.create_index("ix_visit_round_id", "visit", ["round_id", "household_id"])
    op.create_index("ix_visit_household_id", "visit", ["household_id"])

    op.create_table(
        "idempotency_record",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(), nullable=False),
        _now("created_at"),
    )

    op.create_table(
        "case_report",
        _id(),
        _county(),
        sa.Column(
            "resident_id", sa.BigInteger(), sa.ForeignKey("resident.id", ondelete="RESTRICT")
        ),
        sa.Column(
            "household_id", sa.BigInteger(), sa.ForeignKey("household.id", ondelete="RESTRICT")
        ),
        sa.Column("address", sa.Text()),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("onset_date", sa.Date()),
        sa.Column("reported_by", sa.Text()),
        sa.Column("note", sa.Text()),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(f"status IN {CASE_STATUSES}", name=op.f("ck_case_report_status")),
        sa.CheckConstraint(
            "resident_id IS NOT NULL OR household_id IS NOT NULL OR address IS NOT NULL",
            name=op.f("ck_case_report_linked"),
        ),
        sa.CheckConstraint(
            "onset_date IS NULL OR onset_date <= reported_on", name=op.f("ck_case_report_onset")
        ),
    )
    op.create_index("ix_case_report_resident_id", "case_report", ["resident_id"])
    op.create_index("ix_case_report_household_id", "case_report", ["household_id"])
    op.create_index("ix_case_report_county_code", "case_report", ["county_code"])

    op.create_table(
        "case_status_change",
        _id(),
        sa.Column(
            "case_id",
            sa.BigInteger(),
            sa.ForeignKey("case_report.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        _now("changed_at"),
        sa.Column("note", sa.Text()),
        sa.CheckConstraint(f"status IN {CASE_STATUSES}", name=op.f("ck_case_status_change_status")),
    )
    op.create_index(
        "ix_case_status_change_case_id", "case_status_change", ["case_id", "effective_on"]
    )

    op.create_table(
        "checkpoint",
        _id(),
        _county(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        _point(nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("note", sa.Text()),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(f"kind IN {CHECKPOINT_KINDS}", name=op.f("ck_checkpoint_kind")),
    )
    op.create_index("ix_checkpoint_geom", "checkpoint", ["geom"], postgresql_using="gist")
    op.create_index("ix_checkpoint_county_code", "checkpoint", ["county_code"])

    op.create_table(
        "passage",
        _id(),
        _county(),
        sa.Column(
            "checkpoint_id",
            sa.BigInteger(),
            sa.ForeignKey("checkpoint.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("passed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(3)),
        sa.Column(
            "resident_id", sa.BigInteger(), sa.ForeignKey("resident.id", ondelete="SET NULL")
        ),
        sa.Column("person_name", sa.Text()),
        sa.Column("id_number", sa.String(18)),
        sa.Column("phone", sa.String(20)),
        sa.Column("plate", sa.String(16)),
        sa.Column("temperature_c", sa.Numeric(3, 1)),
        sa.Column("health_code", sa.String(8)),
        sa.Column("origin", sa.Text()),
        sa.Column(
            "flagged",
            sa.Boolean(),
            sa.Computed(
                "coalesce(temperature_c >= 37.3, false) OR coalesce(health_code IN ('red', 'yellow'), false)",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("home_microgrid_code", sa.String(32)),
        _now("created_at"),
        sa.CheckConstraint(
            "direction IS NULL OR direction IN ('in', 'out')", name=op.f("ck_passage_direction")
        ),
        sa.CheckConstraint(
            "health_code IS NULL OR health_code IN ('green', 'yellow', 'red')",
            name=op.f("ck_passage_health_code"),
        ),
        sa.CheckConstraint(
            "temperature_c IS NULL OR temperature_c BETWEEN 30.0 AND 45.0",
            name=op.f("ck_passage_plausible"),
        ),
        sa.CheckConstraint(
            "resident_id IS NOT NULL OR person_name IS NOT NULL OR id_number IS NOT NULL"
            " OR plate IS NOT NULL",
            name=op.f("ck_passage_who"),
        ),
    )
    op.create_index("ix_passage_checkpoint_id", "passage", ["checkpoint_id", "passed_at"])
    op.create_index("ix_passage_home_microgrid_code", "passage", ["home_microgrid_code"])
    op.create_index("ix_passage_passed_at", "passage", ["passed_at"])


def downgrade() -> None:
    for table in (
        "passage",
        "checkpoint",
        "case_status_change",
        "case_report",
        "idempotency_record",
        "visit",
        "screening_round",
    ):
        op.drop_table(table)
