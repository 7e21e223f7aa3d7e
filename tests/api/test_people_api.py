"""Standard addresses, households and residents over HTTP, on the demo county:
paged, filtered, counted like an independent SQL recount, and masked."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine, text

ID_MASK = re.compile(r"^\d{4}\*{10}[\dX]{4}$")
PHONE_MASK = re.compile(r"^1\d{2}\*{4}\d{4}$")


@pytest.fixture(scope="module")
def recount(demo_db_url):
    """Run SQL on the demo database, for independent recounts."""
    engine = create_engine(demo_db_url)

    def run(sql: str, **params):
        with engine.connect() as connection:
            return connection.execute(text(sql), params).all()

    yield run
    engine.dispose()


def first_township(recount) -> str:
    return recount("SELECT code FROM area WHERE level = 'township' ORDER BY code LIMIT 1")[0][0]


def test_buildings_within_an_area(demo_client, recount) -> None:
    town = first_township(recount)
    body = demo_client.get("/api/buildings", params={"within": town, "limit": 5}).json()
    expected = recount(
        "SELECT count(*) FROM building b JOIN area a ON a.code = :c AND ST_Covers(a.geom, b.geom)",
        c=town,
    )[0][0]
    assert body["numberMatched"] == expected > 0
    assert body["numberReturned"] == len(body["features"]) == 5
    one = body["features"][0]
    assert one["geometry"]["type"] == "Point"
    assert {"code", "address", "township", "community", "households"} <= set(one["properties"])


def test_households_of_an_area_equal_its_figure(demo_client, recount) -> None:
    town = first_township(recount)
    figure = demo_client.get(f"/api/areas/{town}").json()["properties"]["households"]
    listed = demo_client.get(f"/api/areas/{town}/households", params={"limit": 1}).json()
    assert listed["numberMatched"] == figure
    located = demo_client.get(
        f"/api/areas/{town}/households", params={"status": "located", "limit": 1}
    ).json()
    assert located["numberMatched"] == figure  # the demo's households are all located
    none = demo_client.get(f"/api/areas/{town}/households", params={"status": "unlocated"}).json()
    assert none["numberMatched"] == 0
    household = listed["features"][0]["properties"]
    assert household["microgrid_code"].startswith(town)


def test_residents_are_masked_and_filtered(demo_client, recount) -> None:
    body = demo_client.get("/api/residents", params={"within": "445321", "limit": 50}).json()
    assert body["numberMatched"] == recount("SELECT count(*) FROM resident")[0][0]
    for item in body["items"]:
        assert ID_MASK.match(item["id_number"]), item["id_number"]
        assert PHONE_MASK.match(item["phone"]), item["phone"]
    local = demo_client.get(
        "/api/residents", params={"within": "445321", "category": "nonlocal_temporary", "limit": 1}
    ).json()
    assert (
        local["numberMatched"]
        == recount("SELECT count(*) FROM resident WHERE category = 'nonlocal_temporary'")[0][0]
    )
    hubei = demo_client.get(
        "/api/residents", params={"within": "445321", "tag": "hubei_linked", "limit": 1}
    ).json()
    assert (
        hubei["numberMatched"]
        == recount("SELECT count(*) FROM resident WHERE 'hubei_linked' = ANY(tags)")[0][0]
        > 0
    )


def test_no_full_id_or_phone_in_any_body(demo_client, recount) -> None:
    resident_id, id_number, phone = recount(
        "SELECT id, id_number, phone FROM resident ORDER BY id LIMIT 1"
    )[0]
    for path in ("/api/residents?within=445321&limit=200", f"/api/residents/{resident_id}"):
        raw = demo_client.get(path).text
        assert id_number not in raw and phone not in raw


def test_resident_detail_and_bad_filters(demo_client, recount) -> None:
    resident_id = recount("SELECT id FROM resident ORDER BY id LIMIT 1")[0][0]
    detail = demo_client.get(f"/api/residents/{resident_id}").json()
    assert (
        detail["resident"]["id"] == resident_id and "history" in detail and "quarantines" in detail
    )
    assert demo_client.get("/api/residents/999999999").status_code == 404
    for params, needle in [
        ({"within": "445321", "category": "alien"}, "category 'alien'"),
        ({"within": "445321", "quarantine": "maybe"}, "quarantine 'maybe'"),
        ({"within": "nope"}, "no area with code 'nope'"),
    ]:
        response = demo_client.get("/api/residents", params=params)
        assert response.status_code in (404, 422) and needle in response.json()["detail"]
    bad = demo_client.get("/api/areas/445321/households", params={"status": "lost"})
    assert bad.status_code == 422 and "status 'lost'" in bad.json()["detail"]
