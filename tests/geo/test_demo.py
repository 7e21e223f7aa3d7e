"""The synthetic demo county: hierarchy, geometry invariants, bands, registry figures.

Areas are measured in metres (local LAEA projection of densified geometries),
never in degrees. Counts are recomputed here from the raw columns.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import MultiPolygon, shape

from geo.demo import (
    CATEGORIES,
    MICROGRID_BAND,
    DemoCounty,
    apportion,
    chinese_number,
    expected_registry_counts,
    generate_demo,
    id_check_digit,
)
from geo.errors import InvalidInput, NotFound
from geo.gazetteer import CountyGazetteer, county_gazetteer
from geo.partition import snap_multipolygon

REPO = Path(__file__).resolve().parents[2]
SHIPPED_OUTLINE = REPO / "data/boundaries/xinxing_445321_wgs84.geojson"
SHARED_OUTLINE = Path("/work/shared/data/boundaries/yunfu_445300_counties_wgs84.geojson")
XINXING_TOWNS = [
    "东成镇", "六祖镇", "大江镇", "天堂镇", "太平镇", "新城镇",
    "水台镇", "河头镇", "稔村镇", "簕竹镇", "车岗镇", "里洞镇",
]  # fmt: skip
LAEA = pyproj.Transformer.from_crs(
    "EPSG:4326", "+proj=laea +lat_0=22.6 +lon_0=112.2 +datum=WGS84 +units=m", always_xy=True
)
SMALL_HOUSEHOLDS = 6_000


def load_outline() -> MultiPolygon:
    """The shipped WGS84 outline of 新兴县 (or the shared copy while it is being built)."""
    if SHIPPED_OUTLINE.exists():
        features = json.loads(SHIPPED_OUTLINE.read_text(encoding="utf-8"))["features"]
    elif SHARED_OUTLINE.exists():
        features = json.loads(SHARED_OUTLINE.read_text(encoding="utf-8"))["features"]
        features = [f for f in features if str(f["properties"].get("adcode")) == "445321"]
    else:
        pytest.skip("no outline of 新兴县 available")
    geom = shape(features[0]["geometry"])
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def small_gazetteer(full: CountyGazetteer) -> CountyGazetteer:
    """Two communities per township; the seat keeps two 社区 and two villages so
    that its communities exceed 600 households and split into several grids."""
    towns = []
    for town in full.townships:
        if town.name == "新城镇":
            urban = [c for c in town.communities if c.endswith("社区")][:2]
            rural = [c for c in town.communities if not c.endswith("社区")][:2]
            keep = tuple(c for c in town.communities if c in urban + rural)
        else:
            keep = town.communities[:2]
        towns.append(dataclasses.replace(town, communities=keep))
    return dataclasses.replace(full, townships=tuple(towns))


def to_metres(geoms: list[MultiPolygon]) -> np.ndarray:
    """LAEA metres; densified (~10 m) because edges are straight in lon/lat only."""
    dense = shapely.segmentize(np.array(geoms, dtype=object), 1e-4)
    return shapely.transform(dense, lambda xy: np.column_stack(LAEA.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def outline() -> MultiPolygon:
    return load_outline()


@pytest.fixture(scope="module")
def gazetteer() -> CountyGazetteer:
    return county_gazetteer("445321")


@pytest.fixture(scope="module")
def demo(outline: MultiPolygon, gazetteer: CountyGazetteer) -> DemoCounty:
    return generate_demo(
        county_outline_4326=outline,
        gazetteer=small_gazetteer(gazetteer),
        households=SMALL_HOUSEHOLDS,
        seed=7,
        seat_township="新城镇",
    )


@pytest.fixture(scope="module")
def full_demo(outline: MultiPolygon, gazetteer: CountyGazetteer) -> tuple[DemoCounty, float]:
    started = time.perf_counter()
    county = generate_demo(county_outline_4326=outline, gazetteer=gazetteer)
    return county, time.perf_counter() - started


# --- gazetteer --------------------------------------------------------------------


def test_township_names_are_the_real_twelve(gazetteer: CountyGazetteer) -> None:
    assert gazetteer.name == "新兴县" and gazetteer.code == "445321"
    assert (gazetteer.province, gazetteer.city) == ("广东省", "云浮市")
    assert gazetteer.township_names() == XINXING_TOWNS  # forest farms left out
    seat = gazetteer.townships[XINXING_TOWNS.index("新城镇")]
    assert {"州背社区", "司背社区"} <= set(seat.communities)
    assert not any("虚拟" in c for t in gazetteer.townships for c in t.communities)


def test_unknown_county_code_is_not_found() -> None:
    with pytest.raises(NotFound, match="999999"):
        county_gazetteer("999999")
    with pytest.raises(InvalidInput):
        county_gazetteer("4453")


def test_other_counties_parse() -> None:
    luoding = county_gazetteer("445381")
    assert luoding.name == "罗定市" and luoding.city == "云浮市" and luoding.townships


# --- hierarchy and codes ------------------------------------------------------------


def test_codes_follow_the_hierarchy(demo: DemoCounty) -> None:
    lengths = {"county": 6, "township": 9, "community": 12, "grid": 15, "microgrid": 17}
    codes = {a.code: a for a in demo.areas}
    assert len(codes) == len(demo.areas)
    for area in demo.areas:
        assert len(area.code) == lengths[area.level] and area.code.isdigit()
        assert area.synthetic == (area.level != "county")
        if area.level == "county":
            assert area.parent_code is None
            continue
        assert area.parent_code is not None and area.code.startswith(area.parent_code)
        parent = codes[area.parent_code]
        assert lengths[parent.level] == len(area.parent_code)
    towns = demo.areas_of("township")
    assert [t.code for t in towns] == [f"445321{100 + i}" for i in range(12)]
    assert [t.name for t in towns] == XINXING_TOWNS
    assert demo.areas_of("community")[0].code == "445321100001"


def test_geometries_are_valid_multipolygons_on_the_6_decimal_grid(demo: DemoCounty) -> None:
    for area in demo.areas:
        assert isinstance(area.geom_4326, MultiPolygon), area.code
        assert area.geom_4326.is_valid and not area.geom_4326.is_empty, area.code
        coords = shapely.get_coordinates(area.geom_4326)
        assert np.array_equal(coords, np.round(coords, 6)), area.code


def check_siblings_do_not_overlap(county: DemoCounty) -> float:
    """Largest overlap (m²) between two areas with the same parent."""
    worst = 0.0
    for level in ("township", "community", "grid", "microgrid"):
        areas = county.areas_of(level)
        metric = to_metres([a.geom_4326 for a in areas])
        tree = shapely.STRtree(metric)
        left, right = tree.query(metric, predicate="intersects")
        keep = (left < right) & np.array(
            [areas[i].parent_code == areas[j].parent_code for i, j in zip(left, right, strict=True)]
        )
        if keep.any():
            overlap = shapely.area(shapely.intersection(metric[left[keep]], metric[right[keep]]))
            worst = max(worst, float(overlap.max()))
    return worst


def check_children_within_parents(county: DemoCounty) -> None:
    by_code = {a.code: a for a in county.areas}
    children = [a for a in county.areas if a.parent_code is not None]
    child_m = to_metres([a.geom_4326 for a in children])
    parent_m = to_metres([by_code[str(a.parent_code)].geom_4326 for a in children])
    within = shapely.within(child_m, shapely.buffer(parent_m, 1.0))
    assert within.all(), [children[i].code for i in np.flatnonzero(~within)][:5]


def check_children_cover_parents(county: DemoCounty) -> float:
    """Largest area (m²) of a parent not covered by its children, or vice versa."""
    metric = dict(
        zip(
            (a.code for a in county.areas),
            to_metres([a.geom_4326 for a in county.areas]),
            strict=True,
        )
    )
    kids: dict[str, list[shapely.Geometry]] = {}
    for area in county.areas:
        if area.parent_code is not None:
            kids.setdefault(area.parent_code, []).append(metric[area.code])
    worst = 0.0
    for area in county.areas:
        if area.level == "microgrid":
            continue
        union_m = shapely.union_all(kids[area.code])
        worst = max(worst, shapely.symmetric_difference(metric[area.code], union_m).area)
    return worst


def test_siblings_do_not_overlap(demo: DemoCounty) -> None:
    assert check_siblings_do_not_overlap(demo) < 1.0


def test_children_lie_within_their_parent(demo: DemoCounty) -> None:
    check_children_within_parents(demo)


def test_children_cover_their_parent(demo: DemoCounty) -> None:
    assert check_children_cover_parents(demo) < 1.0


def test_county_is_the_real_outline(demo: DemoCounty, outline: MultiPolygon) -> None:
    """Only the vertices where a boundary meets the outline were added (snapped ≤ 0.1 m)."""
    county = demo.areas[0].geom_4326
    county_xy = {tuple(p) for p in shapely.get_coordinates(county).tolist()}
    outline_xy = {tuple(p) for p in shapely.get_coordinates(snap_multipolygon(outline)).tolist()}
    assert outline_xy <= county_xy
    added = np.array(sorted(county_xy - outline_xy))
    added_m = np.column_stack(LAEA.transform(added[:, 0], added[:, 1]))
    (outline_m,) = to_metres([outline])
    assert shapely.distance(shapely.points(added_m), outline_m.boundary).max() < 0.2
    (county_m,) = to_metres([county])
    assert shapely.symmetric_difference(county_m, outline_m).area < 1e-6 * outline_m.area


def check_buildings_in_one_microgrid(county: DemoCounty) -> None:
    micro = county.areas_of("microgrid")
    tree = shapely.STRtree([m.geom_4326 for m in micro])
    b = county.buildings
    points = shapely.points(b.lon, b.lat)
    hit_point, hit_area = tree.query(points, predicate="intersects")
    assert np.array_equal(np.bincount(hit_point, minlength=len(b)), np.ones(len(b)))
    order = np.argsort(hit_point)
    found = np.array([micro[i].code for i in hit_area[order]])
    assert np.array_equal(found, b.microgrid_code)
    inside = shapely.contains(np.array([micro[i].geom_4326 for i in hit_area[order]]), points)
    assert inside.all()  # strictly inside: a point on a boundary is not "contained"
    for parent, child in (
        (b.county_code, b.township_code),
        (b.township_code, b.community_code),
        (b.community_code, b.grid_code),
        (b.grid_code, b.microgrid_code),
    ):
        assert all(c.startswith(p) for p, c in zip(parent.tolist(), child.tolist(), strict=True))
    assert all(
        c.startswith(m) for m, c in zip(b.community_code.tolist(), b.code.tolist(), strict=True)
    )


def test_every_building_is_strictly_inside_exactly_one_microgrid(demo: DemoCounty) -> None:
    check_buildings_in_one_microgrid(demo)


def test_households_and_residents_point_up_the_hierarchy(demo: DemoCounty) -> None:
    b, h, r = demo.buildings, demo.households, demo.residents
    assert np.array_equal(np.bincount(h.building, minlength=len(b)), b.households)
    assert np.array_equal(h.building_code, b.code[h.building])
    assert all(code.startswith(bc) for code, bc in zip(h.code, h.building_code, strict=True))
    assert np.array_equal(np.bincount(r.household, minlength=len(h)), h.persons)
    assert np.array_equal(r.household_code, h.code[r.household])
    assert h.persons.min() >= 1 and h.persons.max() <= 6
    # A flat exists in its building: unit and floor within the building's size.
    assert (h.unit <= b.units[h.building]).all() and (h.floor <= b.floors[h.building]).all()
    assert len(set(zip(h.building.tolist(), h.unit.tolist(), h.room.tolist(), strict=True))) == len(
        h
    )


def test_codes_are_unique(demo: DemoCounty) -> None:
    for column in (demo.buildings.code, demo.households.code, demo.residents.id_number):
        assert np.unique(column).size == column.size


# --- bands ----------------------------------------------------------------------------


def grid_and_micro_sizes(county: DemoCounty) -> tuple[list[int], list[int]]:
    per_grid = county.households_per_area("grid")
    per_community = Counter[str]()
    for code, n in per_grid.items():
        per_community[code[:12]] += n
    grids = [n for code, n in per_grid.items() if per_community[code[:12]] >= 300]
    return grids, list(county.households_per_area("microgrid").values())


def test_grids_and_microgrids_hold_the_banded_household_counts(demo: DemoCounty) -> None:
    grids, micros = grid_and_micro_sizes(demo)
    assert grids and min(grids) >= 300 and max(grids) <= 500
    assert min(micros) >= MICROGRID_BAND[0] and max(micros) <= MICROGRID_BAND[1]
    assert len(demo.areas_of("grid")) > len(demo.areas_of("community"))  # some split
    summary = demo.summary()
    grid_figures = dict(summary["grid_households"])  # type: ignore[call-overload]
    assert grid_figures.pop("exempt") == len(demo.areas_of("grid")) - len(grids)
    assert grid_figures == {
        "count": len(grids), "min": min(grids), "max": max(grids),
        "below_band": 0, "above_band": 0,
    }  # fmt: skip


def test_seat_town_is_the_most_urban(demo: DemoCounty) -> None:
    b = demo.buildings
    per_town = Counter[str]()
    for town, n in zip(b.township.tolist(), b.households.tolist(), strict=True):
        per_town[town] += n
    assert per_town.most_common(1)[0][0] == "新城镇"
    assert per_town["新城镇"] == round(0.4 * SMALL_HOUSEHOLDS)
    urban = b.road != ""
    assert (b.households[urban] >= 30).all() and (b.households[urban] <= 48).all()
    assert (b.households[~urban] <= 3).all()


def test_addresses_have_the_standard_parts(demo: DemoCounty) -> None:
    b = demo.buildings
    prefix = "广东省云浮市新兴县"
    urban = re.compile(r"^广东省云浮市新兴县\w+?镇\w+?社区\w+?(路|大道)\d+号\w+?\d+栋$")
    village = re.compile(r"^广东省云浮市新兴县\w+?镇\w+?村[一二三四五六七八九十]+组\d+号$")
    for i in range(len(b)):
        address = str(b.address[i])
        assert address.startswith(prefix + str(b.township[i]) + str(b.community[i]))
        assert (urban if b.road[i] else village).match(address), address
    assert len(set(zip(b.community.tolist(), b.address.tolist(), strict=True))) == len(b)


# --- determinism ------------------------------------------------------------------------


def test_same_seed_gives_identical_output(demo: DemoCounty, outline: MultiPolygon) -> None:
    again = generate_demo(
        county_outline_4326=outline,
        gazetteer=small_gazetteer(county_gazetteer("445321")),
        households=SMALL_HOUSEHOLDS,
        seed=7,
        seat_township="新城镇",
    )
    assert again.digest() == demo.digest()


def test_output_does_not_depend_on_the_hash_seed() -> None:
    """Two interpreters with different PYTHONHASHSEED produce the same digest."""
    script = (
        "from tests.geo.test_demo import *\n"
        "print(generate_demo(county_outline_4326=load_outline(),"
        " gazetteer=county_gazetteer('445321'), households=2000, seed=3).digest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }  # fmt: skip
    assert len(digests) == 1 and len(digests.pop()) == 64


def test_different_seed_gives_different_output(demo: DemoCounty, outline: MultiPolygon) -> None:
    other = generate_demo(
        county_outline_4326=outline,
        gazetteer=small_gazetteer(county_gazetteer("445321")),
        households=SMALL_HOUSEHOLDS,
        seed=8,
        seat_township="新城镇",
    )
    assert other.digest() != demo.digest()


# --- residents ---------------------------------------------------------------------------


def test_categories_and_tags_are_the_apportioned_registry(demo: DemoCounty) -> None:
    r = demo.residents
    n = len(r)
    expected = expected_registry_counts(n)
    shares = apportion(n, [162_651, 11_760, 12_569, 23_206])
    counts = Counter(r.category.tolist())
    assert [counts[c] for c in CATEGORIES] == shares.tolist()
    assert [expected[c] for c in CATEGORIES] == shares.tolist()
    tags = apportion(n, [655, 35, 210_186 - 690])
    assert int(r.hubei_linked.sum()) == tags[0] == expected["hubei_linked"]
    assert int(r.abroad_14d.sum()) == tags[1] == expected["abroad_14d"]
    assert not (r.hubei_linked & r.abroad_14d).any()
    summary = demo.summary()
    assert summary["residents_by_category"] == {c: counts[c] for c in CATEGORIES}
    assert 2.6 < n / len(demo.households) < 3.0


def test_apportion_is_exact_largest_remainder() -> None:
    assert apportion(10, [1, 1, 1]).tolist() == [4, 3, 3]
    assert apportion(210_186, [162_651, 11_760, 12_569, 23_206]).tolist() == [
        162_651, 11_760, 12_569, 23_206,
    ]  # fmt: skip
    assert apportion(7, [0.5, 0.25, 0.25]).tolist() == [3, 2, 2]  # .75 and .75 beat .5


def test_id_numbers_are_valid_gb11643_and_unique(demo: DemoCounty) -> None:
    r = demo.residents
    assert np.unique(r.id_number).size == len(r)
    weights = [2 ** (17 - i) % 11 for i in range(17)]
    for number, birth, sex, category, hubei in zip(
        r.id_number.tolist(), r.birth_date.tolist(), r.sex.tolist(),
        r.category.tolist(), r.hubei_linked.tolist(), strict=True,
    ):  # fmt: skip
        assert re.fullmatch(r"\d{17}[\dX]", number)
        total = sum(int(d) * w for d, w in zip(number[:17], weights, strict=True))
        assert number[17] == "10X98765432"[total % 11] == id_check_digit(number[:17])
        assert number[6:14] == birth.strftime("%Y%m%d")
        assert int(number[16]) % 2 == (1 if sex == "M" else 0)
        if category.startswith("local"):
            assert number[:6] == "445321"
        else:
            assert number[:6] != "445321"
            assert number.startswith("42") == hubei
    assert (r.birth_date < np.datetime64("2020-02-06")).all()
    assert (r.birth_date > np.datetime64("1919-01-01")).all()


def test_phone_numbers_are_valid_and_unique(demo: DemoCounty) -> None:
    phones = demo.residents.phone
    assert np.unique(phones).size == phones.size
    assert all(re.fullmatch(r"1(3\d|5[0-35-9]|8\d|9[189])\d{8}", p) for p in phones.tolist())


def test_names_are_chinese(demo: DemoCounty) -> None:
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", n) for n in demo.residents.name.tolist())


def test_rows_stream_every_column(demo: DemoCounty) -> None:
    first = next(demo.residents.rows())
    assert len(first) == len(demo.residents.column_names())
    assert sum(1 for _ in demo.buildings.rows()) == len(demo.buildings)


def test_chinese_numbers() -> None:
    assert [chinese_number(n) for n in (1, 3, 10, 12, 20, 35, 99)] == [
        "一", "三", "十", "十二", "二十", "三十五", "九十九",
    ]  # fmt: skip


def test_bad_arguments_are_rejected(outline: MultiPolygon, gazetteer: CountyGazetteer) -> None:
    with pytest.raises(InvalidInput):
        generate_demo(county_outline_4326=outline, gazetteer=gazetteer, households=-1)
    with pytest.raises(InvalidInput):
        generate_demo(
            county_outline_4326=outline, gazetteer=gazetteer, households=10, seat_township="x镇"
        )


# --- the default size (about 1–2 s here, so it runs every time) -------------------------


def test_default_size_is_fast_and_meets_every_invariant(
    full_demo: tuple[DemoCounty, float],
) -> None:
    county, seconds = full_demo
    assert seconds < 30
    summary = county.summary()
    assert summary["households"] == 75_000
    assert summary["areas"]["township"] == 12 and summary["areas"]["community"] == 199
    assert 200_000 < len(county.residents) < 220_000
    grids, micros = grid_and_micro_sizes(county)
    assert (min(grids), max(grids)) >= (300, 300) and max(grids) <= 500
    assert min(micros) >= 30 and max(micros) <= 50
    assert np.unique(county.residents.id_number).size == len(county.residents)
    check_buildings_in_one_microgrid(county)
    assert check_siblings_do_not_overlap(county) < 1.0
    check_children_within_parents(county)
