"""Typed FastAPI dependencies: settings, engine, a session per request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.audit import record_request
from api.settings import ApiSettings
from db.engine import database_url, engine_for, session_scope
from db.settings import DatabaseSettings
from geo.crs import Crs, parse_crs
from geo.localtime import local_today


@lru_cache(maxsize=1)
def get_api_settings() -> ApiSettings:
    return ApiSettings()


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process's engine. Serving never starts the embedded cluster by
    itself: ``wangge serve`` starts it before the app is built."""
    return engine_for(database_url(DatabaseSettings(), start_embedded=False))


def get_session(
    request: Request, engine: Annotated[Engine, Depends(get_engine)]
) -> Iterator[Session]:
    """The request's session: one transaction, committed with the request's
    audit row (api.audit) when the route succeeds, rolled back when it fails."""
    with session_scope(engine) as session:
        yield session
        record_request(request, session)


def output_crs(
    crs: Annotated[
        str,
        Query(
            description="CRS of the coordinates returned: wgs84 (default), cgcs2000, gcj02, bd09 or EPSG:n"
        ),
    ] = "wgs84",
) -> Crs:
    return parse_crs(crs)


def as_of_date(
    as_of: Annotated[
        dt.date | None,
        Query(description="Answer with the boundaries in force on this date (default today)"),
    ] = None,
) -> dt.date:
    return as_of or local_today()


# scope="function": the commit (and the audit row) happen before the response is
# sent, so a client never gets a 2xx for a write that was then rolled back.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ApiSettingsDep = Annotated[ApiSettings, Depends(get_api_settings)]
CrsDep = Annotated[Crs, Depends(output_crs)]
AsOfDep = Annotated[dt.date, Depends(as_of_date)]
