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
TILE_SQL = """
WITH bounds AS (
    SELECT ST_TileEnvelope(:z, :x, :y) AS env,
           ST_TileEnvelope(:z, :x, :y, margin => CAST(:margin AS float8)) AS wide
)
SELECT coalesce((
    SELECT ST_AsMVT(t, :layer_name, :extent, 'geom') FROM (
        SELECT ST_AsMVTGeom(ST_SimplifyPreserveTopology(a.geom_3857, :tolerance_m), b.env,
                            :extent, :buffer, true) AS geom,
               c.code, c.name, c.level, c.value, c.numerator, c.denominator,
               c.class, c.colour
        FROM bounds b
        JOIN area a ON a.geom_3857 && b.wide
        JOIN layer_cache c ON c.cache_key = :cache_key AND c.code = a.code
        WHERE a.level = :level AND a.valid_from <= :as_of
          AND (a.valid_to IS NULL OR a.valid_to > :as_of)
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


def is_cached(session: Session, *, key: str) -> bool:
    return (
        session.execute(
            text("SELECT 1 FROM layer_cache WHERE cache_key = :key LIMIT 1"), {"key": key}
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
) -> None:
    """Keep a layer's figures under ``key`` (idempotent: a concurrent request
    storing the same key stores the same rows once); drop stale ones."""
    session.execute(
        text(f"DELETE FROM layer_cache WHERE created_at < now() - interval '{CACHE_RETENTION}'")
    )
    session.execute(
        text(
            "INSERT INTO layer_cache (cache_key, code, name, level, value, numerator, denominator,"
            " class, colour)"
            " SELECT :key, * FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]),"
            " CAST(:levels AS text[]), CAST(:values AS float8[]), CAST(:nums AS bigint[]),"
            " CAST(:dens AS bigint[]), CAST(:classes AS smallint[]), CAST(:colours AS text[]))"
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
        },
    )


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
