"""The daily report (GET /api/reports/daily.xlsx) and the situation map
(GET /api/reports/situation.html) on the demo county: every row of the
workbook, and its total, equal the layers' figures for the same area and
date; nothing personal is in either."""

from __future__ import annotations

import io
import re
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, text

from geo.daily_report import COLUMNS, FIRST_DATA_ROW, REPORT_TITLE

COUNTY = "445321"
DAY = "2020-02-06"
LEVELS = ("township", "community", "grid", "microgrid")
# workbook column header (English) → (layer, "numerator" | "denominator")
FROM_LAYERS = {
    "Households in round": ("coverage", "denominator"),
    "Complete": ("coverage", "numerator"),
    "Incomplete": ("incomplete", "numerator"),
    "Unvisited": ("unvisited", "numerator"),
    "Quarantined": ("quarantine", "numerator"),
    "Overdue checks": ("quarantine_overdue", "numerator"),
    "Fever": ("fever", "numerator"),
    "Active cases": ("cases", "numerator"),
    "Flagged passages": ("checkpoint_flags", "numerator"),
}
COUNTS = ("Households", "Visited", *FROM_LAYERS)


@pytest.fixture(scope="module")
def workbook_response(demo_db_url, demo_admin):
    """The report's response, fetched once for the module."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_engine
    from db.engine import engine_for
    from tests.api.conftest import bearer

    app = create_app()
    demo_engine = engine_for(demo_db_url)
    app.dependency_overrides[get_engine] = lambda: demo_engine
    with TestClient(app) as test_client:
        test_client.headers.update(bearer(test_client, demo_admin))
        response = test_client.get(
            "/api/reports/daily.xlsx", params={"within": COUNTY, "date": DAY}
        )
        layers = {
            (layer, level): test_client.get(
                f"/api/layers/{layer}", params={"within": COUNTY, "as_of": DAY, "level": level}
            ).json()
            for layer in {layer for layer, _ in FROM_LAYERS.values()}
            for level in LEVELS
        }
    return response, layers


def _sheet_rows(content: bytes):
    sheet = load_workbook(io.BytesIO(content)).active
    english = [c.value for c in sheet[FIRST_DATA_ROW - 1]]
    rows = []
    total = None
    for values in sheet.iter_rows(min_row=FIRST_DATA_ROW, values_only=True):
        if values[0] == "合计":
            total = dict(zip(english, values, strict=True))
            break
        rows.append(dict(zip(english, values, strict=True)))
    return sheet, rows, total


def test_the_report_is_an_xlsx_attachment_with_a_chinese_filename(workbook_response):
    response, _ = workbook_response
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f'filename="wangge-daily-{COUNTY}-{DAY}.xlsx"' in disposition
    encoded = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert encoded is not None
    assert unquote(encoded.group(1)).endswith(f"{REPORT_TITLE}_{DAY}.xlsx")
    assert disposition.isascii()


def test_title_date_and_header(workbook_response, demo_client):
    response, _ = workbook_response
    sheet, _, _ = _sheet_rows(response.content)
    county = demo_client.get(f"/api/areas/{COUNTY}", params={"as_of": DAY}).json()
    name = county.get("name") or county["properties"]["name"]
    assert sheet["A1"].value == f"{name}{REPORT_TITLE}"
    assert DAY in sheet["A2"].value
    assert [c.value for c in sheet[FIRST_DATA_ROW - 2]] == [zh for zh, *_ in COLUMNS]
    assert sheet.freeze_panes == f"E{FIRST_DATA_ROW}"
    coverage = sheet.cell(row=FIRST_DATA_ROW, column=11)
    assert coverage.number_format == "0.0%"


def test_every_row_and_the_total_equal_the_layers(workbook_response):
    response, layers = workbook_response
    _, rows, total = _sheet_rows(response.content)
    assert total is not None
    by_code = {row["Code"]: row for row in rows}
    assert len(by_code) == len(rows)

    listed = 0
    for level in LEVELS:
        coverage = layers[("coverage", level)]
        assert coverage["features"], level
        for feature in coverage["features"]:
            props = feature["properties"]
            row = by_code[props["code"]]
            assert row["Area"] == props["name"]
            assert row["Households"] == props["households"]
            for header, (layer, member) in FROM_LAYERS.items():
                theirs = next(
                    f["properties"][member]
                    for f in layers[(layer, level)]["features"]
                    if f["id"] == props["code"]
                )
                assert row[header] == theirs, (props["code"], header)
            assert row["Visited"] == row["Complete"] + row["Incomplete"]
            if props["value"] is None:
                assert row["Coverage"] == "—"
            else:
                assert row["Coverage"] * 100 == pytest.approx(props["value"], abs=0.005)
            listed += 1
    assert listed == len(rows)  # every row is an area of a level, and every area has a row

    for header, (layer, member) in FROM_LAYERS.items():
        assert total[header] == layers[(layer, "township")]["totals"][member], header
    assert total["Households"] == layers[("coverage", "township")]["totals"]["households"]
    assert total["Coverage"] * 100 == pytest.approx(
        layers[("coverage", "township")]["totals"]["value"], abs=0.005
    )
    assert total["Complete"] > 0 and total["Quarantined"] > 0


def test_parents_come_before_children_and_are_their_sums(workbook_response):
    response, layers = workbook_response
    _, rows, total = _sheet_rows(response.content)
    parent_of = {
        f["properties"]["code"]: f["properties"]["parent"]
        for level in LEVELS
        for f in layers[("coverage", level)]["features"]
    }
    seen: set[str] = set()
    children: dict[str, list[dict]] = {}
    for row in rows:
        parent = parent_of[row["Code"]]
        if row["Level"] != "镇(街道)":
            assert parent in seen, row["Code"]  # its parent came first
        seen.add(row["Code"])
        children.setdefault(parent, []).append(row)
    for row in rows:
        kids = children.get(row["Code"])
        if kids:
            for header in COUNTS:
                assert row[header] == sum(k[header] for k in kids), (row["Code"], header)
    tops = children[COUNTY]
    for header in COUNTS:
        assert total[header] == sum(t[header] for t in tops)


def test_no_personal_data_in_the_report(workbook_response, demo_db_url):
    response, _ = workbook_response
    sheet, _, _ = _sheet_rows(response.content)
    strings = {str(c.value) for row in sheet.iter_rows() for c in row if isinstance(c.value, str)}
    text_blob = "\n".join(strings)
    assert not re.search(r"\d{17}[\dXx]", text_blob)  # ID numbers
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text_blob)  # mobile numbers
    engine = create_engine(demo_db_url)
    try:
        with engine.connect() as conn:
            names = {r[0] for r in conn.execute(text("SELECT name FROM resident")).all()}
    finally:
        engine.dispose()
    assert names and not (names & strings)


def test_situation_map_is_standalone(demo_client):
    response = demo_client.get(
        "/api/reports/situation.html", params={"within": COUNTY, "date": DAY}
    )
    assert response.status_code == 200, response.text
    page = response.text
    assert response.headers["content-type"].startswith("text/html")
    loads = re.findall(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=", page, re.I)
    assert loads == []
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page)
    assert "cdn.jsdelivr" not in page and "code.jquery" not in page
    assert 'id="figures-table"' in page and REPORT_TITLE in page and DAY in page
    assert "L.geoJson" in page or "L.geoJSON" in page


def test_reports_need_a_token_and_an_area_in_scope(anonymous, client):
    assert anonymous.get("/api/reports/daily.xlsx").status_code == 401
    assert anonymous.get("/api/reports/situation.html").status_code == 401
    missing = client.get("/api/reports/daily.xlsx", params={"within": "999999999", "date": DAY})
    assert missing.status_code == 404
    missing = client.get("/api/reports/situation.html", params={"within": "999999999"})
    assert missing.status_code == 404


def test_a_situation_map_of_a_date_with_no_areas_is_an_empty_map_not_an_error(demo_client) -> None:
    """Found by schemathesis: before any boundary was in force there is nothing to draw."""
    response = demo_client.get("/api/reports/situation.html", params={"date": "2000-01-01"})
    assert response.status_code == 200
    assert "<table" in response.text
