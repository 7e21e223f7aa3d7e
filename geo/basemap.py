"""Basemaps under the wall map: none (the default), Tianditu with a key, a
local XYZ source, or a raster PMTiles archive served by Wangge itself.

Government networks often have no internet, so the default is no basemap at
all and every other kind can be served from inside the network. What the page
needs is one small description (``BasemapConfig.client``); a PMTiles archive
is read here, tile by tile, so no JavaScript library has to understand it.

The datum matters: Tianditu is CGCS2000 (the same as WGS84 at this scale), but
many local tile sets are cut from GCJ-02 maps. With ``crs="gcj02"`` the page
asks the API for every geometry in GCJ-02 so the areas sit on the streets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import TileType

from geo.errors import InvalidInput

BasemapKind = Literal["none", "tianditu", "xyz", "pmtiles"]
BasemapCrs = Literal["wgs84", "gcj02"]

# Tianditu's Web Mercator WMTS (vector map and its annotation layer), eight hosts t0–t7.
TIANDITU_LAYERS = ("vec", "cva")
TIANDITU_TEMPLATE = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)
TIANDITU_ATTRIBUTION = "底图: 天地图 Tianditu"
PMTILES_PATH = "/basemap/{z}/{x}/{y}"  # where Wangge serves the archive's tiles

_RASTER_MEDIA_TYPES = {
    TileType.PNG: "image/png",
    TileType.JPEG: "image/jpeg",
    TileType.WEBP: "image/webp",
    TileType.AVIF: "image/avif",
}


class PmtilesArchive:
    """A raster PMTiles archive opened for reading (memory-mapped, read-only).

    Refuses, with the reason, a file that is missing, not PMTiles v3, or holds
    vector tiles (the wall map draws raster basemaps only).
    """

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise InvalidInput(f"basemap PMTiles file {str(path)!r} does not exist")
        self.path = path
        self._file = path.open("rb")
        try:
            # The pmtiles package ships no type hints.
            self._reader = Reader(MmapSource(self._file))  # type: ignore[no-untyped-call]
            header = self._reader.header()  # type: ignore[no-untyped-call]
        except Exception as exc:  # the library raises bare Exceptions (bad magic, version)
            self._file.close()
            raise InvalidInput(
                f"basemap {str(path)!r} is not a PMTiles v3 archive: {exc}"
            ) from None
        tile_type = header["tile_type"]
        if tile_type not in _RASTER_MEDIA_TYPES:
            self._file.close()
            raise InvalidInput(
                f"basemap {str(path)!r} holds {getattr(tile_type, 'name', tile_type)} tiles;"
                " the wall map draws raster (PNG, JPEG, WebP, AVIF) basemaps only"
            )
        self.media_type = _RASTER_MEDIA_TYPES[tile_type]
        self.min_zoom = int(header["min_zoom"])
        self.max_zoom = int(header["max_zoom"])

    def tile(self, *, z: int, x: int, y: int) -> bytes | None:
        """The tile's bytes, or None when the archive has no such tile."""
        if not (0 <= z <= 30 and 0 <= x < 2**z and 0 <= y < 2**z):
            return None
        data = self._reader.get(z, x, y)  # type: ignore[no-untyped-call]
        return None if data is None else bytes(data)

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class BasemapConfig:
    """A basemap chosen by the operator; ``client`` is what the page is told."""

    kind: BasemapKind = "none"
    crs: BasemapCrs = "wgs84"
    tiles: tuple[str, ...] = ()  # URL templates with {z} {x} {y} (and {s} for subdomains)
    subdomains: str = ""
    attribution: str = ""
    max_zoom: int = 18

    def client(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "crs": self.crs, "tiles": list(self.tiles),
            "subdomains": self.subdomains, "attribution": self.attribution,
            "max_zoom": self.max_zoom,
        }  # fmt: skip


def basemap_config(
    *,
    kind: BasemapKind,
    crs: BasemapCrs = "wgs84",
    tianditu_key: str | None = None,
    url: str | None = None,
    archive: PmtilesArchive | None = None,
    attribution: str = "",
    max_zoom: int = 18,
) -> BasemapConfig:
    """The basemap of ``kind``, refused with the reason when what it needs is
    missing: Tianditu needs a key (and is CGCS2000, never GCJ-02), XYZ a URL
    template with {z}, {x} and {y}, PMTiles an opened archive."""
    if kind == "none":
        return BasemapConfig()
    if kind == "tianditu":
        if not tianditu_key:
            raise InvalidInput("basemap tianditu needs a key: set WANGGE_BASEMAP_TIANDITU_KEY")
        if crs != "wgs84":
            raise InvalidInput("Tianditu is CGCS2000 (WGS84 at this scale), not GCJ-02")
        tiles = tuple(
            TIANDITU_TEMPLATE.format(layer=layer, key=tianditu_key) for layer in TIANDITU_LAYERS
        )
        return BasemapConfig(
            kind="tianditu", tiles=tiles, subdomains="01234567",
            attribution=attribution or TIANDITU_ATTRIBUTION, max_zoom=min(max_zoom, 18),
        )  # fmt: skip
    if kind == "xyz":
        if not url or not all(part in url for part in ("{z}", "{x}", "{y}")):
            raise InvalidInput(
                "basemap xyz needs WANGGE_BASEMAP_URL, a template with {z}, {x} and {y},"
                f" e.g. /tiles/{{z}}/{{x}}/{{y}}.png (got {url!r})"
            )
        return BasemapConfig(
            kind="xyz", crs=crs, tiles=(url,), attribution=attribution, max_zoom=max_zoom
        )
    if kind == "pmtiles":
        if archive is None:
            raise InvalidInput("basemap pmtiles needs WANGGE_BASEMAP_PMTILES, the archive's path")
        return BasemapConfig(
            kind="pmtiles", crs=crs, tiles=(PMTILES_PATH,), attribution=attribution,
            max_zoom=archive.max_zoom,
        )  # fmt: skip
    raise InvalidInput(f"basemap {kind!r}: choose none, tianditu, xyz or pmtiles")
