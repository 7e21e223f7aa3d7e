"""Registry import, geocoding and the review queue over HTTP, on a small demo county."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.app import create_app
from api.deps import get_engine
from api.security import hash_password
from db.accounts import replace_account
from db.demo import load_demo
from db.engine import session_scope
from geo.crs import GCJ02, from_wgs84
from geo.demo import id_check_digit
from geo.localtime import local_today
from tests.api.conftest import TEST_PASSWORD, bearer

PROBLEM = "application/problem+json"


def id_number(serial: int) -> str:
    first17 = f"44532119850101{serial:03d}"
    return first17 + id_check_digit(first17)


@pytest.fixture(scope="module")
def api(pg) -> Iterator[tuple[TestClient, object]]:
    """An admin's client on a demo county of its own (these tests write)."""
    url = pg.database("registry_api")
    engine = create_engine(url)
    load_demo(engine, county_code="445321", households=1_000, seed=9)
    with session_scope(engine) as session:
        replace_account(session, name="registry_admin", role="admin", areas=[],
                        password_hash=hash_password(TEST_PASSWORD), today=local_today())  # fmt: skip
    app = create_app()
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app) as client:
        client.headers.update(bearer(client, "registry_admin"))
        yield client, engine
    engine.dispose()


def sql(engine, query: str, **params):
    with engine.connect() as connection:
        return connection.execute(text(query), params).all()


def register(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["姓名", "身份证号", "手机号", "现住地址", "人员类别"])
    writer.writerows(rows)
    return buffer.getvalue().encode("gbk")


def test_geocode_one_address(api) -> None:
    client, engine = api
    building_id, address = sql(engine, "SELECT id, address FROM building ORDER BY id LIMIT 1")[0]
    answer = client.get(
        "/api/geocode", params={"address": address.replace("广东省云浮市", "")}
    ).json()
    assert (answer["level"], answer["status"], answer["building_id"]) == (
        "building",
        "matched",
        building_id,
    )
    nowhere = client.get("/api/geocode", params={"address": "火星市奥林匹斯山路1号"}).json()
    assert nowhere["status"] == "review" and nowhere["building_id"] is None
    assert client.get("/api/geocode", params={"address": ""}).status_code == 422
    wrong_county = client.get("/api/geocode", params={"address": "x", "county": "110101"})
    assert wrong_county.status_code == 404 and wrong_county.headers["content-type"].startswith(
        PROBLEM
    )


def test_per_row_upload_review_and_resolve(api) -> None:
    client, engine = api
    building_id, address, microgrid = sql(
        engine,
        "SELECT b.id, b.address, (SELECT code FROM area a WHERE a.level = 'microgrid' AND ST_Covers(a.geom, b.geom)"
        " ORDER BY code LIMIT 1) FROM building b ORDER BY b.id DESC LIMIT 1",
    )[0]
    payload = register([
        ["甲", id_number(1), "13800000001", address + "1单元101室", "本地常住"],
        ["乙", id_number(2), "13800000002", "新兴县火星路99号", "外地暂住"],
        ["丙", "445321198501010000", "13800000003", address, "本地常住"],
    ])  # fmt: skip
    response = client.post(
        "/api/imports/residents",
        files={"file": ("登记表.csv", payload, "text/csv")},
        data={"mode": "per-row"},
    )
    assert response.status_code == 201, response.json()
    report = response.json()
    assert (report["created"], len(report["rejected"]), report["review_queued"]) == (2, 1, 1)
    assert report["rejected"][0]["row"] == 4
    download = client.get(report["rejected_file"])
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0][-1] == "拒绝原因" and rows[1][1] == "445321198501010000"

    queue = client.get("/api/geocode/review", params={"within": "445321"}).json()
    item = next(i for i in queue["items"] if "火星路" in i["address"])
    assert item["reason"] in ("unmatched", "fallback")
    households = client.get("/api/areas/445321/households", params={"status": "review"}).json()
    assert item["household_id"] in [f["properties"]["id"] for f in households["features"]]

    resolved = client.post(
        f"/api/geocode/review/{item['id']}/resolve", json={"building_id": building_id}
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert (
        sql(engine, "SELECT microgrid_code FROM household WHERE id = :h", h=item["household_id"])[
            0
        ][0]
        == microgrid
    )
    again = client.post(
        f"/api/geocode/review/{item['id']}/resolve", json={"building_id": building_id}
    )
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)


def test_resolve_by_a_gcj02_point_and_bad_bodies(api) -> None:
    client, engine = api
    payload = register([["丁", id_number(3), "13800000004", "新兴县土星路1号", "本地常住"]])
    assert (
        client.post(
            "/api/imports/residents", files={"file": ("r.csv", payload, "text/csv")}
        ).status_code
        == 201
    )
    item = next(
        i for i in client.get("/api/geocode/review").json()["items"] if "土星路" in i["address"]
    )
    lon, lat = sql(
        engine,
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM area WHERE level = 'microgrid' ORDER BY code LIMIT 1",
    )[0]
    from shapely.geometry import Point

    gcj = from_wgs84(Point(lon, lat), crs=GCJ02)
    for body in (
        {},
        {"building_id": 1, "point": {"type": "Point", "coordinates": [gcj.x, gcj.y]}},
        {"id": 5},
    ):
        assert (
            client.post(f"/api/geocode/review/{item['id']}/resolve", json=body).status_code == 422
        )
    done = client.post(
        f"/api/geocode/review/{item['id']}/resolve",
        json={"point": {"type": "Point", "coordinates": [gcj.x, gcj.y]}, "crs": "gcj02"},
    )
    assert done.status_code == 200
    stored = sql(engine, "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography) FROM household WHERE id = :h",
                 x=lon, y=lat, h=item["household_id"])[0][0]  # fmt: skip
    assert stored < 1.0


def test_all_or_nothing_upload_is_refused_whole(api) -> None:
    client, engine = api
    before = sql(engine, "SELECT count(*) FROM resident")[0][0]
    payload = register(
        [
            ["戊", id_number(4), "13800000005", "新兴县新城镇", "本地常住"],
            ["己", "123", "1", "x", "y"],
        ]
    )
    response = client.post("/api/imports/residents", files={"file": ("r.csv", payload, "text/csv")})
    assert response.status_code == 422 and response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["report"]["rejected"][0]["row"] == 3
    assert sql(engine, "SELECT count(*) FROM resident")[0][0] == before
    bad_mode = client.post(
        "/api/imports/residents",
        files={"file": ("r.csv", payload, "text/csv")},
        data={"mode": "maybe"},
    )
    assert bad_mode.status_code == 422 and "mode 'maybe'" in bad_mode.json()["detail"]
