"""HTTP: status codes, problem+json bodies, GeoJSON validity of the area API."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from shapely.geometry import box, mapping, shape

from geo.crs import GCJ02, from_wgs84

PROBLEM = "application/problem+json"


def geojson_bytes(features: list[dict]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def square(code: str, name: str, x0: float, y0: float, size: float) -> dict:
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": mapping(box(x0, y0, x0 + size, y0 + size))}  # fmt: skip


def upload(client, payload: bytes, *, filename: str = "areas.geojson", **form):
    return client.post(
        "/api/imports/boundaries",
        files=[("files", (filename, payload, "application/octet-stream"))],
        data={k: str(v) for k, v in form.items()},
    )


@pytest.fixture
def hierarchy(client):
    """County 990001 with two townships, the east one holding one community."""
    assert (
        upload(
            client, geojson_bytes([square("990001", "测试县", 112.0, 22.0, 0.1)]), level="county"
        ).status_code
        == 201
    )
    towns = [
        square("990001100", "东镇", 112.05, 22.0, 0.05),
        square("990001101", "西镇", 112.0, 22.0, 0.05),
    ]
    assert (
        upload(client, geojson_bytes(towns), level="township", parent="990001").status_code == 201
    )
    community = [square("990001100001", "东社区", 112.06, 22.01, 0.02)]
    assert (
        upload(client, geojson_bytes(community), level="community", parent="990001100").status_code
        == 201
    )
    return "990001"


def assert_feature(feature: dict) -> None:
    """RFC 7946: a Feature with a valid geometry, lon/lat in range, ≤ 6 decimals."""
    assert feature["type"] == "Feature"
    geom = shape(feature["geometry"])
    assert geom.is_valid and not geom.is_empty
    for x, y in _coords(feature["geometry"]["coordinates"]):
        assert -180 <= x <= 180 and -90 <= y <= 90
        assert round(x, 6) == x and round(y, 6) == y


def _coords(nested):
    if isinstance(nested[0], (int, float)):
        yield nested
    else:
        for item in nested:
            yield from _coords(item)


def test_health_reports_postgis_and_migration(client) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["postgis"].startswith("3.")
    assert body["migration"] == body["migration_head"] is not None


def test_area_feature(client, hierarchy) -> None:
    response = client.get(f"/api/areas/{hierarchy}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    feature = response.json()
    assert_feature(feature)
    props = feature["properties"]
    assert (props["code"], props["name"], props["level"], props["parent"]) == (
        "990001",
        "测试县",
        "county",
        None,
    )
    assert props["children"] == 2
    # 0.1° × 0.1° at 22°N ≈ 11.13 km × 10.32 km
    assert props["area_km2"] == pytest.approx(11.13 * 10.32, rel=0.01)
    assert (props["households"], props["residents"]) == (0, 0)


def test_children_collection(client, hierarchy) -> None:
    body = client.get(f"/api/areas/{hierarchy}/children").json()
    assert body["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in body["features"]] == ["990001100", "990001101"]
    for feature in body["features"]:
        assert_feature(feature)
    assert body["features"][0]["properties"]["children"] == 1


def test_list_filters_and_pages(client, hierarchy) -> None:
    everything = client.get("/api/areas", params={"within": hierarchy}).json()
    assert everything["numberMatched"] == 3  # two townships and a community
    towns = client.get("/api/areas", params={"level": "township", "limit": 1}).json()
    assert (towns["numberMatched"], towns["numberReturned"]) == (2, 1)
    next_link = [link["href"] for link in towns["links"] if link["rel"] == "next"]
    assert next_link and "offset=1" in next_link[0]
    second = client.get("/api/areas", params={"level": "township", "limit": 1, "offset": 1}).json()
    assert second["features"][0]["properties"]["code"] != towns["features"][0]["properties"]["code"]
    east = client.get(
        "/api/areas", params={"level": "township", "bbox": "112.08,22.01,112.09,22.02"}
    ).json()
    assert [f["properties"]["code"] for f in east["features"]] == ["990001100"]


def test_gcj02_output_is_shifted_like_the_forward_formula(client, hierarchy) -> None:
    wgs = shape(client.get(f"/api/areas/{hierarchy}").json()["geometry"])
    gcj = shape(client.get(f"/api/areas/{hierarchy}", params={"crs": "gcj02"}).json()["geometry"])
    expected = from_wgs84(wgs, crs=GCJ02)
    assert gcj.equals_exact(expected, tolerance=2e-6)
    assert gcj.centroid.distance(wgs.centroid) > 0.003  # about 0.5 km in Guangdong


@pytest.mark.parametrize(
    ("path", "params", "status", "needle"),
    [
        ("/api/areas/nope", {}, 404, "no area with code 'nope'"),
        ("/api/areas/nope/children", {}, 404, "no area with code 'nope'"),
        ("/api/areas", {"within": "nope"}, 404, "no area with code 'nope'"),
        ("/api/areas", {"level": "planet"}, 422, "level 'planet'"),
        ("/api/areas", {"bbox": "1,2,3"}, 422, "bbox"),
        ("/api/areas", {"crs": "mars"}, 400, "unknown coordinate reference system"),
        ("/api/areas", {"limit": 0}, 422, "limit"),
        ("/api/areas", {"as_of": "yesterday"}, 422, "as_of"),
    ],
)
def test_bad_requests_are_problem_json(client, path, params, status, needle) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and needle in body["detail"]


# -- imports over HTTP ----------------------------------------------------------------
def test_rejected_upload_returns_the_report(client, hierarchy) -> None:
    bowtie = {"type": "Feature", "properties": {"code": "990001102", "name": "蝴蝶镇"},
              "geometry": {"type": "Polygon", "coordinates": [[[112.0, 22.0], [112.01, 22.01], [112.01, 22.0], [112.0, 22.01], [112.0, 22.0]]]}}  # fmt: skip
    response = upload(client, geojson_bytes([bowtie]), level="township", parent=hierarchy)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    issues = response.json()["report"]["validation"]["issues"]
    invalid = [i for i in issues if i["rule"] == "invalid_geometry"]
    assert invalid and invalid[0]["location"] is not None and invalid[0]["feature"] == 1
    assert client.get("/api/areas/990001102").status_code == 404


def test_dry_run_upload_writes_nothing(client, hierarchy) -> None:
    response = upload(client, geojson_bytes([square("990001199", "新镇", 112.0, 22.05, 0.01)]),
                      level="township", parent=hierarchy, dry_run="true")  # fmt: skip
    assert response.status_code == 200, response.json()
    assert response.json()["applied"] is False
    assert client.get("/api/areas/990001199").status_code == 404


def zipped_shapefile(tmp_path, features: list[dict]) -> bytes:
    import numpy as np
    import pyogrio  # noqa: F401  (GDAL writes the shapefile)
    import shapely
    from pyogrio.raw import write

    path = tmp_path / "grids.shp"
    geoms = np.array([shapely.to_wkb(shape(f["geometry"])) for f in features], dtype=object)
    fields = [
        np.array([f["properties"][k] for f in features], dtype=object) for k in ("code", "name")
    ]
    write(str(path), geometry=geoms, field_data=fields, fields=["code", "name"], driver="ESRI Shapefile",
          geometry_type="Polygon", crs="EPSG:4326", encoding="UTF-8")  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in tmp_path.glob("grids.*"):
            archive.write(part, part.name)
    return buffer.getvalue()


def test_zipped_shapefile_upload(client, hierarchy, tmp_path) -> None:
    payload = zipped_shapefile(
        tmp_path, [square("990001100001001", "一网格", 112.065, 22.015, 0.005)]
    )
    response = upload(client, payload, filename="grids.zip", level="grid", parent="990001100001")
    assert response.status_code == 201, response.json()
    grid = client.get("/api/areas/990001100001001").json()["properties"]
    assert (grid["name"], grid["level"], grid["parent"]) == ("一网格", "grid", "990001100001")


@pytest.mark.parametrize(
    ("payload", "filename", "form", "status", "needle"),
    [
        (
            b'{"type": "FeatureCollection", "features": [',
            "broken.geojson",
            {},
            422,
            "malformed GeoJSON",
        ),
        (b"", "empty.geojson", {}, 422, "empty"),
        (b"x", "areas.geojson", {"crs": "mars"}, 400, "unknown coordinate reference system"),
        (b"PK\x05\x06" + b"\x00" * 18, "empty.zip", {}, 422, "zip holds no"),
        (b"hello", "notes.txt", {}, 422, "unsupported file type"),
        (
            geojson_bytes([square("1", "x", 112.0, 22.0, 0.01)]),
            "a.geojson",
            {"parent": "nope"},
            404,
            "parent area 'nope'",
        ),
        (
            geojson_bytes([square("1", "x", 112.0, 22.0, 0.01)]),
            "a.geojson",
            {"level": "planet"},
            422,
            "level 'planet'",
        ),
    ],
)
def test_bad_uploads(client, payload, filename, form, status, needle) -> None:
    response = upload(client, payload, filename=filename, **({"level": "township"} | form))
    assert response.status_code == status, response.json()
    assert response.headers["content-type"].startswith(PROBLEM)
    assert needle in response.json()["detail"]


def test_upload_over_the_cap(client, monkeypatch) -> None:
    from api.deps import get_api_settings

    monkeypatch.setattr(get_api_settings(), "max_upload_bytes", 1000)
    response = upload(
        client,
        geojson_bytes([square(str(i), f"n{i}", 112.0, 22.0, 0.01) for i in range(20)]),
        level="county",
    )
    assert response.status_code == 413
    assert "over the cap of 1,000 bytes" in response.json()["detail"]


def test_zip_bomb_is_refused_unopened(client, monkeypatch) -> None:
    from api.deps import get_api_settings

    monkeypatch.setattr(get_api_settings(), "max_inflated_bytes", 1_000_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.geojson", b" " * 5_000_000)
    response = upload(client, buffer.getvalue(), filename="bomb.zip", level="county")
    assert response.status_code == 413
    assert "inflates to 5,000,000 bytes" in response.json()["detail"]


def test_polygon_over_the_vertex_cap(client, monkeypatch) -> None:
    from api.deps import get_api_settings

    monkeypatch.setattr(get_api_settings(), "max_vertices_per_feature", 100)
    circle = {"type": "Feature", "properties": {"code": "990009", "name": "圆县"},
              "geometry": mapping(shapely_point(112.5, 22.5).buffer(0.01, quad_segs=64))}  # fmt: skip
    response = upload(client, geojson_bytes([circle]), level="county")
    assert response.status_code == 422
    issues = response.json()["report"]["validation"]["issues"]
    assert [i["rule"] for i in issues] == ["too_many_vertices"]


def shapely_point(x: float, y: float):
    from shapely.geometry import Point

    return Point(x, y)


def test_database_down_is_503_problem(tmp_path) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine

    from api.app import create_app
    from api.auth import get_auth_settings
    from api.deps import get_engine
    from api.security import issue_token

    app = create_app()
    nowhere = create_engine(f"postgresql+psycopg://wangge@/wangge?host={tmp_path}&port=1")
    app.dependency_overrides[get_engine] = lambda: nowhere
    # A well-signed token: checking it needs the database, which is down.
    token, _ = issue_token(user_id=1, version=0, settings=get_auth_settings())
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for path in ("/api/health", "/api/areas"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert response.headers["content-type"].startswith(PROBLEM)
