"""Vector tiles of the layers over HTTP, decoded with mapbox-vector-tile, on
the hand-built county (tests/db/layers_fixture.py)."""

from __future__ import annotations

import gzip
import math

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from tests.db import layers_fixture as lf
from tests.db.layers_fixture import DAY, GRID, MG_A, MG_B

MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture
def county(session) -> lf.Fixture:
    return lf.build(session.connection())


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a WGS84 point (the slippy-map formula)."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def get_tile(client, layer: str, z: int, *, headers=None, **params):
    x, y = tile_of(0.01, 0.005, z)
    query = {"within": GRID, "level": "microgrid", "as_of": DAY.isoformat(), **params}
    return client.get(f"/api/tiles/{layer}/{z}/{x}/{y}.mvt", params=query, headers=headers or {})


def decode(response) -> dict:
    body = response.content
    if response.headers.get("content-encoding") == "gzip" and body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)  # httpx normally inflates it already
    return mapbox_vector_tile.decode(body)


def test_a_tile_carries_the_layers_figures_classes_and_colours(client, county) -> None:
    layer = client.get(
        "/api/layers/coverage",
        params={"within": GRID, "level": "microgrid", "as_of": DAY.isoformat()},
    ).json()
    expected = {f["properties"]["code"]: f["properties"] for f in layer["features"]}
    response = get_tile(client, "coverage", 12)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    features = decode(response)["coverage"]["features"]
    got = {f["properties"]["code"]: f["properties"] for f in features}
    assert set(got) == {MG_A, MG_B}
    for code, props in got.items():
        for name in ("name", "level", "value", "numerator", "denominator", "class", "colour"):
            assert props[name] == pytest.approx(expected[code][name]), (code, name)
        assert features[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")


def test_gzip_when_accepted(client, county) -> None:
    response = get_tile(client, "cases", 12, headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    plain = get_tile(client, "cases", 12, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert decode(response) == mapbox_vector_tile.decode(plain.content)


def test_etag_gives_304_until_the_data_changes(client, session, county) -> None:
    first = get_tile(client, "coverage", 13)
    etag = first.headers["etag"]
    again = get_tile(client, "coverage", 13, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and not again.content
    # A visit completes B2: the tile's figures change, so must its ETag and content.
    session.execute(
        text(
            "INSERT INTO visit (county_code, round_id, household_id, result, visited_at)"
            " VALUES (:c, :r, :h, 'complete', '2020-02-06 10:00+08')"
        ),
        {"c": lf.COUNTY, "r": county.round_id, "h": county.households["B2"]},
    )
    after = get_tile(client, "coverage", 13, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    props = {
        f["properties"]["code"]: f["properties"] for f in decode(after)["coverage"]["features"]
    }
    assert props[MG_B]["numerator"] == 2 and props[MG_B]["value"] == 100.0


def test_different_requests_have_different_etags(client, county) -> None:
    a = get_tile(client, "coverage", 12).headers["etag"]
    b = get_tile(client, "coverage", 12, classify="fixed", breaks="40,45").headers["etag"]
    c = get_tile(client, "cases", 12).headers["etag"]
    assert len({a, b, c}) == 3


def test_a_tile_far_away_is_empty_not_an_error(client, county) -> None:
    response = client.get("/api/tiles/coverage/12/100/100.mvt", params={"within": GRID})
    assert response.status_code == 200 and decode(response) == {}


def _vertices(geometry: dict) -> int:
    def count(value) -> int:
        if isinstance(value, list) and value and isinstance(value[0], (int, float)):
            return 1
        return sum(count(v) for v in value) if isinstance(value, list) else 0

    return count(geometry["coordinates"])


def test_coarser_zooms_generalise_the_geometry(client, session, county) -> None:
    """A micro-grid with a saw-tooth edge of 1 m teeth: every tooth at zoom 16 (a tile unit of 0.15 m),
    none left at zoom 12 (where a tile unit is about 2.4 m)."""
    teeth = [(0.0 + i * 0.00001, 0.0 if i % 2 == 0 else 0.00001) for i in range(0, 101)]
    ring = [*teeth, (0.001, 0.001), (0.0, 0.001), teeth[0]]
    wkt = "MULTIPOLYGON(((" + ",".join(f"{x:.5f} {y:.5f}" for x, y in ring) + ")))"
    lf.add_area(session.connection(), code=GRID + "09", level="microgrid", parent=GRID, wkt=wkt)

    def saw(z: int) -> int:
        x, y = tile_of(0.0005, 0.0005, z)
        response = client.get(
            f"/api/tiles/quarantine/{z}/{x}/{y}.mvt",
            params={"within": GRID, "level": "microgrid", "as_of": DAY.isoformat()},
        )
        features = decode(response)["quarantine"]["features"]
        return sum(
            _vertices(f["geometry"]) for f in features if f["properties"]["code"] == GRID + "09"
        )

    assert saw(16) > 100 > 10 > saw(12) > 0


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/tiles/coverage/23/0/0.mvt", 422, "zoom 23"),
        ("/api/tiles/coverage/2/4/0.mvt", 422, "x and y run from 0 to 3"),
        ("/api/tiles/nope/2/1/1.mvt", 404, "no layer 'nope'"),
        ("/api/tiles/coverage/a/1/1.mvt", 422, "z"),
    ],
)
def test_bad_tile_requests(client, county, path, status, says) -> None:
    response = client.get(path)
    assert response.status_code == status and says in response.text
    assert response.headers["content-type"] == "application/problem+json"
