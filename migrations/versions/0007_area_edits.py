"""Micro-grid edits: who changed which micro-grids, when, why and with what
effect (households moved, gaps left). The boundaries themselves stay in
``area``'s effective-dated versions; this is the history behind them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIONS = ("redraw", "create", "split", "merge", "delete", "replace")


def upgrade() -> None:
    op.create_table(
        "area_edit",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("county_code", sa.String(12)),
        sa.Column("grid_code", sa.String(32), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("codes", postgresql.ARRAY(sa.String(32)), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", postgresql.JSONB(), nullable=False, server_default="{}"),
        sa.CheckConstraint(f"action IN {ACTIONS}", name=op.f("ck_area_edit_action")),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f("ck_area_edit_reason")),
    )
    op.create_index("ix_area_edit_grid_code", "area_edit", ["grid_code", "at"])
    op.create_index("ix_area_edit_codes", "area_edit", ["codes"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_table("area_edit")
