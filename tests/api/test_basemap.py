"""The basemap: none by default; Tianditu, XYZ and PMTiles when the operator
configures them, each refused with the reason when incomplete; a raster
PMTiles archive's tiles served by Wangge itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pmtiles.tile import TileType

from api.routes.basemap import configured_basemap
from api.settings import BasemapSettings
from geo.errors import InvalidInput
from tests.pmtiles_fixture import write_raster_pmtiles

BBOX = (112.0, 22.5, 112.4, 22.9)


def test_no_basemap_by_default(client, anonymous) -> None:
    response = client.get("/api/basemap")
    assert response.status_code == 200
    assert response.json() | {"attribution": ""} == {
        "kind": "none", "crs": "wgs84", "tiles": [], "subdomains": "", "attribution": "",
        "max_zoom": 18,
    }  # fmt: skip
    assert anonymous.get("/api/basemap").status_code == 401


def test_tianditu_needs_its_key_and_is_never_gcj02() -> None:
    with pytest.raises(InvalidInput, match="needs a key"):
        configured_basemap(BasemapSettings(kind="tianditu"))
    with pytest.raises(InvalidInput, match="not GCJ-02"):
        configured_basemap(BasemapSettings(kind="tianditu", tianditu_key="k", crs="gcj02"))
    config, _ = configured_basemap(BasemapSettings(kind="tianditu", tianditu_key="abc123"))
    client_view = config.client()
    assert client_view["crs"] == "wgs84" and len(client_view["tiles"]) == 2
    for template in client_view["tiles"]:
        assert template.endswith("tk=abc123")
        assert all(part in template for part in ("{s}", "{z}", "{x}", "{y}"))
    assert "天地图" in client_view["attribution"]


def test_xyz_needs_a_template() -> None:
    with pytest.raises(InvalidInput, match=r"\{z\}, \{x\} and \{y\}"):
        configured_basemap(BasemapSettings(kind="xyz", url="/tiles/a.png"))
    config, _ = configured_basemap(
        BasemapSettings(kind="xyz", url="/tiles/{z}/{x}/{y}.png", crs="gcj02")
    )
    assert config.client()["tiles"] == ["/tiles/{z}/{x}/{y}.png"]
    assert config.client()["crs"] == "gcj02"


def test_pmtiles_refusals(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="WANGGE_BASEMAP_PMTILES"):
        configured_basemap(BasemapSettings(kind="pmtiles"))
    with pytest.raises(InvalidInput, match="does not exist"):
        configured_basemap(BasemapSettings(kind="pmtiles", pmtiles=tmp_path / "missing.pmtiles"))
    junk = tmp_path / "junk.pmtiles"
    junk.write_bytes(b"not an archive at all" * 10)
    with pytest.raises(InvalidInput, match="not a PMTiles v3 archive"):
        configured_basemap(BasemapSettings(kind="pmtiles", pmtiles=junk))
    vector = tmp_path / "vector.pmtiles"
    write_raster_pmtiles(vector, bbox_lonlat=BBOX, zooms=range(8, 9), tile_type=TileType.MVT)
    with pytest.raises(InvalidInput, match="raster"):
        configured_basemap(BasemapSettings(kind="pmtiles", pmtiles=vector))


def test_pmtiles_tiles_are_served(client, app_in_session, tmp_path: Path) -> None:
    archive_path = tmp_path / "city.pmtiles"
    tiles = write_raster_pmtiles(archive_path, bbox_lonlat=BBOX, zooms=range(9, 12))
    app_in_session.state.basemap, app_in_session.state.basemap_archive = configured_basemap(
        BasemapSettings(kind="pmtiles", pmtiles=archive_path, crs="gcj02")
    )
    described = client.get("/api/basemap").json()
    assert described["kind"] == "pmtiles" and described["crs"] == "gcj02"
    assert described["tiles"] == ["/basemap/{z}/{x}/{y}"] and described["max_zoom"] == 11
    for (z, x, y), png in list(tiles.items())[:: max(1, len(tiles) // 20)]:
        response = client.get(f"/basemap/{z}/{x}/{y}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        assert response.content == png
    missing = client.get("/basemap/3/0/0")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "3/0/0" in missing.json()["detail"]
    assert client.get("/basemap/2/9/0").status_code == 404  # x outside the zoom's range


def test_no_archive_no_tiles(client) -> None:
    response = client.get("/basemap/10/830/445")
    assert response.status_code == 404
    assert "WANGGE_BASEMAP_KIND=pmtiles" in response.json()["detail"]


def test_serve_refuses_an_incomplete_basemap_at_start() -> None:
    wangge = Path(sys.executable).with_name("wangge")
    env = os.environ | {"WANGGE_BASEMAP_KIND": "tianditu", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    env.pop("WANGGE_BASEMAP_TIANDITU_KEY", None)
    done = subprocess.run([str(wangge), "serve", "--port", "1"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "needs a key" in done.stderr and "Traceback" not in done.stderr
