"""Mapbox Vector Tiles of a layer, and the cache that makes them cheap.

A tile request names a layer the way ``/api/layers/{layer}`` does (level,
within, as_of, round, classification). Its figures are computed once per
*data epoch* — the counters in ``data_epoch`` that a trigger bumps on every
write to a table layers read — and kept in ``layer_cache``; a tile is then
one indexed query: the areas meeting the tile, joined to their cached
figures, generalised for the zoom and encoded by ``ST_AsMVT``.

The ETag of a tile is a digest of the request, the epochs and z/x/y: it
changes exactly when the tile's content can change, so a client's
``If-None-Match`` is answered from two small queries without cutting the tile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from db.layers import AreaFigure
from geo.errors import InvalidInput

TILE_EXTENT = 4096  # MVT coordinate units per tile side
TILE_BUFFER = 64  # units of geometry kept beyond the edge, so strokes meet across tiles
MAX_ZOOM = 22
WEB_MERCATOR_HALF_WORLD_M = 20037508.342789244
CACHE_RETENTION = "1 day"  # figures of older requests are dropped when new ones are stored

# One statement for every tile; pgbench runs exactly this (bench/layers.py).
# The figures are looked up per area (LATERAL, by primary key), so the plan
# never depends on statistics of a cache just written; OFFSET 0 keeps the
# planner from pushing "geom IS NOT NULL" down into the scan, which would
# simplify and clip every polygon twice. ST_Simplify keeps collapsed rings
# (preserve_collapsed) so a small area stays a dot rather than vanishing.
TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS env,
           ST_TileEnvelope(:z, :x, :y, margin => CAST(:margin AS float8)) AS wide
)
SELECT coalesce((
    SELECT ST_AsMVT(t, :layer_name, :extent, 'geom') FROM (
        SELECT ST_AsMVTGeom(ST_Simplify(a.geom_3857, :tolerance_m, true), b.env,
                            :extent, :buffer, true) AS geom,
               c.code, c.name, c.level, c.value, c.numerator, c.denominator,
               c.class, c.colour
        FROM bounds b
        JOIN area a ON a.geom_3857 && b.wide
        CROSS JOIN LATERAL (
            SELECT * FROM layer_cache lc WHERE lc.cache_key = :cache_key AND lc.code = a.code
        ) c
        WHERE a.level = :level AND a.valid_from <= :as_of
          AND (a.valid_to IS NULL OR a.valid_to > :as_of)
        OFFSET 0
    ) t WHERE t.geom IS NOT NULL
), ''::bytea)
"""


@dataclass(frozen=True)
class TileAddress:
    """A tile of the Web Mercator quad tree (XYZ, y from the north)."""

    z: int
    x: int
    y: int

    @classmethod
    def checked(cls, *, z: int, x: int, y: int) -> TileAddress:
        if not 0 <= z <= MAX_ZOOM:
            raise InvalidInput(f"zoom {z}: give 0 to {MAX_ZOOM}")
        side = 2**z
        if not (0 <= x < side and 0 <= y < side):
            raise InvalidInput(f"tile {z}/{x}/{y}: at zoom {z}, x and y run from 0 to {side - 1}")
        return cls(z=z, x=x, y=y)

    @property
    def tolerance_m(self) -> float:
        """Half an MVT unit in metres: below what the tile can show, so
        simplification by it changes nothing visible (generalised per zoom)."""
        return float(WEB_MERCATOR_HALF_WORLD_M * 2 / (2**self.z * TILE_EXTENT) / 2)


def data_epochs(session: Session) -> str:
    """The epochs of every table layers read, as one short text."""
    rows = session.execute(text("SELECT table_name, n FROM data_epoch ORDER BY table_name")).all()
    return ",".join(f"{name}:{n}" for name, n in rows)


def cache_key(*, request: dict[str, object], epochs: str) -> str:
    """Digest of a layer request (layer, level, within, as_of, round,
    classification) and the data epochs: equal keys, equal figures."""
    canonical = json.dumps({"request": request, "epochs": epochs}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def tile_etag(*, key: str, tile: TileAddress) -> str:
    return hashlib.sha256(f"{key}/{tile.z}/{tile.x}/{tile.y}".encode()).hexdigest()[:32]


def layer_etag(*, key: str, crs: str) -> str:
    """ETag of a GeoJSON layer: its figures' key and the output CRS."""
    return hashlib.sha256(f"{key}/geojson/{crs}".encode()).hexdigest()[:32]


def is_cached(session: Session, *, key: str) -> bool:
    return (
        session.execute(
            # The members are stored for every key, even a layer with no area.
            text("SELECT 1 FROM layer_cache_meta WHERE cache_key = :key"), {"key": key}
        ).first()
        is not None
    )


def store_figures(
    session: Session,
    *,
    key: str,
    figures: Sequence[AreaFigure],
    classes: Sequence[int | None],
    colours: Sequence[str],
    members: dict[str, Any],
) -> None:
    """Keep a layer's figures and its collection ``members`` (legend, round,
    totals…) under ``key`` (idempotent: a concurrent request storing the same
    key stores them once); drop those older than CACHE_RETENTION."""
    for table in ("layer_cache", "layer_cache_meta"):
        session.execute(
            text(f"DELETE FROM {table} WHERE created_at < now() - interval '{CACHE_RETENTION}'")
        )
    session.execute(
        text(
            "INSERT INTO layer_cache (cache_key, code, name, level, value, numerator, denominator,"
            " class, colour, parent_code, households, residents)"
            " SELECT :key, * FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]),"
            " CAST(:levels AS text[]), CAST(:values AS float8[]), CAST(:nums AS bigint[]),"
            " CAST(:dens AS bigint[]), CAST(:classes AS smallint[]), CAST(:colours AS text[]),"
            " CAST(:parents AS text[]), CAST(:households AS bigint[]), CAST(:residents AS bigint[]))"
            " ON CONFLICT DO NOTHING"
        ),
        {
            "key": key,
            "codes": [f.code for f in figures],
            "names": [f.name for f in figures],
            "levels": [f.level for f in figures],
            "values": [f.value for f in figures],
            "nums": [f.numerator for f in figures],
            "dens": [f.denominator for f in figures],
            "classes": list(classes),
            "colours": list(colours),
            "parents": [f.parent_code for f in figures],
            "households": [f.households for f in figures],
            "residents": [f.residents for f in figures],
        },
    )
    session.execute(
        text(
            "INSERT INTO layer_cache_meta (cache_key, members) VALUES (:key, CAST(:members AS jsonb))"
            " ON CONFLICT DO NOTHING"
        ),
        {"key": key, "members": json.dumps(members, ensure_ascii=False, default=str)},
    )


@dataclass(frozen=True)
class CachedFeature:
    """One area of a cached layer, its geometry already GeoJSON text (6 decimals)."""

    figure: AreaFigure
    class_index: int | None
    colour: str


def cached_members(session: Session, *, key: str) -> dict[str, Any] | None:
    """The collection's members (legend, round, totals…) stored under ``key``; None when not cached."""
    row = session.execute(
        text("SELECT members FROM layer_cache_meta WHERE cache_key = :key"), {"key": key}
    ).first()
    return None if row is None else dict(row[0])


def cached_layer(
    session: Session, *, key: str, level: str, as_of: object
) -> tuple[list[CachedFeature], dict[str, Any]] | None:
    """The cached figures of ``key`` with their geometry in force on ``as_of``,
    ordered by code, and the collection's members; None when not cached."""
    members = cached_members(session, key=key)
    if members is None:
        return None
    rows = session.execute(
        text(
            "SELECT c.code, c.name, c.level, c.parent_code, c.households, c.residents,"
            " c.numerator, c.denominator, c.value, c.class, c.colour, ST_AsGeoJSON(a.geom, 6)"
            " FROM layer_cache c JOIN area a ON a.code = c.code AND a.level = :level"
            " AND a.valid_from <= :as_of AND (a.valid_to IS NULL OR a.valid_to > :as_of)"
            " WHERE c.cache_key = :key ORDER BY c.code"
        ),
        {"key": key, "level": level, "as_of": as_of},
    ).all()
    features = [
        CachedFeature(
            figure=AreaFigure(
                code=r[0], name=r[1], level=r[2], parent_code=r[3], households=int(r[4]),
                residents=int(r[5]), numerator=int(r[6]), denominator=int(r[7]),
                value=None if r[8] is None else float(r[8]), geometry_geojson=str(r[11]),
            ),
            class_index=None if r[9] is None else int(r[9]), colour=str(r[10]),
        )
        for r in rows
    ]  # fmt: skip
    return features, members


def tile_parameters(
    *, key: str, tile: TileAddress, layer_name: str, level: str, as_of: object
) -> dict[str, object]:
    """The bound parameters of ``TILE_SQL`` for one tile."""
    return {
        "z": tile.z, "x": tile.x, "y": tile.y, "margin": TILE_BUFFER / TILE_EXTENT,
        "extent": TILE_EXTENT, "buffer": TILE_BUFFER, "tolerance_m": tile.tolerance_m,
        "layer_name": layer_name, "cache_key": key, "level": level, "as_of": as_of,
    }  # fmt: skip


def render_tile(
    session: Session, *, key: str, tile: TileAddress, layer_name: str, level: str, as_of: object
) -> bytes:
    """The MVT bytes (uncompressed) of one tile; empty when no area meets it."""
    params = tile_parameters(key=key, tile=tile, layer_name=layer_name, level=level, as_of=as_of)
    return bytes(session.execute(text(TILE_SQL), params).scalar_one())
