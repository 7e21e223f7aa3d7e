"""Vector tiles of the layers: ``/api/tiles/{layer}/{z}/{x}/{y}.mvt``.

Same figures, classes and colours as ``/api/layers/{layer}`` with the same
query; geometry generalised per zoom; ETag with ``If-None-Match`` → 304; gzip
when the client accepts it. Recently cut tiles are kept in memory by ETag,
which changes whenever the data under the tile can have.

Tiles are aggregates (``read_aggregates``) of the account's areas: the query
is resolved by ``api.routes.layers.scoped_layer_query`` before anything else,
so ``within`` (the account's own area when none is asked for) is part of the
cache key and the ETag — one scope's figures are never served to another.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict

from fastapi import APIRouter, Request, Response

from api.deps import SessionDep
from api.routes.layers import LayerQueryDep, ensure_cached, etags_of, layer_key
from db.layers import default_level, require_layer
from db.tiles import (
    TileAddress,
    render_tile,
    tile_etag,
)

router = APIRouter(prefix="/api", tags=["tiles"])

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"


class TileMemory:
    """The last ``capacity`` tiles cut, gzipped, by ETag (thread-safe LRU)."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._tiles: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str) -> bytes | None:
        with self._lock:
            tile = self._tiles.get(etag)
            if tile is not None:
                self._tiles.move_to_end(etag)
            return tile

    def put(self, etag: str, tile: bytes) -> None:
        with self._lock:
            self._tiles[etag] = tile
            self._tiles.move_to_end(etag)
            while len(self._tiles) > self.capacity:
                self._tiles.popitem(last=False)


MEMORY = TileMemory()


@router.get(
    "/tiles/{layer}/{z}/{x}/{y}.mvt",
    response_class=Response,
    responses={200: {"content": {MVT_MEDIA_TYPE: {}}}, 304: {"description": "Not modified"}},
    summary="A layer as a Mapbox Vector Tile (EPSG:3857 XYZ)",
)
def tile(
    layer: str, z: int, x: int, y: int, request: Request, session: SessionDep, query: LayerQueryDep
) -> Response:
    spec = require_layer(layer)
    address = TileAddress.checked(z=z, x=x, y=y)
    level = query.level or default_level(session, within=query.within, as_of=query.as_of)
    key = layer_key(session, layer=layer, query=query, level=level)
    etag = f'"{tile_etag(key=key, tile=address)}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if etag in etags_of(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    packed = MEMORY.get(etag)
    if packed is None:
        ensure_cached(session, key=key, layer=layer, query=query, level=level)
        raw = render_tile(
            session, key=key, tile=address, layer_name=spec.id, level=level, as_of=query.as_of
        )
        packed = gzip.compress(raw, compresslevel=6)
        MEMORY.put(etag, packed)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=MVT_MEDIA_TYPE, headers=headers)
    return Response(gzip.decompress(packed), media_type=MVT_MEDIA_TYPE, headers=headers)
