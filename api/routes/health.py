"""Health: is the database reachable, which PostGIS, which migration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import SessionDep
from db.health import database_health

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", summary="Database reachable, PostGIS version, migration head")
def health(session: SessionDep) -> dict[str, Any]:
    return database_health(session).as_dict()
