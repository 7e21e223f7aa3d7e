"""Boundary import on real PostGIS: all or nothing, versions, real county files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyproj import Geod
from shapely.geometry import box, mapping, shape
from sqlalchemy import text

from db import boundaries as boundaries_module
from db.areas import get_area
from db.boundaries import BoundaryImportRequest, BoundaryRejected, import_boundary_file
from geo.errors import InvalidInput, NotFound
from tests.conftest import count_rows

GEOD = Geod(ellps="WGS84")
CAP = 50 * 1024 * 1024


def write_geojson(path: Path, features: list[dict]) -> Path:
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    return path


def square_feature(code: str, name: str, *, x0: float, y0: float, size: float) -> dict:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": name},
        "geometry": mapping(box(x0, y0, x0 + size, y0 + size)),
    }


def run_import(session, path: Path, **options):
    request = BoundaryImportRequest.build(**options)
    return import_boundary_file(
        session, path=path, request=request, max_bytes=CAP, max_inflated_bytes=CAP
    )


@pytest.fixture
def county(session, tmp_path):
    """A 0.1° square county 990001, in force since 2020-01-01."""
    path = write_geojson(
        tmp_path / "county.geojson",
        [square_feature("990001", "测试县", x0=112.0, y0=22.0, size=0.1)],
    )
    run_import(session, path, level="county", valid_from=dt.date(2020, 1, 1))
    return "990001"


def test_import_writes_every_feature_with_its_metadata(session, county, tmp_path) -> None:
    path = write_geojson(
        tmp_path / "towns.geojson",
        [
            square_feature("990001100", "东镇", x0=112.0, y0=22.0, size=0.05),
            square_feature("990001101", "西镇", x0=112.05, y0=22.0, size=0.05),
        ],
    )
    report = run_import(session, path, level="township", parent_code=county)
    assert report.applied and sorted(report.created) == ["990001100", "990001101"]
    # The two squares leave the upper half of the county uncovered: a gap warning with its area.
    gaps = [i for i in report.validation.warnings if i.rule == "gap"]
    assert len(gaps) == 1
    expected_m2 = abs(GEOD.geometry_area_perimeter(box(112.0, 22.05, 112.1, 22.1))[0])
    assert gaps[0].measure == pytest.approx(expected_m2, rel=0.01)
    town = get_area(session, code="990001100", as_of=dt.date.today())
    assert (town.level, town.parent_code, town.name) == ("township", county, "东镇")
    row = session.execute(text("SELECT county_code FROM area WHERE code = '990001100'")).one()
    assert row.county_code == county


def test_rejected_file_writes_nothing_and_reports_every_reason(session, county, tmp_path) -> None:
    before = count_rows(session, "area")
    path = write_geojson(
        tmp_path / "bad.geojson",
        [
            square_feature("990001100", "东镇", x0=112.0, y0=22.0, size=0.06),
            square_feature("990001101", "西镇", x0=112.05, y0=22.0, size=0.05),  # overlaps 东镇
            square_feature("990001102", "外镇", x0=112.2, y0=22.0, size=0.01),  # outside the county
            square_feature("990001102", "重码镇", x0=112.0, y0=22.07, size=0.01),  # duplicate code
        ],
    )
    with pytest.raises(BoundaryRejected) as caught:
        run_import(session, path, level="township", parent_code=county)
    rules = {issue.rule for issue in caught.value.report.validation.errors}
    assert {"sibling_overlap", "outside_parent", "duplicate_code"} <= rules
    assert count_rows(session, "area") == before


def test_failure_half_way_through_writing_leaves_nothing(
    session, county, tmp_path, monkeypatch
) -> None:
    """A crash after some rows were inserted must roll all of them back."""
    path = write_geojson(
        tmp_path / "towns.geojson",
        [
            square_feature(f"99000110{i}", f"镇{i}", x0=112.0 + 0.02 * i, y0=22.0, size=0.02)
            for i in range(5)
        ],
    )
    before = count_rows(session, "area")
    real_county_code = boundaries_module._county_code
    calls = {"n": 0}

    def fail_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real_county_code(*args, **kwargs)

    monkeypatch.setattr(boundaries_module, "_county_code", fail_on_third)
    savepoint = session.begin_nested()  # the caller's transaction, as session_scope gives it
    with pytest.raises(RuntimeError):
        run_import(session, path, level="township", parent_code=county)
    savepoint.rollback()
    assert calls["n"] == 3  # two rows had been inserted before the failure
    assert count_rows(session, "area") == before


def test_dry_run_writes_nothing(session, county, tmp_path) -> None:
    before = count_rows(session, "area")
    path = write_geojson(
        tmp_path / "t.geojson", [square_feature("990001100", "东镇", x0=112.0, y0=22.0, size=0.05)]
    )
    report = run_import(session, path, level="township", parent_code=county, dry_run=True)
    assert report.validation.ok and not report.applied
    assert count_rows(session, "area") == before


def test_unknown_parent_and_wrong_level_are_refused(session, county, tmp_path) -> None:
    path = write_geojson(
        tmp_path / "t.geojson", [square_feature("990001100", "东镇", x0=112.0, y0=22.0, size=0.05)]
    )
    with pytest.raises(NotFound, match="parent area '999999' does not exist"):
        run_import(session, path, level="township", parent_code="999999")
    with pytest.raises(InvalidInput, match="a city cannot lie under 990001"):
        run_import(session, path, level="city", parent_code=county)


def test_new_boundary_version_keeps_history(session, county, tmp_path) -> None:
    first = write_geojson(
        tmp_path / "a.geojson", [square_feature("990001100", "东镇", x0=112.0, y0=22.0, size=0.05)]
    )
    second = write_geojson(
        tmp_path / "b.geojson", [square_feature("990001100", "东镇", x0=112.0, y0=22.0, size=0.08)]
    )
    run_import(session, first, level="township", parent_code=county, valid_from=dt.date(2020, 2, 1))
    report = run_import(
        session, second, level="township", parent_code=county, valid_from=dt.date(2020, 3, 1)
    )
    assert report.replaced == ["990001100"]
    old = get_area(session, code="990001100", as_of=dt.date(2020, 2, 15))
    new = get_area(session, code="990001100", as_of=dt.date(2020, 3, 15))
    assert (old.version, new.version) == (1, 2)
    assert new.area_km2 == pytest.approx(old.area_km2 * (0.08 / 0.05) ** 2, rel=0.01)
    with pytest.raises(NotFound):
        get_area(session, code="990001100", as_of=dt.date(2020, 1, 1))


# -- real data from ../shared/data/boundaries ------------------------------------------
def _centroids(session, codes: list[str]) -> dict[str, tuple[float, float]]:
    rows = session.execute(
        text(
            "SELECT code, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM area WHERE code = ANY(:c) AND valid_to IS NULL"
        ),
        {"c": codes},
    ).all()
    return {code: (x, y) for code, x, y in rows}


@pytest.mark.parametrize("city", ["taizhou_331000", "yunfu_445300"])
def test_gcj02_county_files_land_where_the_wgs84_files_are(
    session, shared_boundaries, city
) -> None:
    """Import the GCJ-02 file converted on the way in, then the WGS84 file as a
    new version a day later; every county's two centroids agree within 5 m."""
    gcj = run_import(session, shared_boundaries / f"{city}_counties_gcj02.geojson", level="county",
                     crs="gcj02", valid_from=dt.date(2020, 1, 1))  # fmt: skip
    codes = gcj.created
    assert len(codes) >= 5
    from_gcj = _centroids(session, codes)
    wgs = run_import(session, shared_boundaries / f"{city}_counties_wgs84.geojson", level="county",
                     valid_from=dt.date(2020, 1, 2))  # fmt: skip
    assert sorted(wgs.replaced) == sorted(codes)
    from_wgs = _centroids(session, codes)
    for code in codes:
        _, _, distance_m = GEOD.inv(*from_gcj[code], *from_wgs[code])
        assert distance_m < 5.0, (code, distance_m)
    # Without conversion the same file would sit ~0.6 km away: the test can tell.
    raw = shape(
        json.loads((shared_boundaries / f"{city}_counties_gcj02.geojson").read_text())["features"][
            0
        ]["geometry"]
    )
    code0 = str(
        json.loads((shared_boundaries / f"{city}_counties_gcj02.geojson").read_text())["features"][
            0
        ]["properties"]["adcode"]
    )
    _, _, offset_m = GEOD.inv(raw.centroid.x, raw.centroid.y, *from_wgs[code0])
    assert offset_m > 300


def test_xinxing_townships_pass_validation_under_their_county(session, shared_boundaries) -> None:
    run_import(
        session,
        shared_boundaries / "yunfu_445300_counties_gcj02.geojson",
        level="county",
        crs="gcj02",
    )
    report = run_import(
        session, shared_boundaries / "xinxing_445321_towns_SYNTHETIC_voronoi_gcj02.geojson",
        level="township", parent_code="445321", crs="gcj02",
    )  # fmt: skip
    assert report.applied and len(report.created) == 12
    assert report.validation.ok
    county = get_area(session, code="445321", as_of=dt.date.today())
    assert county.children == 12
    synthetic = session.execute(
        text(
            "SELECT bool_and(synthetic) FROM area WHERE parent_code = '445321' AND valid_to IS NULL"
        )
    ).scalar_one()
    assert synthetic is True


# -- other formats ------------------------------------------------------------------------
def write_layer(path: Path, features: list[dict], *, driver: str, crs: str = "EPSG:4326") -> Path:
    """Write features with GDAL (pyogrio), as a desktop GIS would."""
    import numpy as np
    import shapely
    from pyogrio.raw import write

    geoms = np.array([shapely.to_wkb(shape(f["geometry"])) for f in features], dtype=object)
    fields = [
        np.array([f["properties"][k] for f in features], dtype=object) for k in ("code", "name")
    ]
    write(str(path), geometry=geoms, field_data=fields, fields=["code", "name"], driver=driver,
          geometry_type="Polygon", crs=crs, encoding="UTF-8")  # fmt: skip
    return path


def test_geopackage_import(session, county, tmp_path) -> None:
    path = write_layer(
        tmp_path / "towns.gpkg",
        [square_feature("990001100", "东镇", x0=112.0, y0=22.0, size=0.05)],
        driver="GPKG",
    )
    report = run_import(session, path, level="township", parent_code=county)
    assert report.applied and report.created == ["990001100"]


def test_shapefile_with_siblings_and_its_projected_crs(session, county, tmp_path) -> None:
    """A .shp beside its .shx/.dbf/.prj in a projected CRS (Web Mercator) is
    read in its declared CRS and lands where the lon/lat square would."""
    from geo.crs import from_wgs84, parse_crs

    lonlat = box(112.0, 22.0, 112.05, 22.05)
    mercator = from_wgs84(lonlat, crs=parse_crs("EPSG:3857"))
    feature = {"type": "Feature", "properties": {"code": "990001100", "name": "东镇"},
               "geometry": mapping(mercator)}  # fmt: skip
    path = write_layer(tmp_path / "towns.shp", [feature], driver="ESRI Shapefile", crs="EPSG:3857")
    report = run_import(session, path, level="township", parent_code=county)
    assert report.crs == "EPSG:3857" and report.applied
    stored = get_area(session, code="990001100", as_of=dt.date.today()).geom_4326
    assert stored.symmetric_difference(lonlat).area < 1e-10
    (tmp_path / "towns.dbf").unlink()
    with pytest.raises(InvalidInput, match=r"needs its \.dbf"):
        run_import(session, path, level="township", parent_code=county)
