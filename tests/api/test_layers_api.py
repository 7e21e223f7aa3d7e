"""GET /api/layers and /api/layers/{layer} over HTTP on the hand-built county
(tests/db/layers_fixture.py), and the households behind a number."""

from __future__ import annotations

import pytest

from tests.db import layers_fixture as lf
from tests.db.layers_fixture import COUNTY, DAY, GRID, MG_A, MG_B

PROBLEM = "application/problem+json"


@pytest.fixture
def county(session) -> lf.Fixture:
    return lf.build(session.connection())


def get_layer(client, layer: str, **params) -> dict:
    query = {"within": GRID, "level": "microgrid", "as_of": DAY.isoformat(), **params}
    response = client.get(f"/api/layers/{layer}", params=query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    return response.json()


def test_the_layer_list_describes_every_layer(client) -> None:
    layers = client.get("/api/layers").json()["layers"]
    assert {layer["id"] for layer in layers} == {
        "coverage", "incomplete", "unvisited", "cases", "cases_total", "quarantine",
        "quarantine_overdue", "fever", "checkpoint_flags",
    }  # fmt: skip
    assert all(layer["description"] and layer["title"] for layer in layers)


def test_coverage_defaults_to_the_red_to_green_thresholds(client, county) -> None:
    body = get_layer(client, "coverage")
    legend = body["legend"]
    assert legend["method"] == "fixed" and legend["breaks"] == [60, 80, 95]
    assert [c["label"] for c in legend["classes"]] == ["< 60%", "60–80%", "80–95%", "≥ 95%"]
    assert legend["classes"][0]["colour"] == "#d7191c"  # red
    assert legend["classes"][-1]["colour"] == "#1a9641"  # green
    assert legend["no_data"]["colour"] == "#cccccc"
    props = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    assert props[MG_A]["value"] == 33.33 and props[MG_A]["numerator"] == 1
    assert props[MG_A]["denominator"] == 3 and props[MG_B]["value"] == 50.0
    for p in props.values():
        assert p["class"] == 0 and p["colour"] == legend["classes"][0]["colour"]
        assert set(p) >= {"code", "name", "level", "value", "numerator", "denominator", "class",
                          "colour"}  # fmt: skip
    assert body["totals"] == {"households": 5, "residents": 10, "numerator": 2,
                              "denominator": 5, "value": 40.0}  # fmt: skip
    assert body["round"]["id"] == county.round_id and body["numberReturned"] == 2


def test_geometry_is_geojson_in_wgs84_or_converted(client, county) -> None:
    wgs = get_layer(client, "coverage")["features"][0]["geometry"]
    assert wgs["type"] == "MultiPolygon"
    gcj = get_layer(client, "coverage", crs="gcj02")["features"][0]["geometry"]
    # Outside China GCJ-02 equals WGS84 — the fixture sits at 0°E 0°N: unchanged.
    assert gcj["coordinates"] == wgs["coordinates"]


@pytest.mark.parametrize("method", ["quantiles", "equal_interval", "natural_breaks"])
def test_data_driven_classes_hold_every_value_once(client, county, method) -> None:
    body = get_layer(client, "quarantine_overdue", classify=method, k=3, within=COUNTY,
                     level="microgrid")  # fmt: skip
    legend = body["legend"]
    counts = [c["count"] for c in legend["classes"]]
    assert sum(counts) == len([f for f in body["features"] if f["properties"]["value"] is not None])
    for feature in body["features"]:
        p = feature["properties"]
        cls = legend["classes"][p["class"]]
        assert cls["lower"] <= p["value"] <= cls["upper"] and p["colour"] == cls["colour"]


def test_fixed_breaks_from_the_query(client, county) -> None:
    body = get_layer(client, "coverage", classify="fixed", breaks="40,45")
    classes = {f["properties"]["code"]: f["properties"]["class"] for f in body["features"]}
    assert classes == {MG_A: 0, MG_B: 2}


def test_the_households_behind_the_number(client, county) -> None:
    layer = get_layer(client, "incomplete", within=GRID, level="grid")
    number = layer["features"][0]["properties"]["numerator"]
    listed = client.get(
        f"/api/areas/{GRID}/households", params={"status": "incomplete", "as_of": DAY.isoformat()}
    ).json()
    assert listed["numberMatched"] == number == 1
    assert [f["properties"]["id"] for f in listed["features"]] == [county.households["A2"]]
    unvisited = client.get(
        f"/api/areas/{GRID}/households", params={"status": "unvisited", "as_of": DAY.isoformat()}
    ).json()
    assert sorted(f["properties"]["id"] for f in unvisited["features"]) == sorted(
        [county.households["A3"], county.households["B2"]]
    )
    overdue = client.get(
        f"/api/areas/{MG_B}/households",
        params={"status": "quarantine_overdue", "as_of": DAY.isoformat()},
    ).json()
    assert [f["properties"]["id"] for f in overdue["features"]] == [county.households["B2"]]


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("/api/layers/nope", {}, 404, "no layer 'nope'"),
        ("/api/layers/coverage", {"classify": "jenks"}, 422, "classify 'jenks'"),
        ("/api/layers/cases", {"k": 20}, 422, "k=20"),
        ("/api/layers/coverage", {"classify": "fixed", "breaks": "80,60"}, 422, "ascending"),
        ("/api/layers/coverage", {"classify": "fixed", "breaks": "a,b"}, 422, "numbers"),
        ("/api/layers/cases", {"classify": "quantiles", "breaks": "1,2"}, 422, "breaks are for"),
        ("/api/layers/coverage", {"round": 987654}, 404, "no screening round"),
        ("/api/layers/coverage", {"within": "nowhere"}, 404, "no area with code 'nowhere'"),
        ("/api/layers/coverage", {"as_of": "2020-13-01"}, 422, "as_of"),
        ("/api/areas/{grid}/households", {"status": "lost"}, 422, "status 'lost'"),
    ],
)
def test_bad_requests_get_a_problem_that_says_why(client, county, path, params, status, says):
    query = {"within": GRID, "as_of": DAY.isoformat(), **params}
    response = client.get(path.format(grid=GRID), params=query)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert says in response.text


@pytest.mark.parametrize(
    "layer",
    [
        "coverage",
        "incomplete",
        "unvisited",
        "cases",
        "cases_total",
        "quarantine",
        "quarantine_overdue",
        "fever",
        "checkpoint_flags",
    ],
)
def test_hexagons_add_up_to_the_layer(client, county, layer) -> None:
    """With no suppression (k=1) the cells' numerators sum to the layer's total."""
    area = get_layer(client, layer, within=GRID, level="grid")["totals"]
    hexes = client.get(f"/api/hex/{layer}", params={"within": GRID, "res": 11, "k": 1,
                                                   "as_of": DAY.isoformat()}).json()  # fmt: skip
    assert sum(f["properties"]["numerator"] for f in hexes["features"]) == area["numerator"]
    assert sum(f["properties"]["denominator"] for f in hexes["features"]) == area["denominator"]


def test_hexagons_suppress_small_counts(client, county) -> None:
    """Each cell with fewer than k households, or a count from 1 to k-1, is
    returned without figures; the others keep them unchanged."""
    params = {"within": GRID, "res": 7, "as_of": DAY.isoformat()}
    raw = {f["id"]: f["properties"] for f in
           client.get("/api/hex/coverage", params=params | {"k": 1}).json()["features"]}  # fmt: skip
    for k in (2, 5):
        shown = client.get("/api/hex/coverage", params=params | {"k": k}).json()["features"]
        for feature in shown:
            props, truth = feature["properties"], raw[feature["id"]]
            hidden = truth["households"] < k or 0 < truth["numerator"] < k
            assert props["suppressed"] is hidden
            if hidden:
                assert props["numerator"] is None and props["value"] is None
                assert props["colour"] == "#cccccc"
            else:
                assert props["numerator"] == truth["numerator"]
                assert props["value"] == truth["value"]
    assert any(p["numerator"] == 1 for p in raw.values())  # something to suppress at k=2


def test_the_layer_answers_304_until_its_data_change(client, session, county) -> None:
    query = {"within": GRID, "level": "microgrid", "as_of": DAY.isoformat()}
    first = client.get("/api/layers/coverage", params=query)
    etag = first.headers["etag"]
    again = client.get("/api/layers/coverage", params=query, headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    from sqlalchemy import text

    session.execute(
        text("INSERT INTO visit (county_code, round_id, household_id, result, visited_at)"
             " VALUES (:c, :r, :h, 'complete', '2020-02-06 10:00+08')"),
        {"c": COUNTY, "r": county.round_id, "h": county.households["B2"]},
    )  # fmt: skip
    after = client.get("/api/layers/coverage", params=query, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    props = {f["properties"]["code"]: f["properties"] for f in after.json()["features"]}
    assert props[MG_B]["numerator"] == 2 and after.json()["totals"]["numerator"] == 3
