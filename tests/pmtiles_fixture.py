"""Real PMTiles archives for the basemap tests: every tile of a few zoom levels
over an area, each a genuine 256×256 PNG (a solid colour per zoom level, so a
test can tell which tile the browser drew)."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

TILE_PX = 256


def solid_png(*, rgb: tuple[int, int, int], size_px: int = TILE_PX) -> bytes:
    """A valid PNG of one colour (8-bit RGB, no interlace)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * size_px  # filter type 0, then the pixels
    header = struct.pack(">IIBBBBB", size_px, size_px, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size_px))
        + chunk(b"IEND", b"")
    )


def tile_xy(*, lon: float, lat: float, z: int) -> tuple[int, int]:
    """The Web Mercator (XYZ) tile holding lon/lat at zoom z."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def zoom_colour(z: int) -> tuple[int, int, int]:
    return (40 + 9 * z, 120, 200 - 6 * z)


def write_raster_pmtiles(
    path: Path,
    *,
    bbox_lonlat: tuple[float, float, float, float],
    zooms: range,
    tile_type: TileType = TileType.PNG,
) -> dict[tuple[int, int, int], bytes]:
    """Write every tile over ``bbox_lonlat`` at ``zooms``; return them by (z, x, y)."""
    min_lon, min_lat, max_lon, max_lat = bbox_lonlat
    tiles: dict[tuple[int, int, int], bytes] = {}
    for z in zooms:
        x0, y0 = tile_xy(lon=min_lon, lat=max_lat, z=z)
        x1, y1 = tile_xy(lon=max_lon, lat=min_lat, z=z)
        png = solid_png(rgb=zoom_colour(z))
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                tiles[(z, x, y)] = png
    with path.open("wb") as sink:
        writer = Writer(sink)
        for (z, x, y), data in sorted(tiles.items(), key=lambda item: zxy_to_tileid(*item[0])):
            writer.write_tile(zxy_to_tileid(z, x, y), data)
        writer.finalize(
            {
                "tile_type": tile_type, "tile_compression": Compression.NONE,
                "min_lon_e7": int(min_lon * 1e7), "min_lat_e7": int(min_lat * 1e7),
                "max_lon_e7": int(max_lon * 1e7), "max_lat_e7": int(max_lat * 1e7),
            },
            {"attribution": "test basemap"},
        )  # fmt: skip
    return tiles
