"""What ``GET /api/health`` reports about the database."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from db.migrate import head_revision
from geo.errors import Unavailable


@dataclass(frozen=True)
class DatabaseHealth:
    status: str  # "ok" or "migrate" (reachable but behind the code's head)
    database: str
    postgresql: str
    postgis: str
    migration: str | None
    migration_head: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def database_health(session: Session) -> DatabaseHealth:
    """Versions and migration state; ``Unavailable`` if the server cannot be reached."""
    try:
        row = session.execute(
            text(
                "SELECT current_database(), current_setting('server_version'), postgis_lib_version()"
            )
        ).one()
        current = MigrationContext.configure(session.connection()).get_current_revision()
    except SQLAlchemyError as exc:
        raise Unavailable(f"the database cannot be reached: {exc.__class__.__name__}") from None
    head = head_revision()
    return DatabaseHealth(
        status="ok" if current == head else "migrate",
        database=row[0], postgresql=row[1], postgis=row[2],
        migration=current, migration_head=head,
    )  # fmt: skip
