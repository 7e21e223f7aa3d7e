"""OGC API – Features under /ogc: JSON shapes, paging, filters and errors on
the small demo county, each figure checked against an independent SQL count;
then GDAL itself (Debian's ogrinfo/ogr2ogr, driver OAPIF) reads a real server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from shapely.geometry import shape
from sqlalchemy import create_engine, text

from tests.api.conftest import TEST_PASSWORD

PROBLEM = "application/problem+json"
GEOJSON = "application/geo+json"
LEVELS = ("city", "county", "township", "community", "grid", "microgrid")
CONFORMANCE = {
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
}
IN_FORCE = "valid_from <= :today AND (valid_to IS NULL OR valid_to > :today)"

Sql = Callable[..., list[Any]]


@pytest.fixture(scope="module")
def demo_sql(demo_db_url: str) -> Iterator[Sql]:
    """Run SQL on the demo database directly (independent of the code under test)."""
    engine = create_engine(demo_db_url)

    def run(sql: str, **params: Any) -> list[Any]:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), {"today": dt.date.today(), **params}))

    yield run
    engine.dispose()


def level_count(sql: Sql, level: str, bbox: tuple[float, ...] | None = None) -> int:
    where = ""
    params: dict[str, Any] = {"level": level}
    if bbox:
        where = " AND ST_Intersects(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))"
        params |= dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True))
    return int(
        sql(f"SELECT count(*) FROM area WHERE level = :level AND {IN_FORCE}{where}", **params)[0][0]
    )


def level_codes(sql: Sql, level: str) -> set[str]:
    return {
        r[0] for r in sql(f"SELECT code FROM area WHERE level = :level AND {IN_FORCE}", level=level)
    }


def inner_box(sql: Sql, level: str) -> tuple[float, float, float, float]:
    """A box over the middle of the level's extent, its edges off any round number."""
    x0, y0, x1, y1 = sql(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
        " FROM (SELECT ST_Extent(geom) AS e FROM area WHERE level = :level) s",
        level=level,
    )[0]
    w, h = x1 - x0, y1 - y0
    return (
        round(x0 + 0.31 * w, 6) + 1.3e-6, round(y0 + 0.27 * h, 6) + 1.7e-6,
        round(x0 + 0.68 * w, 6) + 1.1e-6, round(y0 + 0.66 * h, 6) + 1.9e-6,
    )  # fmt: skip


def rels(body: dict) -> dict[str, dict]:
    return {link["rel"]: link for link in body["links"]}


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["detail"]
    return body


# ------------------------------------------------------------ landing, conformance


def test_landing_page_links_are_absolute(demo_client) -> None:
    response = demo_client.get("/ogc")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    links = rels(response.json())
    assert {"self", "conformance", "data", "service-desc"} <= set(links)
    assert links["self"]["href"] == "http://testserver/ogc"
    assert links["conformance"]["href"] == "http://testserver/ogc/conformance"
    assert links["data"]["href"] == "http://testserver/ogc/collections"
    assert links["service-desc"]["href"] == "http://testserver/openapi.json"
    assert links["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
    api = demo_client.get(links["service-desc"]["href"]).json()
    assert api["openapi"].startswith("3.")
    assert "/ogc/collections/{collection_id}/items" in api["paths"]
    assert demo_client.get("/ogc?f=json").status_code == 200


def test_conformance_declares_core_geojson_oas30(demo_client) -> None:
    body = demo_client.get("/ogc/conformance").json()
    assert set(body["conformsTo"]) >= CONFORMANCE


# --------------------------------------------------------------------- collections


def test_collections_one_per_level_present_plus_checkpoints(demo_client, demo_sql) -> None:
    response = demo_client.get("/ogc/collections")
    assert response.status_code == 200
    body = response.json()
    assert rels(body)["self"]["href"] == "http://testserver/ogc/collections"
    present = {r[0] for r in demo_sql("SELECT DISTINCT level FROM area")}
    ids = [c["id"] for c in body["collections"]]
    assert ids == [level for level in LEVELS if level in present] + ["checkpoints"]
    assert {"county", "township", "community", "grid", "microgrid"} <= set(ids)

    for coll in body["collections"]:
        assert coll["itemType"] == "feature"
        assert coll["title"] and coll["description"]
        links = rels(coll)
        assert links["self"]["href"] == f"http://testserver/ogc/collections/{coll['id']}"
        assert links["items"]["href"] == f"http://testserver/ogc/collections/{coll['id']}/items"
        assert links["items"]["type"] == GEOJSON
        assert demo_client.get(f"/ogc/collections/{coll['id']}").json() == coll
        if coll["id"] == "checkpoints":
            continue
        # The extent holds every area of the level, to within the 6-decimal rounding.
        (box,) = coll["extent"]["spatial"]["bbox"]
        assert coll["extent"]["spatial"]["crs"].endswith("/CRS84")
        x0, y0, x1, y1 = demo_sql(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
            " FROM (SELECT ST_Extent(geom) AS e FROM area WHERE level = :level) s",
            level=coll["id"],
        )[0]
        assert box[0] <= x0 < box[0] + 2e-6 and box[1] <= y0 < box[1] + 2e-6
        assert box[2] - 2e-6 < x1 <= box[2] and box[3] - 2e-6 < y1 <= box[3]
        (interval,) = coll["extent"]["temporal"]["interval"]
        assert interval[1] is None  # the demo's boundaries are all in force


def test_unknown_collection_is_404(demo_client) -> None:
    assert_problem(demo_client.get("/ogc/collections/nowhere"), 404)
    assert_problem(demo_client.get("/ogc/collections/nowhere/items"), 404)
    assert_problem(demo_client.get("/ogc/collections/nowhere/items/1"), 404)


# -------------------------------------------------------------------------- items


def test_items_page_through_every_grid(demo_client, demo_sql) -> None:
    """Follow the next links from the first page: every micro-grid in force once,
    numberMatched equal to an independent count."""
    expected = level_count(demo_sql, "microgrid")
    assert expected > 25
    url: str | None = "/ogc/collections/microgrid/items?limit=10"
    seen: list[str] = []
    pages = 0
    while url:
        response = demo_client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(GEOJSON)
        body = response.json()
        assert body["type"] == "FeatureCollection"
        assert body["numberMatched"] == expected
        assert body["numberReturned"] == len(body["features"]) <= 10
        dt.datetime.fromisoformat(body["timeStamp"])
        links = rels(body)
        assert links["self"]["type"] == GEOJSON
        assert links["self"]["href"].startswith("http://testserver/ogc/collections/microgrid/items")
        if pages:
            assert "prev" in links
        else:
            assert "prev" not in links
        seen += [f["id"] for f in body["features"]]
        url = links.get("next", {}).get("href")
        pages += 1
    assert pages == -(-expected // 10)
    assert len(seen) == len(set(seen)) == expected
    assert set(seen) == level_codes(demo_sql, "microgrid")


def test_default_limit_is_ten_and_offset_pages(demo_client, demo_sql) -> None:
    first = demo_client.get("/ogc/collections/community/items").json()
    assert first["numberReturned"] == min(10, level_count(demo_sql, "community"))
    second = demo_client.get("/ogc/collections/community/items?limit=3&offset=2").json()
    assert [f["id"] for f in second["features"]] == [f["id"] for f in first["features"]][2:5]
    assert rels(second)["prev"]["href"].endswith("offset=0&limit=3")
    beyond = demo_client.get("/ogc/collections/community/items?offset=100000").json()
    assert beyond["numberReturned"] == 0 and "next" not in rels(beyond)


def test_limit_above_the_cap_is_lowered_to_it(demo_client, demo_sql) -> None:
    from api.settings import ApiSettings

    cap = ApiSettings().page_limit_max
    body = demo_client.get(f"/ogc/collections/microgrid/items?limit={cap * 10}").json()
    assert body["numberReturned"] == min(cap, level_count(demo_sql, "microgrid"))


def test_area_features_carry_code_name_level_parent_and_figures(demo_client, demo_sql) -> None:
    body = demo_client.get("/ogc/collections/grid/items?limit=5").json()
    for feature in body["features"]:
        props = feature["properties"]
        assert feature["id"] == props["code"]
        assert props["level"] == "grid"
        assert {"name", "parent", "households", "residents"} <= set(props)
        geom = shape(feature["geometry"])
        assert geom.is_valid and geom.geom_type in ("Polygon", "MultiPolygon")
        # Figures count people where they live: households of the grid's micro-grids.
        households, residents = demo_sql(
            "SELECT count(DISTINCT h.id), count(r.id) FROM area m"
            " JOIN household h ON h.microgrid_code = m.code"
            " LEFT JOIN resident r ON r.household_id = h.id"
            f" WHERE m.parent_code = :code AND m.level = 'microgrid' AND m.{IN_FORCE}",
            code=feature["id"],
        )[0]
        assert (props["households"], props["residents"]) == (households, residents)
    assert sum(f["properties"]["households"] for f in body["features"]) > 0


def test_bbox_filter_equals_postgis_intersects(demo_client, demo_sql) -> None:
    for level in ("community", "microgrid"):
        box = inner_box(demo_sql, level)
        expected = level_count(demo_sql, level, box)
        assert 0 < expected < level_count(demo_sql, level)
        bbox = ",".join(repr(v) for v in box)
        body = demo_client.get(f"/ogc/collections/{level}/items?bbox={bbox}&limit=1000").json()
        assert body["numberMatched"] == body["numberReturned"] == expected
        codes = {r[0] for r in demo_sql(
            f"SELECT code FROM area WHERE level = :level AND {IN_FORCE}"
            " AND ST_Intersects(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))",
            level=level, **dict(zip(("x0", "y0", "x1", "y1"), box, strict=True)),
        )}  # fmt: skip
        assert {f["id"] for f in body["features"]} == codes
        # The 6-number (3D) form selects the same.
        box3d = f"{box[0]},{box[1]},-100,{box[2]},{box[3]},100"
        again = demo_client.get(f"/ogc/collections/{level}/items?bbox={box3d}").json()
        assert again["numberMatched"] == expected
        # next links keep the filter.
        if expected > 10:
            nxt = demo_client.get(rels(again)["next"]["href"]).json()
            assert nxt["numberMatched"] == expected


def test_datetime_picks_the_boundaries_in_force(demo_client, demo_sql) -> None:
    today = demo_client.get("/ogc/collections/grid/items").json()["numberMatched"]
    on_day = demo_client.get(f"/ogc/collections/grid/items?datetime={dt.date.today()}").json()
    assert on_day["numberMatched"] == today
    stamp = f"{dt.date.today()}T12:00:00Z"
    assert (
        demo_client.get(f"/ogc/collections/grid/items?datetime={stamp}").json()["numberMatched"]
        == today
    )
    first = demo_sql("SELECT min(valid_from) FROM area")[0][0]
    before = first - dt.timedelta(days=1)
    old = demo_client.get(f"/ogc/collections/grid/items?datetime={before}").json()
    assert old["numberMatched"] == 0 and old["features"] == []


def test_one_item(demo_client, demo_sql) -> None:
    code, name, parent = demo_sql(
        f"SELECT code, name, parent_code FROM area WHERE level = 'microgrid' AND {IN_FORCE}"
        " ORDER BY code LIMIT 1"
    )[0]
    response = demo_client.get(f"/ogc/collections/microgrid/items/{code}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GEOJSON)
    body = response.json()
    assert body["type"] == "Feature" and body["id"] == code
    assert (body["properties"]["name"], body["properties"]["parent"]) == (name, parent)
    households = demo_sql("SELECT count(*) FROM household WHERE microgrid_code = :c", c=code)[0][0]
    assert body["properties"]["households"] == households
    links = rels(body)
    assert links["self"]["href"] == f"http://testserver/ogc/collections/microgrid/items/{code}"
    assert links["collection"]["href"] == "http://testserver/ogc/collections/microgrid"
    # A code of another level is not a feature of this collection.
    assert_problem(demo_client.get(f"/ogc/collections/grid/items/{code}"), 404)
    assert_problem(demo_client.get("/ogc/collections/microgrid/items/000000"), 404)
    assert_problem(demo_client.get("/ogc/collections/checkpoints/items/abc"), 404)
    assert_problem(demo_client.get(f"/ogc/collections/checkpoints/items/{10**30}"), 404)


@pytest.mark.parametrize(
    "query",
    [
        "bbox=1,2,3", "bbox=a,b,c,d", "bbox=112,22,111,23", "bbox=112,23,113,22",
        "bbox=112,22,113,95", "bbox=nan,22,113,23", "limit=0", "limit=-1", "limit=ten",
        "offset=-1", "offset=x", "datetime=yesterday", "datetime=2020-01-01/2020-02-01",
        "f=html",
    ],
)  # fmt: skip
def test_invalid_parameters_are_400(demo_client, query: str) -> None:
    body = assert_problem(demo_client.get(f"/ogc/collections/grid/items?{query}"), 400)
    assert body["title"] == "Bad Request"


# --------------------------------------------------------------------- checkpoints


def test_checkpoints_collection(client, session) -> None:
    """Checkpoints (on the rolled-back test database): integer ids, bbox, paging."""
    rows = [
        ("高速出口", "highway_exit", 112.20, 22.70, True),
        ("村口", "village_entrance", 112.25, 22.72, True),
        ("小区门岗", "estate_gate", 112.40, 22.90, False),
    ]
    ids = [
        session.execute(
            text(
                "INSERT INTO checkpoint (county_code, name, kind, geom, active)"
                " VALUES ('445321', :name, :kind, ST_SetSRID(ST_MakePoint(:x, :y), 4326), :active)"
                " RETURNING id"
            ),
            {"name": n, "kind": k, "x": x, "y": y, "active": a},
        ).scalar_one()
        for n, k, x, y, a in rows
    ]
    coll = client.get("/ogc/collections/checkpoints").json()
    assert coll["extent"]["spatial"]["bbox"] == [[112.2, 22.7, 112.4, 22.9]]

    body = client.get("/ogc/collections/checkpoints/items?limit=2").json()
    assert body["numberMatched"] == 3 and body["numberReturned"] == 2
    assert [f["id"] for f in body["features"]] == ids[:2]
    assert body["features"][0]["geometry"] == {"type": "Point", "coordinates": [112.2, 22.7]}
    assert body["features"][0]["properties"]["kind"] == "highway_exit"
    rest = client.get(rels(body)["next"]["href"]).json()
    assert [f["id"] for f in rest["features"]] == ids[2:]

    near = client.get("/ogc/collections/checkpoints/items?bbox=112.1,22.6,112.3,22.8").json()
    assert sorted(f["id"] for f in near["features"]) == ids[:2]

    one = client.get(f"/ogc/collections/checkpoints/items/{ids[2]}").json()
    assert one["id"] == ids[2] and one["properties"]["active"] is False
    assert_problem(client.get(f"/ogc/collections/checkpoints/items/{max(ids) + 1000}"), 404)


# --------------------------------------------------------------- GDAL reads /ogc

OGRINFO = shutil.which("ogrinfo")
OGR2OGR = shutil.which("ogr2ogr")
GDAL_HEADERS: dict[str, str] = {}  # the served app's token, set by ogc_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ogc_url(demo_db_url: str, demo_admin: str, tmp_path_factory) -> Iterator[str]:
    """``wangge serve`` on the demo county (as tests/web's served_demo does);
    its log goes to a file, so a full pipe can never stall it. GDAL sends the
    demo admin's token (``GDAL_HTTP_HEADERS``, set for :func:`gdal`)."""
    port = free_port()
    log = tmp_path_factory.mktemp("ogc-server") / "serve.log"
    env = os.environ | {"DATABASE_URL": demo_db_url}
    wangge = Path(sys.executable).with_name("wangge")
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [str(wangge), "serve", "--port", str(port)], env=env,
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"wangge serve exited: {log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("wangge serve did not become ready in 90 s")
            time.sleep(0.3)
        assert httpx.get(f"{base}/ogc", timeout=10).status_code == 401  # no token, no data
        login = httpx.post(
            f"{base}/api/auth/token",
            data={"username": demo_admin, "password": TEST_PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        GDAL_HEADERS["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield f"{base}/ogc"
    finally:
        GDAL_HEADERS.clear()
        server.terminate()
        server.wait(timeout=20)


def gdal(*args: str) -> str:
    """Run a GDAL command that may reach only the local server."""
    if OGRINFO is None or OGR2OGR is None:
        pytest.fail("GDAL's ogrinfo is missing: run scripts/install-system-deps --browser")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env |= {
        "GDAL_HTTP_HEADERS": "\r\n".join(f"{k}: {v}" for k, v in GDAL_HEADERS.items()),
        "NO_PROXY": "*", "no_proxy": "*", "GDAL_HTTP_TIMEOUT": "60",
        "GDAL_HTTP_CONNECTTIMEOUT": "5", "GDAL_HTTP_MAX_RETRY": "0",
        "PROJ_NETWORK": "OFF", "CPL_DEBUG": "OFF",
    }  # fmt: skip
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    assert "ERROR" not in done.stderr, done.stderr
    return done.stdout


def test_ogrinfo_lists_the_collections(ogc_url, demo_sql) -> None:
    out = gdal(OGRINFO or "ogrinfo", "-ro", "-so", f"OAPIF:{ogc_url}")
    layers = re.findall(r"^\d+: (\S+)", out, flags=re.MULTILINE)
    present = {r[0] for r in demo_sql("SELECT DISTINCT level FROM area")}
    assert layers == [level for level in LEVELS if level in present] + ["checkpoints"]


@pytest.mark.parametrize("level", ["grid", "microgrid"])
def test_ogrinfo_counts_equal_the_database(ogc_url, demo_sql, level: str) -> None:
    out = gdal(OGRINFO or "ogrinfo", "-ro", "-al", "-so", f"OAPIF:{ogc_url}", level)
    count = int(re.search(r"^Feature Count: (\d+)", out, flags=re.MULTILINE).group(1))
    assert count == level_count(demo_sql, level)
    assert "Polygon" in re.search(r"^Geometry: (.+)$", out, flags=re.MULTILINE).group(1)
    for name in ("code", "name", "level", "parent", "households", "residents"):
        assert re.search(rf"^{name}: ", out, flags=re.MULTILINE), name


def test_ogr2ogr_copies_every_feature_page_by_page(ogc_url, demo_sql, tmp_path) -> None:
    """GDAL's default page size is 10: the copy follows every next link."""
    target = tmp_path / "microgrid.geojson"
    gdal(OGR2OGR or "ogr2ogr", "-f", "GeoJSON", str(target), f"OAPIF:{ogc_url}", "microgrid")
    features = json.loads(target.read_text())["features"]
    assert len(features) == level_count(demo_sql, "microgrid")
    assert {f["properties"]["code"] for f in features} == level_codes(demo_sql, "microgrid")


def test_ogr2ogr_spatial_filter_equals_postgis(ogc_url, demo_sql, tmp_path) -> None:
    box = inner_box(demo_sql, "microgrid")
    target = tmp_path / "inside.geojson"
    gdal(
        OGR2OGR or "ogr2ogr", "-f", "GeoJSON", "-spat", *(repr(v) for v in box),
        str(target), f"OAPIF:{ogc_url}", "microgrid",
    )  # fmt: skip
    features = json.loads(target.read_text())["features"]
    assert len(features) == level_count(demo_sql, "microgrid", box) > 0
