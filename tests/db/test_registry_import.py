"""The resident registry, end to end on real PostGIS: the demo's register as a
grid office would send it (GBK CSV with noisy addresses, and XLSX), bad rows
with their reasons, a second submission that creates nothing, coordinates in
GCJ-02/BD-09, and the map's figures following the import."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import Point
from sqlalchemy import create_engine, text

from db.demo import build_demo, load_demo
from db.engine import session_scope
from db.registry import ResidentImportRejected, ResidentImportRequest, import_residents
from geo.address_noise import noisy_addresses
from geo.crs import BD09, GCJ02, from_wgs84, parse_crs
from geo.demo_state import generate_state
from geo.registry_export import REGISTRY_HEADERS, write_registry_file

HOUSEHOLDS = 2_000
SEED = 5
GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def registry_db(pg):
    """The demo county's areas and address registry, with no households or residents yet."""
    url = pg.database("registry_flow")
    engine = create_engine(url)
    load_demo(engine, county_code="445321", households=HOUSEHOLDS, seed=SEED)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE household, resident RESTART IDENTITY CASCADE"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def demo():
    return build_demo(county_code="445321", households=HOUSEHOLDS, seed=SEED)


@pytest.fixture(scope="module")
def registers(demo, tmp_path_factory):
    """The register twice: GBK CSV with addresses typed the ways people type them, and XLSX."""
    folder = tmp_path_factory.mktemp("registers")
    h = demo.households
    noisy = noisy_addresses(
        np.random.default_rng(SEED), demo.buildings, h.building, units=h.unit, rooms=h.room
    )
    state = generate_state(demo)
    gbk = folder / "新城镇人员登记表.csv"
    xlsx = folder / "新城镇人员登记表.xlsx"
    write_registry_file(demo, gbk, fmt="csv-gbk", addresses=noisy, state=state)
    write_registry_file(demo, xlsx, fmt="xlsx", addresses=noisy, state=state)
    return gbk, xlsx


def run_import(engine, path: Path, *, mode: str = "all-or-nothing", **options):
    request = ResidentImportRequest.build(mode=mode, today=dt.date(2020, 2, 6), **options)
    with session_scope(engine) as session:
        return import_residents(session, path=path, request=request)


def scalar(engine, sql: str, **params):
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar_one()


def test_gbk_register_imports_and_locates_at_building_level(registry_db, demo, registers) -> None:
    gbk, _ = registers
    assert gbk.read_bytes()[:4].decode("gbk") == "姓名"  # really GBK, as Chinese Excel saves it
    report, rejected = run_import(registry_db, gbk)
    residents = len(demo.residents)
    assert (report.created, report.updated, len(report.rejected), rejected) == (
        residents,
        0,
        0,
        None,
    )
    assert report.encoding == "gb18030"
    # Every resident is at his true building, or was sent to review: never a wrong building.
    truth = dict(
        zip(
            demo.residents.id_number.tolist(),
            demo.buildings.code[demo.households.building[demo.residents.household]].tolist(),
            strict=True,
        )
    )
    with registry_db.connect() as connection:
        found = connection.execute(
            text("SELECT r.id_number, b.code FROM resident r JOIN household h ON h.id = r.household_id"
                 " LEFT JOIN building b ON b.id = h.building_id")
        ).all()  # fmt: skip
    at_building = [(i, code) for i, code in found if code is not None]
    wrong = [i for i, code in at_building if truth[i] != code]
    rate = len(at_building) / residents
    print(f"building-level match {rate:.2%}, wrong {len(wrong)}")
    assert rate >= 0.95 and wrong == []


def test_second_submission_creates_nothing(registry_db, registers) -> None:
    _, xlsx = registers
    households = scalar(registry_db, "SELECT count(*) FROM household")
    quarantines = scalar(registry_db, "SELECT count(*) FROM quarantine")
    report, _ = run_import(registry_db, xlsx)
    assert (
        report.created,
        report.updated,
        report.households_created,
        report.quarantines_created,
    ) == (0, 0, 0, 0)
    assert report.unchanged == report.rows
    assert scalar(registry_db, "SELECT count(*) FROM household") == households
    assert scalar(registry_db, "SELECT count(*) FROM quarantine") == quarantines


def test_map_figures_follow_the_import(registry_db, demo) -> None:
    from sqlalchemy.orm import Session

    from db.areas import get_area

    with Session(registry_db) as session:
        county = get_area(session, code="445321", as_of=dt.date.today())
    located = scalar(registry_db, "SELECT count(*) FROM household WHERE microgrid_code IS NOT NULL")
    assert county.households == located > 0.95 * HOUSEHOLDS
    assert county.residents == scalar(
        registry_db,
        "SELECT count(*) FROM resident r JOIN household h ON h.id = r.household_id WHERE h.microgrid_code IS NOT NULL",
    )


BAD_ROWS = {
    "bad check digit": [
        "张三",
        "男",
        "445321199001011230",
        "13812345678",
        "新兴县新城镇州背社区",
        "本地常住",
    ],
    "impossible birth date": [
        "李四",
        "男",
        "445321199902310010",
        "13812345678",
        "新兴县新城镇",
        "本地常住",
    ],
    "15-digit ID": ["王五", "男", "445321900101123", "13812345678", "新兴县新城镇", "本地常住"],
    "landline": ["赵六", "女", "44532119900101002X", "0766-2881234", "新兴县新城镇", "本地常住"],
    "unknown category": [
        "钱七",
        "女",
        "44532119900101002X",
        "13812345678",
        "新兴县新城镇",
        "流动人口",
    ],
    "several problems": ["孙八", "男", "445321199013011234", "12345", "新兴县新城镇", "火星人"],
}


def bad_register(path: Path, *, good: list[list[str]]) -> Path:
    headers = ["姓名", "性别", "身份证号", "手机号", "现住地址", "人员类别"]
    with path.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(good + list(BAD_ROWS.values()))
    return path


def good_rows(demo, count: int) -> list[list[str]]:
    r = demo.residents
    rows = []
    for i in range(count):
        sex = "男" if r.sex[i] == "M" else "女"
        rows.append(
            [
                str(r.name[i]),
                sex,
                str(r.id_number[i]),
                str(r.phone[i]),
                str(demo.buildings.address[demo.households.building[r.household[i]]]),
                "本地常住",
            ]
        )
    return rows


def test_bad_rows_are_reported_with_every_reason(registry_db, demo, tmp_path) -> None:
    path = bad_register(tmp_path / "bad.csv", good=good_rows(demo, 3))
    before = scalar(registry_db, "SELECT count(*) FROM resident_history")
    with pytest.raises(ResidentImportRejected) as refused:
        run_import(registry_db, path)  # all-or-nothing: nothing written
    assert scalar(registry_db, "SELECT count(*) FROM resident_history") == before
    reasons = {item["row"]: " ".join(item["reasons"]) for item in refused.value.report.rejected}
    assert sorted(reasons) == [5, 6, 7, 8, 9, 10]  # header row 1, three good rows 2–4
    assert "check digit" in reasons[5]
    assert "15" in reasons[7] and "mobile" in reasons[8].lower()
    assert "流动人口" in reasons[9]
    several = reasons[10]
    assert all(word in several for word in ("身份证号", "手机号", "人员类别"))
    # Reasons never show a full ID or phone number.
    assert "445321199001011230" not in " ".join(reasons.values())

    report, _ = run_import(registry_db, path, mode="validate")
    assert not report.applied and len(report.rejected) == len(BAD_ROWS)


def test_per_row_applies_the_good_rows_and_returns_the_rest(registry_db, demo, tmp_path) -> None:
    path = bad_register(tmp_path / "bad.csv", good=good_rows(demo, 3))
    report, rejected = run_import(registry_db, path, mode="per-row")
    assert report.applied and report.unchanged + report.updated == 3 and report.created == 0
    assert rejected is not None
    back = list(csv.reader(io.StringIO(rejected.decode("utf-8-sig"))))
    assert back[0][-1] == "拒绝原因" and len(back) == 1 + len(BAD_ROWS)
    assert back[1][2] == "445321199001011230"  # the office gets its own values back to fix them
    assert report.rejected_file == f"/api/imports/{report.batch_id}/rejected.csv"


@pytest.mark.parametrize("crs", [GCJ02, BD09])
def test_coordinates_in_gcj02_and_bd09_land_within_a_metre(
    registry_db, demo, tmp_path, crs
) -> None:
    truth = Point(112.2301, 22.6912)  # WGS84, inside Xinxing
    shifted = from_wgs84(truth, crs=crs)
    r = demo.residents
    index = 40 if crs is GCJ02 else 41
    path = tmp_path / "coords.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["姓名", "身份证号", "手机号", "人员类别", "经度", "纬度"])
        writer.writerow(
            [
                str(r.name[index]),
                str(r.id_number[index]),
                str(r.phone[index]),
                "本地常住",
                f"{shifted.x:.8f}",
                f"{shifted.y:.8f}",
            ]
        )
    report, _ = run_import(registry_db, path, crs=parse_crs(crs.label))
    assert report.applied
    with registry_db.connect() as connection:
        lon, lat = connection.execute(
            text(
                "SELECT ST_X(h.geom), ST_Y(h.geom) FROM resident r JOIN household h ON h.id = r.household_id WHERE r.id_number = :i"
            ),
            {"i": str(r.id_number[index])},
        ).one()
    _, _, distance_m = GEOD.inv(lon, lat, truth.x, truth.y)
    assert distance_m < 1.0


def test_register_headers_are_the_offices(registers) -> None:
    gbk, _ = registers
    header = gbk.read_bytes().decode("gbk").splitlines()[0].split(",")
    assert header == list(REGISTRY_HEADERS)


def test_standard_addresses_are_located_as_the_index_locates_them(registry_db, demo) -> None:
    """The import's shortcut for addresses written as the registry writes them
    (``db.registry._StandardAddresses``) answers what the address index does,
    for most of them without asking it."""
    from sqlalchemy.orm import Session

    from db.geocoder import address_index, locate
    from db.registry import _Geocoded, _StandardAddresses
    from geo.registry_export import household_addresses

    buildings = [str(a) for a in demo.buildings.address.tolist()]
    texts = sorted(
        set(household_addresses(demo))
        | set(buildings)  # bare, shared ones included
        | {f"{a}2单元1室" for a in buildings[:300]}
        | {f"{a}12室" for a in buildings[300:600]}
    )
    today = dt.date(2020, 2, 6)
    with Session(registry_db) as session:  # rolled back at the end
        # Three standard addresses shared by two buildings each.
        session.execute(
            text(
                "INSERT INTO building (county_code, code, address, township, community, road,"
                " house_number, estate, building_no, county, village_group, source, geom)"
                " SELECT county_code, code || '-2', address, township, community, road, house_number,"
                " estate, building_no, county, village_group, source, geom"
                " FROM building ORDER BY id LIMIT 3"
            )
        )
        shared = [
            a for (a,) in session.execute(text("SELECT address FROM building ORDER BY id LIMIT 3"))
        ]
        texts += [f"{a}{n}室" for a in shared for n in (1, 2, 3)]
        index = address_index(session, county_code="445321")
        asked: list[str] = []

        def full(address: str) -> _Geocoded:
            asked.append(address)
            match = index.match(address)
            location = locate(session, county_code="445321", match=match, as_of=today)
            parsed = match.parsed
            return _Geocoded(
                location, parsed.unit if parsed else None, parsed.room if parsed else None
            )

        standard = _StandardAddresses.of(session, county="445321", index=index)
        quick = standard.locate_all(texts, full=full)
        assert len(asked) < 0.1 * len(texts)
        for address in texts:
            assert quick[address] == full(address), address
        assert all(quick[f"{a}2室"].location.status == "review" for a in shared)
