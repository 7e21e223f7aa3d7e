"""Checkpoints and passages over HTTP: CRUD with GCJ-02 input, GeoJSON out,
passages one at a time or in arrays (good rows stored, bad ones reported by
index), masked in every response, and every bad input a 4xx problem+json."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import text

from geo.crs import wgs84_to_gcj02
from tests.db.test_cases import COUNTY, MG_A1, MG_B1, OTHER_COUNTY, TOWN_A, County, build_county

PROBLEM = "application/problem+json"
TRUTH = (113.03, 22.04)  # WGS84, in town A


@pytest.fixture
def county(session) -> County:
    return build_county(session)


def point(x: float, y: float) -> dict:
    return {"type": "Point", "coordinates": [x, y]}


@pytest.fixture
def checkpoint(client, county) -> int:
    response = client.post(
        "/api/checkpoints",
        json={"name": "A 镇高速出口", "kind": "highway_exit", "location": point(*TRUTH)},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["properties"]["id"])


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance on a 6,371 km sphere (ample to tell 1 m from 300 m)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def assert_problem(response, status: int, needle: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert needle in response.json()["detail"], response.json()["detail"]
    return response.json()


def test_checkpoint_crud_with_gcj02_input(client, session, county) -> None:
    gx, gy = (float(v) for v in wgs84_to_gcj02(*TRUTH))
    created = client.post(
        "/api/checkpoints",
        json={"name": "村口", "kind": "village_entrance", "location": point(gx, gy), "crs": "gcj02",
              "note": "24 小时值守"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/geo+json")
    body = created.json()
    assert body["type"] == "Feature" and body["geometry"]["type"] == "Point"
    stored = tuple(body["geometry"]["coordinates"])
    assert metres(stored, TRUTH) < 1.0 < 100 < metres((gx, gy), TRUTH)
    checkpoint_id = body["properties"]["id"]
    assert created.headers["location"] == f"/api/checkpoints/{checkpoint_id}"
    assert body["properties"]["county_code"] == COUNTY and body["properties"]["active"] is True
    in_db = session.execute(
        text(
            "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography)"
            " FROM checkpoint WHERE id = :id"
        ),
        {"id": checkpoint_id, "x": TRUTH[0], "y": TRUTH[1]},
    ).scalar_one()
    assert in_db < 1.0

    one = client.get(f"/api/checkpoints/{checkpoint_id}")
    assert one.status_code == 200 and one.json()["properties"]["name"] == "村口"
    as_gcj = client.get(f"/api/checkpoints/{checkpoint_id}", params={"crs": "gcj02"}).json()
    assert metres(tuple(as_gcj["geometry"]["coordinates"]), (gx, gy)) < 1.0

    patched = client.patch(
        f"/api/checkpoints/{checkpoint_id}",
        json={
            "name": "村口（北）",
            "active": False,
            "note": None,
            "location": point(113.15, 22.05),
        },
    )
    assert patched.status_code == 200, patched.text
    props = patched.json()["properties"]
    assert (props["name"], props["active"], props["note"]) == ("村口（北）", False, None)
    assert patched.json()["geometry"]["coordinates"] == [113.15, 22.05]
    moved = client.patch(
        f"/api/checkpoints/{checkpoint_id}", json={"location": point(114.05, 22.05)}
    ).json()
    assert moved["properties"]["county_code"] == OTHER_COUNTY


def test_list_as_a_paged_feature_collection(client, county, checkpoint) -> None:
    for i in range(3):
        client.post(
            "/api/checkpoints",
            json={
                "name": f"B 门 {i}",
                "kind": "estate_gate",
                "location": point(113.15, 22.01 + i / 100),
            },
        )
    everything = client.get("/api/checkpoints", params={"within": COUNTY}).json()
    assert everything["type"] == "FeatureCollection" and everything["numberMatched"] == 4
    page = client.get("/api/checkpoints", params={"kind": "estate_gate", "limit": 2}).json()
    assert (page["numberMatched"], page["numberReturned"]) == (3, 2)
    assert page["links"][0]["rel"] == "next"
    in_a = client.get("/api/checkpoints", params={"within": TOWN_A}).json()
    assert [f["properties"]["id"] for f in in_a["features"]] == [checkpoint]
    boxed = client.get("/api/checkpoints", params={"bbox": "113.1,22.0,113.2,22.1"}).json()
    assert boxed["numberMatched"] == 3


def test_passages_flagged_attributed_and_masked(client, county, checkpoint) -> None:
    url = f"/api/checkpoints/{checkpoint}/passages"
    one = client.post(
        url,
        json={"passed_at": "2020-02-01T08:00:00", "resident_id": county.bob, "temperature_c": 37.2,
              "direction": "in"},
    )  # fmt: skip
    assert one.status_code == 201, one.text
    assert one.json()["flagged"] is False and one.json()["home_microgrid_code"] == MG_B1
    assert one.json()["passed_at"] == "2020-02-01T08:00:00+08:00"
    rows = [
        {"passed_at": "2020-02-01T09:00:00+08:00", "id_number": county.alice_id_number,
         "phone": county.alice_phone, "temperature_c": 37.3},
        {"passed_at": "2020-02-01T09:05:00+08:00", "person_name": "访客", "health_code": "yellow"},
        {"passed_at": "2020-02-01T09:10:00+08:00"},
        {"passed_at": "2020-02-01T09:15:00+08:00", "plate": "粤W12345", "temperature_c": 50},
        "not an object",
        {"passed_at": "2020-02-01T09:20:00+08:00", "plate": "粤W12345", "health_code": "green"},
        {"passed_at": "2020-02-01T09:25:00+08:00", "resident_id": 999_999_999},
        {"passed_at": "2020-02-01T09:30:00+08:00", "person_name": "x", "wings": 2},
    ]  # fmt: skip
    batch = client.post(url, json=rows)
    assert batch.status_code == 201, batch.text
    body = batch.json()
    assert body["stored"] == 3
    assert [(i["flagged"], i["home_microgrid_code"]) for i in body["items"]] == [
        (True, MG_A1), (True, None), (False, None),
    ]  # fmt: skip
    assert body["items"][0]["resident_id"] == county.alice
    rejected = {r["index"]: r["reason"] for r in body["rejected"]}
    assert sorted(rejected) == [2, 3, 4, 6, 7]
    assert "say who passed" in rejected[2]
    assert "temperature_c" in rejected[3]
    assert "valid dictionary" in rejected[4]
    assert "no resident with id 999999999" in rejected[6]
    assert "wings" in rejected[7]

    listed = client.get(url, params={"date": "2020-02-01"})
    assert listed.status_code == 200 and listed.json()["numberMatched"] == 4
    flagged = client.get(url, params={"date": "2020-02-01", "flagged": "true"}).json()
    assert flagged["numberMatched"] == 2
    assert client.get(url, params={"date": "2020-02-02"}).json()["numberMatched"] == 0
    for response in (batch, listed):
        assert county.alice_id_number not in response.text
        assert county.alice_phone not in response.text
        assert county.alice_id_number[-4:] in response.text and "138****8000" in response.text


def test_all_rows_refused_is_a_problem_with_every_reason(client, county, checkpoint) -> None:
    url = f"/api/checkpoints/{checkpoint}/passages"
    refused = client.post(url, json=[{"passed_at": "2020-02-01T09:00:00"}, {"plate": "粤W1"}])
    body = assert_problem(refused, 422, "no passage stored")
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert "body" not in body["rejected"][1]["reason"]  # reasons name the row's own field
    assert "passed_at" in body["rejected"][1]["reason"]
    single = client.post(url, json={"passed_at": "2020-02-01T09:00:00", "id_number": "123"})
    assert_problem(single, 422, "id_number")
    assert "123" not in single.json()["detail"].replace("passage refused", "")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"name": "x", "kind": "highway_exit", "location": point(112.5, 21.5)},
            "lies in no county",
        ),
        ({"name": "x", "kind": "highway_exit", "location": point(500, 22)}, "not a point on Earth"),
        (
            {"name": "x", "kind": "port", "location": point(1e308, 1e308), "crs": "gcj02"},
            "not a point on Earth",
        ),
        ({"name": "x", "kind": "bridge", "location": point(113.05, 22.05)}, "body.kind"),
        ({"name": "", "kind": "port", "location": point(113.05, 22.05)}, "body.name"),
        (
            {
                "name": "x",
                "kind": "port",
                "location": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
            },
            "body.location",
        ),
        (
            {"name": "x", "kind": "port", "location": {"type": "Point", "coordinates": [113.0]}},
            "body.location.coordinates",
        ),
        (
            {"name": "x", "kind": "port", "location": point(113.05, 22.05), "owner": "me"},
            "body.owner",
        ),
        ({"kind": "port", "location": point(113.05, 22.05)}, "body.name"),
    ],
)
def test_bad_checkpoints_are_4xx_problems(client, county, body, needle) -> None:
    assert_problem(client.post("/api/checkpoints", json=body), 422, needle)


def test_bad_requests_are_4xx_problems(client, county, checkpoint) -> None:
    url = f"/api/checkpoints/{checkpoint}"
    unknown = client.patch(url, json={"name": "x", "colour": "red", "speed": 3})
    problem = assert_problem(unknown, 422, "body.colour: Extra inputs are not permitted")
    assert "body.speed" in problem["detail"]
    assert_problem(client.patch(url, json={}), 422, "nothing to change")
    assert_problem(client.patch(url, json={"name": None}), 422, "name cannot be null")
    assert_problem(client.patch(url, json={"crs": "gcj02"}), 422, "give location too")
    assert_problem(client.patch(url, json={"kind": "bridge"}), 422, "body.kind")
    assert_problem(client.patch(url, json={"location": point(0, 0)}), 422, "lies in no county")
    assert_problem(
        client.patch("/api/checkpoints/999999999", json={"active": False}), 404, "no checkpoint"
    )
    assert_problem(client.get("/api/checkpoints/999999999"), 404, "no checkpoint with id 999999999")
    assert_problem(client.get(f"/api/checkpoints/{2**70}"), 422, "checkpoint_id")
    assert_problem(
        client.post("/api/checkpoints", json={"name": "x", "kind": "port",
                                              "location": point(113.05, 22.05), "crs": "mars"}),
        400, "unknown coordinate reference system",
    )  # fmt: skip
    assert_problem(client.get("/api/checkpoints", params={"kind": "bridge"}), 422, "kind 'bridge'")
    assert_problem(client.get("/api/checkpoints", params={"bbox": "1,2,3"}), 422, "bbox")
    assert_problem(client.get("/api/checkpoints", params={"within": "nope"}), 404, "no area")
    assert_problem(
        client.get("/api/checkpoints", params={"crs": "mars"}), 400, "unknown coordinate"
    )

    passages = f"{url}/passages"
    json_header = {"content-type": "application/json"}
    nan = client.post(
        passages, content=b'{"passed_at": "2020-02-01T09:00:00", "plate": "A", "temperature_c": NaN}',
        headers=json_header,
    )  # fmt: skip
    assert_problem(nan, 422, "temperature_c")
    assert_problem(client.post(passages, content=b"{oops", headers=json_header), 422, "JSON")
    assert_problem(client.post(passages, json=[]), 422, "holds no passage")
    assert_problem(client.post(passages), 422, "body")
    assert_problem(client.post(passages, json=7), 422, "valid dictionary")
    assert_problem(
        client.post(passages, json={"passed_at": "2999-01-01T00:00:00", "plate": "A"}),
        422,
        "in the future",
    )
    assert_problem(
        client.post(passages, json={"passed_at": "2020-02-01T09:00:00", "plate": "A\x00"}),
        422,
        "the body holds a NUL character",
    )
    assert_problem(
        client.post("/api/checkpoints/999999999/passages", json={"passed_at": "2020-02-01T09:00:00", "plate": "A"}),
        404, "no checkpoint",
    )  # fmt: skip
    assert_problem(client.get("/api/checkpoints/999999999/passages"), 404, "no checkpoint")
    assert_problem(
        client.post(passages, json={"passed_at": "0001-01-01T00:00:00+08:00", "plate": "A"}),
        422,
        "before 2000",
    )
    assert_problem(client.get(passages, params={"date": "2020-02-31"}), 422, "date")
    assert_problem(
        client.get(passages, params={"date": "9999-12-31"}), 422, "date 9999-12-31 is outside"
    )
    assert_problem(client.get(passages, params={"flagged": "maybe"}), 422, "flagged")
    too_many = json.dumps([{"passed_at": "2020-02-01T09:00:00", "plate": "A"}] * 5_001).encode()
    assert_problem(
        client.post(passages, content=too_many, headers=json_header), 422, "at most 5000"
    )
