"""Key figures of an area for the wall map: households, visited, coverage,
incomplete, quarantine, overdue checks, active cases and flagged passages,
each on ``as_of`` and the day before, with the change.

Aggregates (``read_aggregates``) of the account's areas: ``within`` must lie in
them and defaults to the account's area. Each figure is the total of a layer
for the area itself at its own level (GET /api/layers/{layer}?level=<its level>).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.auth import PrincipalDep, scoped_within
from api.deps import AsOfDep, SessionDep
from api.routes.areas import AREA_CODE_MAX, NO_NUL
from api.routes.layers import require_round_in_scope
from db.figures import key_figures

router = APIRouter(prefix="/api", tags=["figures"])


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
            description="The area (default: your area)",
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
    result = key_figures(session, within=within, as_of=as_of, round_id=round_id)
    area = result.area
    round_ref = result.round
    return {
        "within": None if area is None else area.code,
        "area": None if area is None else {"code": area.code, "name": area.name, "level": area.level},
        "level": result.level,
        "as_of": result.as_of.isoformat(),
        "previous": result.previous.isoformat(),
        "round": None if round_ref is None else {"id": round_ref.id, "name": round_ref.name},
        "figures": [
            {
                "id": f.spec.id, "label_zh": f.spec.label_zh, "label_en": f.spec.label_en,
                "layer": f.spec.layer, "total": f.spec.total, "unit": f.spec.unit,
                "value": f.value, "previous": f.previous, "change": f.change,
            }
            for f in result.figures
        ],
    }  # fmt: skip
