"""POST /api/areas/{grid}/suggest-microgrids on every grid of the demo county
as `make demo` builds it (75,000 households, grids of 300–500): every part one
contiguous polygon inside its grid, the parts not overlapping, every household
in exactly one part with the part's count equal to a recount from the points,
and at least 90 % of the parts within [30, 50]. Then one suggestion applied."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import text

from api.app import create_app
from api.deps import get_engine
from db.engine import engine_for
from tests.api.conftest import bearer
from tests.conftest import add_account, live_demo_database

COUNTY = "445321"


@pytest.fixture(scope="module")
def full_demo(pg) -> Iterator[tuple[TestClient, object]]:
    from tests.api.conftest import _HASH

    url, owner = live_demo_database(pg, "suggest_demo", households=75_000, seed=7)
    add_account(owner, name="suggest_admin", role="admin", areas=[], password_hash=_HASH)
    app = create_app()
    engine = engine_for(url)
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app) as client:
        client.headers.update(bearer(client, "suggest_admin"))
        yield client, owner
    engine.dispose()
    owner.dispose()


def test_suggestion_on_every_demo_grid(full_demo) -> None:
    client, owner = full_demo
    with owner.connect() as conn:
        grids = {
            code: shapely.from_wkb(bytes(wkb))
            for code, wkb in conn.execute(text(
                "SELECT code, ST_AsBinary(geom) FROM area WHERE level = 'grid' AND valid_to IS NULL ORDER BY code"))
        }  # fmt: skip
        points = {}
        for code, wkb in conn.execute(text(
            "SELECT g.code, ST_AsBinary(h.geom) FROM area g JOIN household h"
            " ON ST_Covers(g.geom, h.geom) WHERE g.level = 'grid' AND g.valid_to IS NULL")):  # fmt: skip
            points.setdefault(code, []).append(shapely.from_wkb(bytes(wkb)))
    assert len(grids) > 100
    parts_total = within_total = 0
    for code, grid in grids.items():
        response = client.post(f"/api/areas/{code}/suggest-microgrids", params={"min": 30, "max": 50})
        assert response.status_code == 200, (code, response.text)
        body = response.json()
        parts = [shape(f["geometry"]) for f in body["features"]]
        assert parts, code
        for part in parts:
            assert part.geom_type == "Polygon" and part.is_valid, code  # one piece each
            assert part.difference(grid).area < 1e-10, code
        assert shapely.union_all(parts).symmetric_difference(grid).area < 1e-9, code
        for i, a in enumerate(parts):
            for b in parts[i + 1 :]:
                assert a.intersection(b).area < 1e-12, code
        counted = [0] * len(parts)
        for point in points.get(code, []):
            holders = [i for i, part in enumerate(parts) if part.covers(point)]
            assert holders, (code, point)
            counted[min(holders)] += 1
        assert counted == [f["properties"]["households"] for f in body["features"]], code
        parts_total += len(parts)
        within_total += sum(30 <= n <= 50 for n in counted)
    share = within_total / parts_total
    print(f"{len(grids)} grids, {parts_total} parts, {share:.1%} within [30, 50]")
    assert share >= 0.90


def test_apply_a_suggestion(full_demo) -> None:
    client, owner = full_demo
    with owner.connect() as conn:
        grid = conn.execute(text(
            "SELECT parent_code FROM area WHERE level = 'microgrid' AND valid_to IS NULL"
            " GROUP BY parent_code ORDER BY parent_code LIMIT 1")).scalar_one()  # fmt: skip
    suggestion = client.post(f"/api/areas/{grid}/suggest-microgrids").json()
    stale = client.put(f"/api/areas/{grid}/microgrids", headers={"If-Match": '"layout.0"'},
                       json={"geometries": [f["geometry"] for f in suggestion["features"]], "reason": "按建议"})  # fmt: skip
    assert stale.status_code == 412
    applied = client.put(f"/api/areas/{grid}/microgrids", headers={"If-Match": suggestion["layout_etag"]},
                         json={"geometries": [f["geometry"] for f in suggestion["features"]], "reason": "按建议"})  # fmt: skip
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert sorted(body["households"].values()) == sorted(f["properties"]["households"] for f in suggestion["features"])
    assert body["unassigned_in_grid"] == 0
    layout = client.get(f"/api/areas/{grid}/microgrids").json()
    assert len(layout["features"]) == len(suggestion["features"])
    # The wall map follows: the grid's micro-grid layer shows the new parts.
    layer = client.get("/api/layers/coverage", params={"within": grid, "level": "microgrid"}).json()
    assert {f["properties"]["code"] for f in layer["features"]} == set(body["saved"])
    assert sum(f["properties"]["households"] for f in layer["features"]) == sum(body["households"].values())
