"""Health: is the database reachable, which PostGIS, which migration."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SessionDep
from db.health import database_health

router = APIRouter(prefix="/api", tags=["health"])


class Health(BaseModel):
    status: str  # "ok", or "migrate" when the schema is behind the code
    database: str
    postgresql: str
    postgis: str
    migration: str | None
    migration_head: str | None


@router.get("/health", summary="Database reachable, PostGIS version, migration head")
def health(session: SessionDep) -> Health:
    return Health(**database_health(session).as_dict())
