"""Hexagon bins (H3) of household-level counts, with small counts suppressed.

The wall map may show where things are finer than the area boundaries, but
never so fine that a cell points at a person (DESIGN.md, privacy): a cell
whose count is between 1 and ``min_count − 1`` (default 5), or which holds
fewer than ``min_count`` households, is *suppressed* — it is returned
without its figures (and without its household count when that is below
``min_count``), so the map shows "too few to show", not a number.

h3 takes (lat, lng); that order stays inside this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import h3
import shapely
from shapely.geometry import Polygon

from geo.errors import InvalidInput

MIN_RESOLUTION = 5  # cells of about 250 km²: a county in a few
MAX_RESOLUTION = 11  # cells of about 2,000 m²: a building or two
DEFAULT_MIN_COUNT = 5


@dataclass(frozen=True)
class HexCell:
    """One H3 cell: its id and polygon (WGS84), households in it and — unless
    suppressed — the summed numerator and denominator."""

    cell: str
    polygon_4326: Polygon
    households: int | None
    numerator: int | None
    denominator: int | None
    suppressed: bool


def check_resolution(resolution: int) -> int:
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise InvalidInput(
            f"res={resolution}: give an H3 resolution from {MIN_RESOLUTION} to {MAX_RESOLUTION}"
        )
    return resolution


def bin_households(
    *,
    lon: Sequence[float],
    lat: Sequence[float],
    numerator: Sequence[int],
    denominator: Sequence[int],
    resolution: int,
    min_count: int = DEFAULT_MIN_COUNT,
) -> list[HexCell]:
    """Sum per-household contributions into H3 cells at ``resolution``,
    ordered by cell id; suppress the cells that would single people out."""
    check_resolution(resolution)
    if min_count < 1:
        raise InvalidInput(f"k={min_count}: the suppression threshold must be at least 1")
    sums: dict[str, list[int]] = {}
    for x, y, num, den in zip(lon, lat, numerator, denominator, strict=True):
        cell = h3.latlng_to_cell(y, x, resolution)
        acc = sums.setdefault(cell, [0, 0, 0])
        acc[0] += 1
        acc[1] += num
        acc[2] += den
    cells = []
    for cell in sorted(sums):
        households, num, den = sums[cell]
        suppressed = households < min_count or 0 < num < min_count
        ring = [(lng, lat_) for lat_, lng in h3.cell_to_boundary(cell)]
        cells.append(
            HexCell(
                cell=cell, polygon_4326=shapely.Polygon(ring),
                households=None if households < min_count else households,
                numerator=None if suppressed else num, denominator=None if suppressed else den,
                suppressed=suppressed,
            )
        )  # fmt: skip
    return cells
