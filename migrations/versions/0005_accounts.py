"""Accounts, area-scoped access and the audit trail.

* ``app_user`` with one role and the areas it is scoped to (``user_scope``);
  ``token_version`` revokes every token of an account at once (disable,
  password change); ``revoked_token`` revokes one (logout).
* ``login_failure``: the failed logins the lock-out counts.
* ``audit_log``: append-only. The application works as the database role
  ``wangge_app`` (``SET ROLE`` on every connection, db.engine), which may
  insert and read the trail but not update, delete or truncate it; a trigger
  refuses those to every other role too, the owner included.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APP_ROLE = "wangge_app"
ROLES = "('admin', 'commander', 'grid_leader', 'grid_worker', 'wall_viewer')"


def _now(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    # Deleting a resident nulls their passages (ON DELETE SET NULL): without
    # this index each delete scans every passage.
    op.create_index("ix_passage_resident_id", "passage", ["resident_id"])
    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("can_view_personal", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(f"role IN {ROLES}", name=op.f("ck_app_user_role")),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 64", name=op.f("ck_app_user_name")),
    )
    op.create_table(
        "user_scope",
        sa.Column(
            "user_id",
            sa.BigInteger(),
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("area_code", sa.String(32), primary_key=True),
    )
    op.create_table(
        "login_failure",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("user_name", sa.Text(), nullable=False),
        _now("at"),
        sa.Column("client", sa.Text()),
    )
    op.create_index("ix_login_failure_user_name", "login_failure", ["user_name", "at"])
    op.create_table(
        "revoked_token",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("clock_timestamp()"),
        ),
        sa.Column("user_id", sa.BigInteger()),
        sa.Column("user_name", sa.Text()),
        sa.Column("role", sa.String(16)),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("method", sa.String(8)),
        sa.Column("path", sa.Text()),
        sa.Column("object_type", sa.String(32)),
        sa.Column("object_id", sa.Text()),
        sa.Column("area_code", sa.String(32)),
        sa.Column("reason", sa.Text()),
        sa.Column("status_code", sa.Integer()),
        sa.Column("detail", postgresql.JSONB()),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_user_id", "audit_log", ["user_id", "at"])
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )

    # The application's role: every right on the data, none to rewrite history.
    # The embedded cluster creates the role and its membership as superuser
    # (db.cluster); on another server the migrating role needs CREATEROLE, or
    # an administrator runs: CREATE ROLE wangge_app NOLOGIN; GRANT wangge_app TO <owner>.
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            END IF;
            IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
                EXECUTE 'GRANT {APP_ROLE} TO ' || quote_ident(current_user);
            END IF;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public"
        f" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}"
    )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public"
        f" REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {APP_ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {APP_ROLE}"
    )
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    for table in ("audit_log", "revoked_token", "login_failure", "user_scope", "app_user"):
        op.drop_table(table)
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index("ix_passage_resident_id", "passage")
