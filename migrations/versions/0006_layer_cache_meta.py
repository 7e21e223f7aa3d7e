"""The layer cache serves the GeoJSON layer too: each area's households,
residents and parent with its figures, and per request the collection's
members (legend, round, totals, unlocated households).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("TRUNCATE layer_cache")  # rebuilt on demand, with the new columns filled
    op.execute(
        "ALTER TABLE layer_cache ADD COLUMN parent_code varchar(32),"
        " ADD COLUMN households bigint NOT NULL DEFAULT 0,"
        " ADD COLUMN residents bigint NOT NULL DEFAULT 0"
    )
    op.execute(
        """
        CREATE UNLOGGED TABLE layer_cache_meta (
            cache_key text PRIMARY KEY,
            members jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE layer_cache_meta")
    op.execute(
        "ALTER TABLE layer_cache DROP COLUMN parent_code, DROP COLUMN households,"
        " DROP COLUMN residents"
    )
