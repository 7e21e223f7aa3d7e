"""The standard address registry import and the reassignment that boundary
and address changes cause, on real PostGIS (each test rolled back)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pytest
from pyproj import Geod
from shapely.geometry import Point, box, mapping
from sqlalchemy import text

from db.addresses import AddressImportRejected, import_addresses
from db.boundaries import BoundaryImportRequest, import_boundary_file
from geo.crs import GCJ02, WGS84, from_wgs84

GEOD = Geod(ellps="WGS84")
CAP = 50 * 1024 * 1024
HEADERS = [
    "地址编码",
    "乡镇街道",
    "社区村",
    "道路",
    "门牌号",
    "小区",
    "楼栋",
    "标准地址",
    "经度",
    "纬度",
]


def boundaries(
    session, tmp_path: Path, name: str, features: list[tuple[str, str, tuple]], **options
):
    path = tmp_path / f"{name}.geojson"
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"code": c, "name": n}, "geometry": mapping(box(*b))} for c, n, b in features
        ]}),
        encoding="utf-8",
    )  # fmt: skip
    request = BoundaryImportRequest.build(**options)
    return import_boundary_file(
        session, path=path, request=request, max_bytes=CAP, max_inflated_bytes=CAP
    )


@pytest.fixture
def county(session, tmp_path):
    """County 990001 (0.1° square) with two micro-grids splitting its west half at lon 112.02."""
    boundaries(
        session,
        tmp_path,
        "c",
        [("990001", "测试县", (112.0, 22.0, 112.1, 22.1))],
        level="county",
        valid_from=dt.date(2020, 1, 1),
    )
    boundaries(
        session, tmp_path, "m",
        [("990001M1", "一微网格", (112.0, 22.0, 112.02, 22.05)), ("990001M2", "二微网格", (112.02, 22.0, 112.05, 22.05))],
        level="microgrid", parent_code="990001", valid_from=dt.date(2020, 1, 1),
    )  # fmt: skip
    return "990001"


def write_csv(path: Path, rows: list[list[object]]) -> Path:
    import csv

    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(rows)
    return path


def row(code: str, lon: float, lat: float, number: str = "1号") -> list[object]:
    return [
        code,
        "东镇",
        "东社区",
        "人民路",
        number,
        "",
        "",
        f"测试县东镇东社区人民路{number}",
        lon,
        lat,
    ]


def test_csv_registry_writes_buildings_with_their_county(session, county, tmp_path) -> None:
    path = write_csv(
        tmp_path / "地址.csv", [row("B1", 112.01, 22.01), row("B2", 112.03, 22.01, "2号")]
    )
    report = import_addresses(session, path=path, crs=WGS84)
    assert (report.created, report.updated, report.rejected) == (2, 0, [])
    stored = session.execute(
        text("SELECT code, county_code, road, house_number FROM building ORDER BY code")
    ).all()
    assert [tuple(r) for r in stored] == [
        ("B1", county, "人民路", "1号"),
        ("B2", county, "人民路", "2号"),
    ]
    again = import_addresses(session, path=path, crs=WGS84)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_xlsx_and_bad_rows_all_or_nothing(session, county, tmp_path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    sheet.append(row("B1", 112.01, 22.01))
    sheet.append(
        ["", "东镇", "东社区", "人民路", "3号", "", "", "x", "abc", 22.0]
    )  # no code, lon not a number
    sheet.append(row("B9", 113.5, 22.01))  # outside every county
    sheet.append(row("B1", 112.01, 22.02))  # code repeated
    path = tmp_path / "地址.xlsx"
    book.save(path)
    with pytest.raises(AddressImportRejected) as refused:
        import_addresses(session, path=path, crs=WGS84)
    rejected = {item["row"]: " ".join(item["reasons"]) for item in refused.value.report.rejected}
    assert sorted(rejected) == [3, 4, 5]
    assert "code: missing" in rejected[3] and "not a number" in rejected[3]
    assert "no county boundary" in rejected[4] and "repeats row 2" in rejected[5]
    assert session.execute(text("SELECT count(*) FROM building")).scalar_one() == 0


def test_geojson_points_in_gcj02_land_within_a_metre(session, county, tmp_path) -> None:
    truth = Point(112.0123, 22.0234)
    shifted = from_wgs84(truth, crs=GCJ02)
    path = tmp_path / "地址.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"地址编码": "G1", "标准地址": "测试县东镇东社区人民路9号"}, "geometry": mapping(shifted)}
    ]}), encoding="utf-8")  # fmt: skip
    import_addresses(session, path=path, crs=GCJ02)
    lon, lat = session.execute(
        text("SELECT ST_X(geom), ST_Y(geom) FROM building WHERE code = 'G1'")
    ).one()
    assert GEOD.inv(lon, lat, truth.x, truth.y)[2] < 1.0


def add_households(session, county: str, points: list[tuple[float, float]]) -> list[int]:
    ids = []
    for i, (lon, lat) in enumerate(points):
        ids.append(session.execute(
            text("INSERT INTO household (county_code, address_key, geom) VALUES (:c, :k, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) RETURNING id"),
            {"c": county, "k": f"a|test{i}", "x": lon, "y": lat},
        ).scalar_one())  # fmt: skip
    from db.assign import assign_households

    assign_households(session.connection(), county_code=county)
    return ids


def microgrids(session, ids: list[int]) -> list[str | None]:
    rows = dict(
        session.execute(
            text("SELECT id, microgrid_code FROM household WHERE id = ANY(:i)"), {"i": ids}
        ).all()
    )
    return [rows[i] for i in ids]


def test_a_boundary_change_reassigns_exactly_the_households_it_moves(
    session, county, tmp_path
) -> None:
    # Four households: two deep in M1 and M2, one in the strip 112.02–112.03 that moves, one outside both.
    ids = add_households(
        session, county, [(112.01, 22.01), (112.04, 22.01), (112.025, 22.01), (112.08, 22.08)]
    )
    assert microgrids(session, ids) == ["990001M1", "990001M2", "990001M2", None]
    report = boundaries(
        session, tmp_path, "m2",
        [("990001M1", "一微网格", (112.0, 22.0, 112.03, 22.05)), ("990001M2", "二微网格", (112.03, 22.0, 112.05, 22.05))],
        level="microgrid", parent_code=county, valid_from=dt.date(2020, 3, 1),
    )  # fmt: skip
    assert report.households_reassigned == 1
    assert microgrids(session, ids) == ["990001M1", "990001M2", "990001M1", None]
    # An independent recount by point-in-polygon agrees household by household.
    recount = dict(session.execute(text(
        "SELECT h.id, (SELECT a.code FROM area a WHERE a.level = 'microgrid' AND a.valid_to IS NULL"
        " AND ST_Covers(a.geom, h.geom) ORDER BY a.code LIMIT 1) FROM household h WHERE h.id = ANY(:i)"
    ), {"i": ids}).all())  # fmt: skip
    assert [recount[i] for i in ids] == microgrids(session, ids)


def test_a_moved_building_takes_its_households_along(session, county, tmp_path) -> None:
    import_addresses(
        session, path=write_csv(tmp_path / "a.csv", [row("B1", 112.01, 22.01)]), crs=WGS84
    )
    building = session.execute(text("SELECT id FROM building WHERE code = 'B1'")).scalar_one()
    household = session.execute(text(
        "INSERT INTO household (county_code, building_id, address_key, geom, geocode_level, microgrid_code)"
        " SELECT :c, id, 'b|x', geom, 'building', '990001M1' FROM building WHERE id = :b RETURNING id"
    ), {"c": county, "b": building}).scalar_one()  # fmt: skip
    report = import_addresses(
        session, path=write_csv(tmp_path / "b.csv", [row("B1", 112.04, 22.01)]), crs=WGS84
    )
    assert (report.updated, report.households_moved) == (1, 1)
    assert microgrids(session, [household]) == ["990001M2"]
