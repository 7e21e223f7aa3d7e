"""H3 binning with suppression of small counts (geo/hexbin.py)."""

from __future__ import annotations

import h3
import pytest

from geo.errors import InvalidInput
from geo.hexbin import bin_households


def test_sums_per_cell_and_nothing_lost() -> None:
    lon = [113.0 + i * 1e-5 for i in range(12)] + [113.5]
    lat = [22.0] * 12 + [22.5]
    cells = bin_households(lon=lon, lat=lat, numerator=[1] * 12 + [3], denominator=[1] * 13,
                           resolution=8, min_count=5)  # fmt: skip
    assert len(cells) == 2
    crowded = next(c for c in cells if c.cell == h3.latlng_to_cell(22.0, 113.0, 8))
    assert (crowded.households, crowded.numerator, crowded.denominator) == (12, 12, 12)
    lonely = next(c for c in cells if c is not crowded)
    assert lonely.suppressed and lonely.numerator is None and lonely.households is None


@pytest.mark.parametrize(("num", "suppressed"), [(0, False), (1, True), (4, True), (5, False)])
def test_counts_from_1_to_k_minus_1_are_suppressed(num, suppressed) -> None:
    lon, lat = [113.0] * 10, [22.0] * 10
    numerator = [1] * num + [0] * (10 - num)
    (cell,) = bin_households(lon=lon, lat=lat, numerator=numerator, denominator=[1] * 10,
                             resolution=9)  # fmt: skip
    assert cell.suppressed is suppressed
    assert cell.numerator == (None if suppressed else num)


def test_the_polygon_is_the_cell_in_lon_lat() -> None:
    (cell,) = bin_households(lon=[113.2], lat=[22.7], numerator=[0], denominator=[1],
                             resolution=7, min_count=1)  # fmt: skip
    assert cell.polygon_4326.contains(__import__("shapely").Point(113.2, 22.7))


@pytest.mark.parametrize("res", [4, 12])
def test_resolution_out_of_range(res) -> None:
    with pytest.raises(InvalidInput, match=f"res={res}"):
        bin_households(lon=[], lat=[], numerator=[], denominator=[], resolution=res)
