"""``wangge demo --register-dir`` and ``wangge import residents|addresses`` as a person runs them."""

from __future__ import annotations

import csv
import os

from sqlalchemy import create_engine, text

from tests.api.test_cli import run


def test_demo_register_round_trip_through_the_cli(pg, tmp_path) -> None:
    accounts_file = tmp_path / "demo-accounts.txt"
    url = pg.database("cli_registry")
    # WANGGE_DATA_DIR: the demo's accounts file goes beside it, never into the
    # developer's var/ (whose passwords are for the developer's own demo).
    env = dict(os.environ) | {"DATABASE_URL": url, "WANGGE_DATA_DIR": str(tmp_path / "pg")}
    made = run(
        "demo", "--households", "500", "--seed", "4", "--register-dir", str(tmp_path), env=env
    )
    assert made.returncode == 0, made.stderr
    assert accounts_file.read_text().count("\n") == 6  # a header and one line per role
    gbk, xlsx = tmp_path / "445321_register_gbk.csv", tmp_path / "445321_register.xlsx"
    assert gbk.exists() and xlsx.exists()

    checked = run("import", "residents", str(gbk), "--mode", "validate", env=env)
    assert checked.returncode == 0 and "nothing written" in checked.stdout
    # The demo already holds these people: the first import finds every one of
    # them by ID number (addresses typed like "302房" may name a new household);
    # the same register again, as XLSX, changes nothing at all.
    first = run("import", "residents", str(gbk), env=env)
    assert first.returncode == 0 and "; 0 new, " in first.stdout, first.stdout + first.stderr
    second = run("import", "residents", str(xlsx), env=env)
    assert second.returncode == 0, second.stderr
    assert "0 new, 0 updated" in second.stdout and "0 new households" in second.stdout

    bad = tmp_path / "bad.csv"
    with bad.open("w", encoding="gbk", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["姓名", "身份证号", "手机号", "现住地址", "人员类别"])
        writer.writerow(["张三", "445321199001011230", "13812345678", "新兴县新城镇", "本地常住"])
    refused = run("import", "residents", str(bad), env=env)
    assert (
        refused.returncode == 1
        and "nothing written" in refused.stderr
        and "row 2" in refused.stdout
    )
    per_row = run("import", "residents", str(bad), "--mode", "per-row", env=env)
    assert per_row.returncode == 0
    rejected = tmp_path / "bad.rejected.csv"
    assert rejected.exists() and "拒绝原因" in rejected.read_text(encoding="utf-8-sig")

    engine = create_engine(url)
    with engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT count(*) FROM resident WHERE name = '张三'")
            ).scalar_one()
            == 0
        )
    engine.dispose()


def test_import_addresses_cli_refuses_with_reasons(pg, tmp_path) -> None:
    url = pg.database("cli_registry")
    env = dict(os.environ) | {"DATABASE_URL": url}
    path = tmp_path / "addresses.csv"
    path.write_text("地址编码,标准地址,经度,纬度\nX1,火星,200,22\n", encoding="utf-8")
    result = run("import", "addresses", str(path), env=env)
    assert result.returncode == 1
    assert "row 2" in result.stdout and "lon: 200.0 is outside" in result.stdout
    unknown = run("import", "addresses", str(path), "--crs", "mars", env=env)
    assert unknown.returncode == 1 and "unknown coordinate reference system" in unknown.stderr
