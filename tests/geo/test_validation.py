"""geo.validation: each rule on crafted polygons near Xinxing (lon 112.2, lat 22.7).

Shapes are drawn in metres in a local equal-area projection and converted to WGS84, so
the expected areas and distances are known exactly.
"""

from __future__ import annotations

import json
import time

import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from geo.crs import project_to_metres, unproject_from_metres
from geo.errors import InvalidInput
from geo.validation import (
    RULES,
    BoundaryFeature,
    ExistingSibling,
    Issue,
    ValidationLimits,
    ValidationReport,
    display_width,
    format_report_table,
    validate_boundaries,
)

ORIGIN = (112.2, 22.7)


def wgs(geom_m: BaseGeometry) -> BaseGeometry:
    """A shape drawn in metres around ORIGIN, as WGS84 lon/lat."""
    return unproject_from_metres(geom_m, origin=ORIGIN)


def square(x0: float, y0: float, x1: float, y1: float) -> BaseGeometry:
    """A square straight in metres: densified every 10 m, so that in lon/lat
    (where the validator reads edges as straight) it stays square within 0.1 mm,
    and shared edges of a tiling keep identical vertices."""
    return wgs(shapely.segmentize(box(x0, y0, x1, y1), max_segment_length=10.0))


def feature(
    index: int, geom: BaseGeometry | None, *, code: str | None = None, name: str | None = None
) -> BoundaryFeature:
    return BoundaryFeature(
        index=index,
        code=f"44532110{index:04d}" if code is None else code,
        name=f"第{index}网格" if name is None else name,
        geom_4326=geom,
    )


def rules(report: ValidationReport) -> list[str]:
    return [issue.rule for issue in report.issues]


def only(report: ValidationReport, rule: str) -> Issue:
    found = [issue for issue in report.issues if issue.rule == rule]
    assert len(found) == 1, report.issues
    return found[0]


def location_m(issue: Issue) -> Point:
    assert issue.location is not None
    projected = project_to_metres(Point(issue.location), origin=ORIGIN)
    assert isinstance(projected, Point)
    return projected


PARENT = square(0, 0, 1000, 1000)


def quarters() -> list[BoundaryFeature]:
    """Four 500 m squares that tile PARENT exactly."""
    return [
        feature(1, square(0, 0, 500, 500)),
        feature(2, square(500, 0, 1000, 500)),
        feature(3, square(0, 500, 500, 1000)),
        feature(4, square(500, 500, 1000, 1000)),
    ]


# --- a clean import ------------------------------------------------------------------------


def test_a_clean_tiling_has_no_issues() -> None:
    report = validate_boundaries(quarters(), parent_geom_4326=PARENT)
    assert report.issues == []
    assert report.ok
    assert report.to_dict() == {"ok": True, "error_count": 0, "warning_count": 0, "issues": []}


# --- shape rules ----------------------------------------------------------------------------


def test_bow_tie_is_invalid_with_its_crossing_point() -> None:
    bow_tie = wgs(Polygon([(0, 0), (500, 500), (500, 0), (0, 500)]))
    report = validate_boundaries([feature(7, bow_tie, code="X7")])
    issue = only(report, "invalid_geometry")
    assert issue.severity == "error"
    assert issue.feature == 7 and issue.code == "X7"
    assert "self-intersection" in issue.message
    assert "row 7" in issue.message
    # locations are rounded to 6 decimals (about 0.1 m)
    assert location_m(issue).distance(Point(250, 250)) < 0.2
    assert not report.ok


def test_hole_outside_its_shell_is_invalid() -> None:
    shell = [(0, 0), (500, 0), (500, 500), (0, 500)]
    hole = [(600, 600), (700, 600), (700, 700), (600, 700)]
    report = validate_boundaries([feature(1, wgs(Polygon(shell, [hole])))])
    issue = only(report, "invalid_geometry")
    assert "hole lies outside shell" in issue.message
    assert location_m(issue).distance(Point(600, 600)) < 0.2


@pytest.mark.parametrize(
    ("geom", "said"),
    [
        (None, "no geometry"),
        (Polygon(), "no geometry"),
        (LineString([(112.2, 22.7), (112.3, 22.8)]), "a LineString"),
        (Point(112.2, 22.7), "a Point"),
    ],
)
def test_geometry_type(geom: BaseGeometry | None, said: str) -> None:
    report = validate_boundaries([feature(3, geom)])
    issue = only(report, "geometry_type")
    assert said in issue.message and "Polygon or MultiPolygon" in issue.message


def test_multipolygon_is_accepted() -> None:
    parts = MultiPolygon([box(0, 0, 100, 100), box(200, 0, 300, 100)])
    assert validate_boundaries([feature(1, wgs(parts))]).ok


def test_projected_coordinates_are_caught_before_anything_else() -> None:
    mercator_box = box(12_490_000, 2_590_000, 12_500_000, 2_600_000)
    report = validate_boundaries([feature(1, mercator_box)], parent_geom_4326=PARENT)
    issue = only(report, "coordinate_range")
    assert "not lon/lat degrees" in issue.message
    assert "outside_parent" not in rules(report)


def test_vertex_cap() -> None:
    circle_m = Point(0, 0).buffer(200, quad_segs=16)  # 65 coordinates
    report = validate_boundaries(
        [feature(2, wgs(circle_m))], limits=ValidationLimits(max_vertices_per_feature=64)
    )
    issue = only(report, "too_many_vertices")
    assert issue.measure == 65 and issue.unit is None
    assert "65 vertices" in issue.message and "64" in issue.message
    ok = validate_boundaries(
        [feature(2, wgs(circle_m))], limits=ValidationLimits(max_vertices_per_feature=65)
    )
    assert ok.ok


# --- attribute rules --------------------------------------------------------------------------


def test_missing_code_and_name() -> None:
    report = validate_boundaries(
        [
            BoundaryFeature(index=1, code=None, name="  ", geom_4326=square(0, 0, 100, 100)),
            BoundaryFeature(index=2, code=" ", name=None, geom_4326=square(100, 0, 200, 100)),
        ]
    )
    assert sorted(rules(report)) == ["missing_code", "missing_code", "missing_name", "missing_name"]
    assert {issue.feature for issue in report.issues} == {1, 2}


def test_duplicate_codes_in_the_file_and_against_stored_siblings() -> None:
    report = validate_boundaries(
        [
            feature(1, square(0, 0, 100, 100), code="445321001"),
            feature(2, square(100, 0, 200, 100), code=" 445321001 "),  # whitespace stripped
            feature(3, square(200, 0, 300, 100), code="445321009"),
        ],
        existing_siblings=[
            ExistingSibling(code="445321009", geom_4326=square(0, 500, 100, 600), name="旧网格")
        ],
    )
    duplicates = [issue for issue in report.issues if issue.rule == "duplicate_code"]
    assert [issue.feature for issue in duplicates] == [2, 3]
    assert "already used by row 1" in duplicates[0].message
    assert "stored sibling" in duplicates[1].message
    assert duplicates[0].code == "445321001"


def test_duplicate_names_among_siblings() -> None:
    report = validate_boundaries(
        [
            feature(1, square(0, 0, 100, 100), name="州背社区1号网格"),
            feature(2, square(100, 0, 200, 100), name="州背社区１号网格"),  # full-width 1
            feature(3, square(200, 0, 300, 100), name="司背社区"),
        ],
        existing_siblings=[
            ExistingSibling(code="445321099", geom_4326=square(0, 500, 100, 600), name="司背社区")
        ],
    )
    duplicates = [issue for issue in report.issues if issue.rule == "duplicate_name"]
    assert [issue.feature for issue in duplicates] == [2, 3]
    assert "row 1" in duplicates[0].message
    assert "445321099" in duplicates[1].message


# --- containment -------------------------------------------------------------------------------


def test_child_10_m_outside_the_parent_is_an_error_with_its_area() -> None:
    children = quarters()
    children[1] = feature(2, square(500, 0, 1010, 500))  # sticks out 10 m to the east
    report = validate_boundaries(children, parent_geom_4326=PARENT)
    issue = only(report, "outside_parent")
    assert issue.feature == 2 and issue.unit == "m2"
    # beyond the 1 m tolerance: a 9 m × 500 m strip
    assert issue.measure == pytest.approx(9 * 500, rel=1e-3)
    assert "up to 10.0 m beyond" in issue.message
    assert 1000 < location_m(issue).x < 1010
    assert "sibling_overlap" not in rules(report)


def test_child_within_the_tolerance_is_fine() -> None:
    children = quarters()
    children[1] = feature(2, square(500, -0.5, 1000.5, 500))  # 0.5 m out, east and south
    report = validate_boundaries(children, parent_geom_4326=PARENT)
    assert report.ok, report.issues


def test_child_entirely_outside_the_parent() -> None:
    report = validate_boundaries([feature(1, square(2000, 0, 2100, 100))], parent_geom_4326=PARENT)
    issue = only(report, "outside_parent")
    assert issue.measure == pytest.approx(100 * 100, rel=1e-3)


def test_unusable_parent_is_refused() -> None:
    with pytest.raises(InvalidInput):
        validate_boundaries(quarters(), parent_geom_4326=LineString([(112, 22), (113, 23)]))


# --- overlaps -----------------------------------------------------------------------------------


def test_overlap_of_100_by_100_m_is_about_10000_m2() -> None:
    report = validate_boundaries(
        [
            feature(1, square(0, 0, 500, 500), code="A"),
            feature(2, square(400, 400, 900, 900), code="B"),
        ]
    )
    issue = only(report, "sibling_overlap")
    assert issue.measure == pytest.approx(10_000, abs=1.0)
    assert issue.unit == "m2"
    assert "code A" in issue.message and "code B" in issue.message
    spot = location_m(issue)
    assert 400 <= spot.x <= 500 and 400 <= spot.y <= 500


def test_shared_edges_and_tiny_overlaps_are_not_overlaps() -> None:
    report = validate_boundaries(
        [
            feature(1, square(0, 0, 500, 500)),
            feature(2, square(500, 0, 1000, 500)),  # shares an edge
            feature(3, square(0, 499.999, 500, 1000)),  # overlaps by 0.0005 m²
        ]
    )
    assert "sibling_overlap" not in rules(report)


def test_overlap_with_a_stored_sibling_names_it_and_stored_pairs_are_not_blamed() -> None:
    report = validate_boundaries(
        [feature(1, square(0, 0, 500, 500), code="NEW")],
        existing_siblings=[
            ExistingSibling(code="OLD1", geom_4326=square(450, 0, 1000, 500)),
            ExistingSibling(code="OLD2", geom_4326=square(900, 0, 1500, 500)),  # overlaps OLD1
        ],
    )
    issue = only(report, "sibling_overlap")
    assert "stored sibling OLD1" in issue.message
    assert issue.measure == pytest.approx(50 * 500, rel=1e-3)


def test_contained_sibling_counts_as_overlap() -> None:
    report = validate_boundaries(
        [feature(1, square(0, 0, 500, 500)), feature(2, square(100, 100, 200, 200))]
    )
    assert only(report, "sibling_overlap").measure == pytest.approx(10_000, abs=1.0)


# --- gaps ----------------------------------------------------------------------------------------


def test_gap_between_siblings_inside_the_parent_is_a_warning_with_its_area() -> None:
    children = quarters()
    children[1] = feature(2, square(520, 0, 1000, 500))  # leaves a 20 m × 500 m strip
    report = validate_boundaries(children, parent_geom_4326=PARENT)
    issue = only(report, "gap")
    assert issue.severity == "warning"
    assert issue.feature is None
    assert issue.measure == pytest.approx(20 * 500, rel=1e-3)
    assert 500 <= location_m(issue).x <= 520
    assert report.ok  # a gap does not block the import
    assert report.warnings == [issue] and report.errors == []


def test_gap_counts_stored_siblings_as_cover() -> None:
    children = quarters()[:3]
    stored = [ExistingSibling(code="S4", geom_4326=square(500, 500, 1000, 1000))]
    report = validate_boundaries(children, parent_geom_4326=PARENT, existing_siblings=stored)
    assert report.issues == []


def test_without_parent_holes_among_siblings_are_gaps() -> None:
    ring = [
        feature(1, square(0, 0, 300, 100)),
        feature(2, square(0, 200, 300, 300)),
        feature(3, square(0, 100, 100, 200)),
        feature(4, square(200, 100, 300, 200)),
    ]
    report = validate_boundaries(ring)
    issue = only(report, "gap")
    assert issue.measure == pytest.approx(100 * 100, rel=1e-3)
    assert location_m(issue).distance(Point(150, 150)) < 50


def test_small_gaps_below_the_minimum_are_ignored() -> None:
    children = quarters()
    children[1] = feature(2, square(500.001, 0, 1000, 500))  # 0.5 m² sliver
    report = validate_boundaries(children, parent_geom_4326=PARENT)
    assert report.issues == []


# --- robustness ----------------------------------------------------------------------------------


def test_invalid_features_do_not_stop_the_other_rules() -> None:
    bow_tie = wgs(Polygon([(0, 0), (500, 500), (500, 0), (0, 500)]))
    report = validate_boundaries(
        [
            feature(1, bow_tie),
            feature(2, None, name=" "),
            feature(3, square(400, 0, 900, 500)),  # overlaps the bow-tie's right triangle
            feature(4, square(2000, 0, 2100, 100)),  # outside the parent
        ],
        parent_geom_4326=square(0, 0, 1000, 1000),
    )
    found = set(rules(report))
    assert {"invalid_geometry", "geometry_type", "missing_name", "outside_parent"} <= found
    assert "sibling_overlap" in found  # the repaired bow-tie still takes part
    assert "gap" in found


def test_report_is_json_ready() -> None:
    children = quarters()
    children[1] = feature(2, square(500, 0, 1010, 500))
    report = validate_boundaries(children, parent_geom_4326=PARENT)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["error_count"] == 1
    (issue,) = data["issues"]
    assert set(issue) == {
        "severity",
        "rule",
        "feature",
        "code",
        "message",
        "location",
        "measure",
        "unit",
    }
    lon, lat = issue["location"]
    assert 112.2 < lon < 112.3 and 22.6 < lat < 22.8
    assert issue["rule"] in RULES


def test_ten_thousand_features_are_checked_quickly() -> None:
    # A 100 × 100 tiling of 50 m cells with one overlap and one hole: the STRtree keeps
    # this near-linear (a few seconds at most, not the minutes of an all-pairs loop).
    size_m = 50.0
    hole_at = 5050
    cells_m = [
        box(i * size_m, j * size_m, (i + 1) * size_m, (j + 1) * size_m)
        for i in range(100)
        for j in range(100)
    ]
    cells_m[0] = box(0, 0, size_m + 10, size_m)  # 10 m into its east neighbour
    features = [feature(k + 1, wgs(cell_m)) for k, cell_m in enumerate(cells_m) if k != hole_at]
    parent = square(0, 0, 100 * size_m, 100 * size_m)
    started = time.perf_counter()
    report = validate_boundaries(features, parent_geom_4326=parent)
    elapsed_s = time.perf_counter() - started
    assert sorted(rules(report)) == ["gap", "sibling_overlap"]
    assert only(report, "gap").measure == pytest.approx(size_m * size_m, rel=1e-3)
    assert only(report, "sibling_overlap").measure == pytest.approx(10 * size_m, rel=1e-3)
    assert elapsed_s < 60


# --- the text table ------------------------------------------------------------------------------


def test_table_aligns_chinese_text_and_truncates() -> None:
    report = validate_boundaries(
        [
            feature(1, square(0, 0, 500, 500), code="新兴县甲", name="州背社区"),
            feature(2, square(400, 400, 900, 900), code="B", name="州背社区"),
            feature(3, None, code="C"),
        ]
    )
    table = format_report_table(report)
    lines = table.splitlines()
    assert lines[0].startswith("3 errors")
    header, *rows = lines[1:]
    column = display_width(header[: header.index("MESSAGE")])
    for row in rows:
        # the message column starts at the same display column on every row
        prefix = row[: row.index("row ")]
        assert display_width(prefix) == column, table
    short = format_report_table(report, max_rows=1)
    assert short.splitlines()[-1] == "… 2 more issue(s) not shown"
    assert format_report_table(ValidationReport()) == "No problems found."


def test_display_width_counts_wide_characters_twice() -> None:
    assert display_width("新兴县") == 6
    assert display_width("abc") == 3
    assert display_width("１") == 2
