"""Paging of every list, as OGC API – Features pages collections: ``limit``
and ``offset`` in, ``numberMatched``, ``numberReturned`` and a ``next`` link out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request

from api.settings import ApiSettings
from db.paging import Page
from geo.errors import InvalidInput

# Offsets beyond this are no page of anything Wangge holds; refusing them keeps
# the value inside PostgreSQL's bigint (a larger one would be a 500).
MAX_OFFSET = 1_000_000_000

Limit = Annotated[int | None, Query(ge=1, description="Page size (capped by the server)")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]


def page_of(settings: ApiSettings, *, limit: int | None, offset: int) -> Page:
    """The page asked for; a ``limit`` above ``page_limit_max`` is refused
    (422 naming the cap), not silently cut, so a client never mistakes a
    short page for the end of the list."""
    if limit is not None and limit > settings.page_limit_max:
        raise InvalidInput(
            f"limit={limit} is above the page size cap of {settings.page_limit_max};"
            " ask for less and follow the next links"
        )
    return Page(limit=limit or settings.page_limit_default, offset=offset)


def paged(request: Request, *, page: Page, matched: int, returned: int) -> dict[str, Any]:
    """The paging members of a list's body."""
    links = []
    if page.offset + returned < matched:
        href = request.url.include_query_params(offset=page.offset + page.limit, limit=page.limit)
        links.append({"rel": "next", "href": str(href)})
    return {
        "numberMatched": matched,
        "numberReturned": returned,
        "limit": page.limit,
        "offset": page.offset,
        "links": links,
    }
