"""The ``wangge`` command as a person runs it: real processes, real cluster."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import create_engine, text

from db.engine import normalise_url
from db.migrate import head_revision

WANGGE = Path(sys.executable).with_name("wangge")


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WANGGE), *args], capture_output=True, text=True, env=env, timeout=300
    )


def geojson(path: Path, features: list[tuple[str, str, tuple[float, float, float, float]]]) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"code": c, "name": n},
                        "geometry": mapping(box(*b)),
                    }
                    for c, n, b in features
                ],
            }
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def embedded_env():
    """Environment for a wangge with its own embedded cluster in a temp dir."""
    root = Path(tempfile.mkdtemp(prefix="wangge-cli-"))
    root.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {
        "WANGGE_DATA_DIR": str(root / "pg"),
        "WANGGE_DB_PORT": str(random.randint(30000, 39999)),
    }
    yield env
    run("db", "stop", env=env)
    shutil.rmtree(root, ignore_errors=True)


def test_db_lifecycle_and_data_survives_restart(embedded_env, tmp_path) -> None:
    env = embedded_env
    status = run("db", "status", env=env)
    assert status.returncode == 3 and status.stdout.startswith("missing")
    assert run("db", "start", env=env).returncode == 0
    assert run("db", "status", env=env).stdout.startswith("running")
    assert run("migrate", env=env).stdout.strip() == f"schema at {head_revision()}"
    county = geojson(
        tmp_path / "county.geojson", [("990001", "测试县", (112.0, 22.0, 112.1, 22.1))]
    )
    loaded = run("load-boundaries", str(county), "--level", "county", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "imported: 1 new" in loaded.stdout

    assert run("db", "stop", env=env).returncode == 0
    assert run("db", "status", env=env).stdout.startswith("stopped")
    assert run("db", "start", env=env).returncode == 0
    url = run("db", "url", env=env).stdout.strip()
    assert url.startswith("postgresql")
    engine = create_engine(normalise_url(url))
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT name FROM area WHERE code = '990001'")).scalar_one()
            == "测试县"
        )
    engine.dispose()
    # The server runs as the 'postgres' OS user when we are root.
    if os.geteuid() == 0:
        owner = Path(env["WANGGE_DATA_DIR"]).stat().st_uid
        import pwd

        assert pwd.getpwuid(owner).pw_name == "postgres"


def test_load_boundaries_reports_and_refuses(embedded_env, tmp_path) -> None:
    env = embedded_env
    assert run("db", "start", env=env).returncode == 0
    run("migrate", env=env)
    county = geojson(tmp_path / "county.geojson", [("990002", "二县", (113.0, 22.0, 113.1, 22.1))])
    assert run("load-boundaries", str(county), "--level", "county", env=env).returncode == 0

    bad = geojson(
        tmp_path / "towns.geojson",
        [
            ("990002100", "甲镇", (113.0, 22.0, 113.06, 22.05)),
            ("990002101", "乙镇", (113.05, 22.0, 113.1, 22.05)),
        ],
    )
    rejected = run(
        "load-boundaries", str(bad), "--level", "township", "--parent", "990002", env=env
    )
    assert rejected.returncode == 1
    assert "sibling_overlap" in rejected.stdout and "nothing written" in rejected.stderr

    as_json = run(
        "load-boundaries", str(bad), "--level", "township", "--parent", "990002", "--json", env=env
    )
    report = json.loads(as_json.stdout)
    assert report["applied"] is False and report["errors"] == 1

    good = geojson(tmp_path / "ok.geojson", [("990002100", "甲镇", (113.0, 22.0, 113.05, 22.05))])
    dry = run(
        "load-boundaries",
        str(good),
        "--level",
        "township",
        "--parent",
        "990002",
        "--dry-run",
        env=env,
    )
    assert dry.returncode == 0 and "dry run: passes, nothing written" in dry.stdout
    assert "gap" in dry.stdout  # the uncovered rest of the county is a warning

    for args, needle in [
        (("--crs", "mars"), "unknown coordinate reference system"),
        (("--parent", "000000"), "parent area '000000' does not exist"),
        (("--level", "planet"), "level 'planet'"),
    ]:
        options = {"--level": "township", **dict(zip(args[::2], args[1::2], strict=True))}
        flat = [item for pair in options.items() for item in pair]
        result = run("load-boundaries", str(good), *flat, env=env)
        assert result.returncode == 1 and needle in result.stderr, result.stderr
    empty = tmp_path / "empty.geojson"
    empty.write_bytes(b"")
    result = run("load-boundaries", str(empty), "--level", "county", env=env)
    assert result.returncode == 1 and "the file is empty" in result.stderr


def test_database_url_replaces_the_embedded_cluster(db_url) -> None:
    env = {k: v for k, v in os.environ.items()} | {"DATABASE_URL": db_url}
    assert run("db", "url", env=env).stdout.strip() == db_url.replace("+psycopg", "")
    refused = run("db", "start", env=env)
    assert refused.returncode == 1 and "DATABASE_URL is set" in refused.stderr
