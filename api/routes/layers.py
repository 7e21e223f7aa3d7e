"""Choropleth layers as GeoJSON FeatureCollections with their legend.

Aggregates (``read_aggregates``) of the account's areas: ``within`` must lie
in them (an area outside answers as a missing one) and defaults to the
account's area; a round named must be one the account may see. Hexagons
suppress small counts; only accounts that may read personal data can lower
``k`` below the default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import shapely
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from api.auth import Principal, PrincipalDep, require_object_in_scope, scoped_within
from api.deps import AsOfDep, CrsDep, SessionDep
from api.responses import GeoJSONResponse
from api.routes.areas import AREA_CODE_MAX, NO_NUL
from db.layers import (
    LAYERS,
    AreaFigure,
    LayerResult,
    LayerSpec,
    compute_layer,
    default_level,
    household_facts,
    require_layer,
)
from db.tiles import (
    cache_key,
    cached_layer,
    cached_members,
    data_epochs,
    is_cached,
    layer_etag,
    store_figures,
)
from geo.classify import METHODS, Classified, Legend, LegendClass, classify, parse_breaks
from geo.crs import Crs
from geo.errors import Forbidden
from geo.geojson import geometry_to_geojson
from geo.hexbin import DEFAULT_MIN_COUNT, HexCell, bin_households

router = APIRouter(prefix="/api", tags=["layers"])


@router.get("/layers", summary="The layers, with what each counts")
def layer_list(principal: PrincipalDep) -> dict[str, Any]:
    principal.require("read_aggregates")
    return {
        "layers": [
            {
                "id": spec.id, "title": spec.title, "description": spec.description,
                "numerator": spec.numerator, "denominator": spec.denominator,
                "value": spec.value, "unit": spec.unit, "needs_round": spec.needs_round,
                "default_classify": spec.default_classify,
                "default_breaks": list(spec.default_breaks),
            }
            for spec in LAYERS.values()
        ]
    }  # fmt: skip


@dataclass
class LayerQuery:
    """The query parameters that name a layer's figures (shared by the GeoJSON
    layer, its tiles and its hexagons)."""

    as_of: AsOfDep
    level: Annotated[
        str | None, Query(description="township … microgrid; default: the level below `within`")
    ] = None
    within: Annotated[
        str | None,
        Query(
            max_length=AREA_CODE_MAX,
            pattern=NO_NUL,
            description="Only areas under this area code (default: your area)",
        ),
    ] = None
    round_id: Annotated[
        int | None,
        Query(alias="round", description="Screening round id; default: the one in progress"),
    ] = None
    classify_method: Annotated[
        str | None, Query(alias="classify", description=f"One of {', '.join(METHODS)}")
    ] = None
    k: Annotated[int, Query(description="Number of classes (2–9)")] = 5
    breaks: Annotated[
        str | None, Query(description="Thresholds for classify=fixed, e.g. 60,80,95")
    ] = None

    def classification(self, spec: LayerSpec) -> tuple[str, tuple[float, ...] | None]:
        """The method and thresholds asked for, or the layer's defaults."""
        method = self.classify_method or spec.default_classify
        thresholds = parse_breaks(self.breaks) if self.breaks else None
        if method == "fixed" and thresholds is None:
            thresholds = spec.default_breaks or None
        return method, thresholds

    def canonical(self, *, layer: str, level: str) -> dict[str, object]:
        """What makes two requests' figures equal (for cache keys)."""
        method, thresholds = self.classification(require_layer(layer))
        return {"layer": layer, "level": level, "within": self.within, "as_of": self.as_of,
                "round": self.round_id, "classify": method, "k": self.k,
                "breaks": thresholds}  # fmt: skip


def require_round_in_scope(
    session: Session, principal: Principal, *, round_id: int | None, as_of: dt.date
) -> None:
    """404, as for a missing round, unless the round named (if any) is one the account sees."""
    if round_id is not None:
        require_object_in_scope(
            session, principal, kind="round", object_id=round_id, noun="screening round",
            as_of=as_of,
        )  # fmt: skip


def scoped_layer_query(
    principal: PrincipalDep, session: SessionDep, query: Annotated[LayerQuery, Depends()]
) -> LayerQuery:
    """The query with ``within`` resolved against the account's areas (its own
    area when none is asked for; None only for an admin's whole map), so the
    figures — and the tile cache keys made from them — are the scope's own."""
    principal.require("read_aggregates")
    within = scoped_within(session, principal, within=query.within, as_of=query.as_of)
    require_round_in_scope(session, principal, round_id=query.round_id, as_of=query.as_of)
    return dataclasses.replace(query, within=within)


LayerQueryDep = Annotated[LayerQuery, Depends(scoped_layer_query)]


def classified_layer(
    session: Session, *, layer: str, query: LayerQuery, level: str | None = None
) -> tuple[LayerResult, Classified]:
    """The layer's figures and their classes, colours and legend."""
    spec = require_layer(layer)
    method, thresholds = query.classification(spec)
    result = compute_layer(
        session, layer=layer, as_of=query.as_of, level=level or query.level,
        within=query.within, round_id=query.round_id,
    )  # fmt: skip
    classified = classify(
        [f.value for f in result.figures], method=method, k=query.k, breaks=thresholds,
        palette=spec.palette, unit=spec.unit,
    )  # fmt: skip
    return result, classified


def layer_key(session: Session, *, layer: str, query: LayerQuery, level: str) -> str:
    """The cache key of the layer's figures on the current data epochs."""
    return cache_key(request=query.canonical(layer=layer, level=level), epochs=data_epochs(session))


def ensure_cached(session: Session, *, key: str, layer: str, query: LayerQuery, level: str) -> None:
    """Compute and store the layer's figures (and the collection's members)
    under ``key`` unless they are stored already."""
    if not is_cached(session, key=key):
        result, classified = classified_layer(session, layer=layer, query=query, level=level)
        store_figures(
            session, key=key, figures=result.figures, classes=classified.classes,
            colours=classified.colours, members=collection_members(result, classified=classified),
        )  # fmt: skip


def layer_totals(session: Session, *, layer: str, query: LayerQuery) -> dict[str, Any]:
    """The ``totals`` member of the layer's collection under ``query.within``
    at the level below it — what GET /api/layers/{layer} answers — from the
    layer cache (computed and stored on a miss)."""
    level = query.level or default_level(session, within=query.within, as_of=query.as_of)
    key = layer_key(session, layer=layer, query=query, level=level)
    ensure_cached(session, key=key, layer=layer, query=query, level=level)
    members = cached_members(session, key=key)
    assert members is not None  # stored above, in this transaction
    return dict(members["totals"], round=members["round"])


@router.get(
    "/layers/{layer}", response_class=GeoJSONResponse,
    responses={304: {"description": "Not modified (If-None-Match)"}},
    summary="A choropleth layer: one feature per area at a level, with value, class, colour and legend",
)  # fmt: skip
def layer(
    layer: str, request: Request, session: SessionDep, query: LayerQueryDep, crs: CrsDep
) -> Response:
    """Served from the layer cache: computed once per data epoch (any write to
    a table the layer reads makes a new epoch), with an ETag for ``If-None-Match``."""
    require_layer(layer)
    level = query.level or default_level(session, within=query.within, as_of=query.as_of)
    key = layer_key(session, layer=layer, query=query, level=level)
    etag = f'"{layer_etag(key=key, crs=crs.label)}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in etags_of(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    ensure_cached(session, key=key, layer=layer, query=query, level=level)
    cached = cached_layer(session, key=key, level=level, as_of=query.as_of)
    assert cached is not None  # stored above, in this transaction
    features, members = cached
    body = {
        "type": "FeatureCollection",
        "features": [
            _feature(f.figure, class_index=f.class_index, colour=f.colour, crs=crs)
            for f in features
        ],
        **members,
        "numberReturned": len(features),
    }
    return GeoJSONResponse(body, headers=headers)


def etags_of(header: str | None) -> set[str]:
    """The entity tags an ``If-None-Match`` header lists (weak ones compared as strong)."""
    if not header:
        return set()
    return {part.strip().removeprefix("W/") for part in header.split(",")}


def collection_members(result: LayerResult, *, classified: Classified) -> dict[str, Any]:
    """The collection's members besides its features: layer, level, round,
    legend, totals and the households no micro-grid holds."""
    numerator = sum(f.numerator for f in result.figures)
    denominator = sum(f.denominator for f in result.figures)
    round_ref = result.round
    return {
        "layer": {"id": result.spec.id, "title": result.spec.title, "unit": result.spec.unit},
        "level": result.level,
        "within": result.within,
        "as_of": result.as_of.isoformat(),
        "round": None if round_ref is None else {
            "id": round_ref.id, "name": round_ref.name, "area_code": round_ref.area_code,
            "start_date": round_ref.start_date.isoformat(), "end_date": round_ref.end_date.isoformat(),
        },
        "membership": result.membership,
        "legend": legend_json(classified.legend),
        "totals": {
            "households": sum(f.households for f in result.figures),
            "residents": sum(f.residents for f in result.figures),
            "numerator": numerator,
            "denominator": denominator,
            "value": _total_value(result, numerator=numerator, denominator=denominator),
        },
        "unlocated_households": result.unlocated_households,
    }  # fmt: skip


def legend_json(legend: Legend) -> dict[str, Any]:
    return {
        "method": legend.method,
        "closed": legend.closed,
        "breaks": list(legend.breaks),
        "unit": legend.unit,
        "classes": [_class_json(c) for c in legend.classes],
        "no_data": _class_json(legend.no_data),
        "notes": list(legend.notes),
    }


def _class_json(legend_class: LegendClass) -> dict[str, Any]:
    out = dataclasses.asdict(legend_class)
    for bound in ("lower", "upper"):
        if math.isnan(out[bound]):
            out[bound] = None
    return out


def _feature(
    figure: AreaFigure, *, class_index: int | None, colour: str, crs: Crs
) -> dict[str, Any]:
    if crs.is_wgs84:
        # Serialised by PostGIS already (6 decimals): passed through as it is.
        geometry: Any = orjson.Fragment(figure.geometry_geojson)
    else:
        shape = shapely.from_geojson(figure.geometry_geojson)
        geometry = geometry_to_geojson(shape, crs=crs)
    return {
        "type": "Feature",
        "id": figure.code,
        "geometry": geometry,
        "properties": {
            "code": figure.code, "name": figure.name, "level": figure.level,
            "parent": figure.parent_code, "value": figure.value,
            "numerator": figure.numerator, "denominator": figure.denominator,
            "households": figure.households, "residents": figure.residents,
            "class": class_index, "colour": colour,
        },
    }  # fmt: skip


def _total_value(result: LayerResult, *, numerator: int, denominator: int) -> float | None:
    if result.spec.value == "rate":
        return round(100.0 * numerator / denominator, 2) if denominator else None
    return float(numerator)


@router.get(
    "/hex/{layer}", response_class=GeoJSONResponse,
    summary="A layer in H3 hexagons over an area's households; small counts suppressed",
)  # fmt: skip
def hexagons(
    principal: PrincipalDep,
    layer: str,
    session: SessionDep,
    crs: CrsDep,
    as_of: AsOfDep,
    within: Annotated[
        str | None,
        Query(
            max_length=AREA_CODE_MAX,
            pattern=NO_NUL,
            description="The area whose households are binned (default: your area)",
        ),
    ] = None,
    res: Annotated[int, Query(description="H3 resolution, 5 (coarse) to 11 (fine)")] = 9,
    round_id: Annotated[int | None, Query(alias="round", description="Screening round id")] = None,
    min_count: Annotated[
        int, Query(alias="k", description="Suppress cells with a count or households below this")
    ] = DEFAULT_MIN_COUNT,
    classify_method: Annotated[
        str | None, Query(alias="classify", description=f"One of {', '.join(METHODS)}")
    ] = None,
    classes: Annotated[int, Query(description="Number of classes (2–9)")] = 5,
) -> GeoJSONResponse:
    principal.require("read_aggregates")
    if min_count < DEFAULT_MIN_COUNT and not principal.can("read_personal"):
        raise Forbidden(
            f"a {principal.account.role} account may not lower k below {DEFAULT_MIN_COUNT}:"
            " cells that small could point at a person"
        )
    spec = require_layer(layer)
    within = scoped_within(session, principal, within=within, as_of=as_of)
    require_round_in_scope(session, principal, round_id=round_id, as_of=as_of)
    facts = household_facts(session, layer=layer, as_of=as_of, within=within, round_id=round_id)
    cells = bin_households(
        lon=facts.lon, lat=facts.lat, numerator=facts.numerator, denominator=facts.denominator,
        resolution=res, min_count=min_count,
    )  # fmt: skip
    values = [_cell_value(cell, rate=spec.value == "rate") for cell in cells]
    method = classify_method or spec.default_classify
    classified = classify(
        values, method=method, k=classes,
        breaks=spec.default_breaks if method == "fixed" else None,
        palette=spec.palette, unit=spec.unit,
    )  # fmt: skip
    features = [
        {
            "type": "Feature", "id": cell.cell,
            "geometry": geometry_to_geojson(cell.polygon_4326, crs=crs),
            "properties": {
                "cell": cell.cell, "households": cell.households, "value": value,
                "numerator": cell.numerator, "denominator": cell.denominator,
                "suppressed": cell.suppressed, "class": index, "colour": colour,
            },
        }
        for cell, value, index, colour in zip(
            cells, values, classified.classes, classified.colours, strict=True
        )
    ]  # fmt: skip
    return GeoJSONResponse({
        "type": "FeatureCollection", "features": features,
        "layer": {"id": spec.id, "title": spec.title, "unit": spec.unit},
        "within": within, "as_of": as_of.isoformat(), "resolution": res, "k": min_count,
        "round": None if facts.round is None else {"id": facts.round.id, "name": facts.round.name},
        "legend": legend_json(classified.legend), "numberReturned": len(features),
    })  # fmt: skip


def _cell_value(cell: HexCell, *, rate: bool) -> float | None:
    if cell.suppressed or cell.numerator is None:
        return None
    if rate:
        return round(100.0 * cell.numerator / cell.denominator, 2) if cell.denominator else None
    return float(cell.numerator)
