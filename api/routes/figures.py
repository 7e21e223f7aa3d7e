"""Key figures of an area for the wall map: households, visited, coverage,
incomplete, quarantine, overdue checks, active cases and flagged passages,
each on ``as_of`` and the day before, with the change.

Aggregates (``read_aggregates``) of the account's areas: ``within`` must lie in
them and defaults to the account's area. Each figure is a total of a layer
under the area (GET /api/layers/{layer}?within=…), read from the layer cache,
so the panel equals the layers and a wall refreshing every minute costs a
cache lookup, not a recount.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.auth import PrincipalDep, scoped_within
from api.deps import AsOfDep, SessionDep
from api.routes.areas import AREA_CODE_MAX, NO_NUL
from api.routes.layers import LayerQuery, layer_totals, require_round_in_scope
from db.areas import area_ref
from geo.errors import NotFound
from geo.key_figures import FIGURE_LAYERS, Totals, key_figures

router = APIRouter(prefix="/api", tags=["figures"])


def day_totals(
    session: Session, *, within: str | None, as_of: dt.date, round_id: int | None
) -> dict[str, Totals]:
    """Each figure layer's totals under ``within`` on ``as_of``."""
    query = LayerQuery(as_of=as_of, within=within, round_id=round_id)
    return {layer: layer_totals(session, layer=layer, query=query) for layer in FIGURE_LAYERS}


@router.get(
    "/figures", summary="Key figures of an area on a day, with the change since the day before"
)
def figures(
    principal: PrincipalDep,
    session: SessionDep,
    as_of: AsOfDep,
    within: Annotated[
        str | None,
        Query(
            max_length=AREA_CODE_MAX,
            pattern=NO_NUL,
            description="The area (default: your area; an admin's default is the whole map)",
        ),
    ] = None,
    round_id: Annotated[
        int | None,
        Query(alias="round", description="Screening round id; default: the one in progress"),
    ] = None,
) -> dict[str, Any]:
    principal.require("read_aggregates")
    within = scoped_within(session, principal, within=within, as_of=as_of)
    require_round_in_scope(session, principal, round_id=round_id, as_of=as_of)
    area = None if within is None else area_ref(session, code=within, as_of=as_of)
    previous = as_of - dt.timedelta(days=1)
    today = day_totals(session, within=within, as_of=as_of, round_id=round_id)
    try:
        before = day_totals(session, within=within, as_of=previous, round_id=round_id)
    except NotFound:  # the area did not exist yet the day before
        before = None
    round_ref = today["coverage"]["round"]
    return {
        "within": within,
        "area": None if area is None else {"code": area.code, "name": area.name, "level": area.level},
        "as_of": as_of.isoformat(),
        "previous": previous.isoformat(),
        "round": None if round_ref is None else {"id": round_ref["id"], "name": round_ref["name"]},
        "figures": [
            {
                "id": f.spec.id, "label_zh": f.spec.label_zh, "label_en": f.spec.label_en,
                "layer": f.spec.layer, "total": f.spec.total, "unit": f.spec.unit, "better": f.spec.better,
                "value": f.value, "previous": f.previous, "change": f.change,
            }
            for f in key_figures(today=today, before=before)
        ],
    }  # fmt: skip
