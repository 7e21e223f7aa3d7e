"""Realistic noisy addresses: how people type a household's address into a spreadsheet.

For tests of ``geo.address`` and for the demo's export of household registers.
Each address is the building's standard address rewritten with the habits of a
grid office: 广东省/云浮市 dropped (often) or written short (``广东``, ``云浮``),
the county dropped or written ``新兴`` without ``县``, the township dropped
(sometimes) and the community (rarely), ``号`` as ``#``, ``栋`` as
``幢/座/号楼/#``, full-width digits, Chinese numerals (``十二号``, ``三栋``), spaces
and commas, the estate before or after the road number, and the household's
unit and room as ``2单元302室``, ``2-302`` or ``302房``.

Promises:

* deterministic for the generator's state; every address consumes exactly
  ``DRAWS`` uniforms, so a batch gives the same texts as the same rows one at
  a time (with the same omission rights);
* never unresolvable: a township or community is omitted only when the parts
  left still name exactly one building of the table (``noisy_addresses``
  checks this; ``noisy_address`` omits them only when told it may), and a typo
  (only with ``typo_rate > 0``) never turns a name into another real name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from geo.address import RegistryAddress, chinese_to_int
from geo.demo import Buildings, chinese_number

# Uniforms consumed per address (fixed, so row i always uses the same draws).
DRAWS = 24
_FULL_WIDTH = str.maketrans("0123456789#-", "０１２３４５６７８９＃－")
_ZH_DIGITS = "零一二三四五六七八九"
# Look-alike and sound-alike characters people mistype.
_TYPOS = {
    "园": "圆", "苑": "院", "湖": "胡", "华": "化", "锦": "景", "明": "名", "阳": "杨",
    "凤": "风", "富": "福", "民": "名", "城": "成", "翠": "萃", "珠": "株", "庭": "廷",
    "景": "井", "绣": "秀", "侨": "桥", "腾": "藤", "岸": "案", "放": "方", "设": "没",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BuildingParts:
    """A building's standard address parts ("" when absent), as in the registry."""

    province: str
    city: str
    county: str
    township: str
    community: str
    road: str
    house_no: str
    estate: str
    building_no: str
    village_group: str


def noisy_address(
    rng: np.random.Generator,
    *,
    building: BuildingParts,
    unit: int | None,
    room: str | None,
    may_omit_township: bool = False,
    may_omit_community: bool = False,
    typo_rate: float = 0.0,
    real_names: Collection[str] = (),
) -> str:
    """One household's address as a person might type it (see the module docstring).

    ``unit``/``room`` are the household's (``None``: the address stops at the
    building). The township (community) is dropped only if ``may_omit_township``
    (``may_omit_community``) says the rest still identifies the building; a typo
    is made with probability ``typo_rate`` unless it would spell a name in
    ``real_names``.
    """
    u = rng.random(DRAWS)
    return _compose(
        u,
        b=building,
        unit=unit,
        room=room,
        may_omit_township=may_omit_township,
        may_omit_community=may_omit_community,
        typo_rate=typo_rate,
        real_names=real_names,
    )


def noisy_addresses(
    rng: np.random.Generator,
    buildings: Buildings,
    rows: NDArray[np.int64],
    *,
    units: NDArray[np.int64] | None = None,
    rooms: NDArray[np.str_] | None = None,
    typo_rate: float = 0.0,
) -> list[str]:
    """Noisy addresses of households living in ``buildings`` rows ``rows``.

    ``units``/``rooms`` (aligned with ``rows``) are the households' unit numbers
    and rooms; omit them for building-level addresses, or give an empty room
    for a household whose address stops at its building (a one-family house). Which parts may be
    omitted is decided per building from the whole table.
    """
    parts = [building_parts(buildings, row=int(r)) for r in range(len(buildings))]
    township_ok, community_ok = _omissible(parts)
    real_names = frozenset(p.road for p in parts) | frozenset(p.estate for p in parts)
    draws = rng.random((len(rows), DRAWS))
    out = []
    for i, row in enumerate(rows.tolist()):
        out.append(
            _compose(
                draws[i],
                b=parts[row],
                unit=None if units is None else int(units[i]),
                room=None if rooms is None or not str(rooms[i]) else str(rooms[i]),
                may_omit_township=township_ok[row],
                may_omit_community=community_ok[row],
                typo_rate=typo_rate,
                real_names=real_names,
            )
        )
    return out


def building_parts(buildings: Buildings, *, row: int) -> BuildingParts:
    """The parts of one ``Buildings`` row; province and city are read off its address."""
    county = str(buildings.county[row])
    prefix = str(buildings.address[row]).split(county, 1)[0]
    province, city = _split_prefix(prefix)
    return BuildingParts(
        province=province,
        city=city,
        county=county,
        township=str(buildings.township[row]),
        community=str(buildings.community[row]),
        road=str(buildings.road[row]),
        house_no=str(buildings.house_no[row]),
        estate=str(buildings.estate[row]),
        building_no=str(buildings.building_no[row]),
        village_group=str(buildings.village_group[row]),
    )


def registry_addresses(buildings: Buildings) -> list[RegistryAddress]:
    """The demo's buildings as standard addresses; ``building_id`` is the row index.

    Province and city are read off the first address (a demo is one county).
    """
    b = buildings
    province, city = (
        _split_prefix(str(b.address[0]).split(str(b.county[0]), 1)[0]) if len(b) else ("", "")
    )
    columns = zip(
        b.county.tolist(), b.township.tolist(), b.community.tolist(), b.road.tolist(),
        b.house_no.tolist(), b.estate.tolist(), b.building_no.tolist(),
        b.village_group.tolist(), b.lon.tolist(), b.lat.tolist(),
        strict=True,
    )  # fmt: skip
    return [
        RegistryAddress(
            building_id=i,
            county=county or None,
            township=township or None,
            community=community or None,
            road=road or None,
            house_number=house or None,
            estate=estate or None,
            building_no=building or None,
            village_group=group or None,
            lon=float(lon),
            lat=float(lat),
            province=province or None,
            city=city or None,
        )
        for i, (county, township, community, road, house, estate, building, group, lon, lat) in (
            enumerate(columns)
        )
    ]


def _split_prefix(prefix: str) -> tuple[str, str]:
    """``广东省云浮市`` → (``广东省``, ``云浮市``)."""
    for marker in ("自治区", "特别行政区", "省"):
        if marker in prefix:
            head, _, tail = prefix.partition(marker)
            return head + marker, tail
    return "", prefix


def _omissible(parts: Sequence[BuildingParts]) -> tuple[list[bool], list[bool]]:
    """Per building: may the township be omitted; may the community (and township)?

    The township may go when (county, community, rest) is unique in the table;
    the community only for urban buildings whose road, number, estate and
    building are unique in the county, with or without the township.
    """

    def rest(p: BuildingParts) -> tuple[str, ...]:
        return (p.county, p.road, p.house_no, p.estate, p.building_no, p.village_group)

    no_township = Counter((p.community, *rest(p)) for p in parts)
    no_community = Counter(rest(p) for p in parts)
    township_ok = [no_township[(p.community, *rest(p))] == 1 for p in parts]
    community_ok = [bool(p.road) and no_community[rest(p)] == 1 for p in parts]
    return township_ok, community_ok


def _compose(
    u: NDArray[np.float64],
    *,
    b: BuildingParts,
    unit: int | None,
    room: str | None,
    may_omit_township: bool,
    may_omit_community: bool,
    typo_rate: float,
    real_names: Collection[str],
) -> str:
    """The address from ``DRAWS`` uniforms; each decision reads its own slot of ``u``."""
    road, estate = b.road, b.estate
    if u[20] < typo_rate:
        road, estate = _typo(u[21], road=road, estate=estate, real_names=real_names)
    admin = [
        _pick(u[0], [(0.6, ""), (0.85, b.province), (1.0, _short(b.province, "省"))]),
        _pick(u[1], [(0.55, ""), (0.85, b.city), (1.0, _short(b.city, "市"))]),
        _pick(u[2], [(0.45, b.county), (0.8, _short(b.county, "县")), (1.0, "")]),
        "" if may_omit_township and u[3] < 0.25 else b.township,
        "" if may_omit_community and u[4] < 0.1 else b.community,
    ]
    body = _body(u, b=b, road=road, estate=estate)
    suffix = _suffix(u, urban=bool(b.road), unit=unit, room=room)
    pieces = [p for p in [*admin, *body, suffix] if p]
    text = _join(u, pieces)
    return text.translate(_FULL_WIDTH) if u[19] < 0.08 else text


def _body(u: NDArray[np.float64], *, b: BuildingParts, road: str, estate: str) -> list[str]:
    """Road number, estate and building (urban) or group and house number (village)."""
    house = _house(u[6], b.house_no)
    if not b.road:
        return [_group(u[8], b.village_group), house]
    building = _building(u[7], b.building_no)
    if u[5] < 0.3:
        return [estate, road + house, building]
    return [road + house, estate, building]


def _house(x: float, house_no: str) -> str:
    n = _number(house_no)
    if n is None:
        return house_no
    return _pick(x, [(0.65, f"{n}号"), (0.77, f"{n}#"), (0.9, f"{_zh(n)}号"), (1.0, f"{n} 号")])


def _building(x: float, building_no: str) -> str:
    n = _number(building_no)
    if n is None:
        return building_no
    styles = [
        (0.45, f"{n}栋"), (0.55, f"{n}幢"), (0.62, f"{n}座"), (0.74, f"{n}号楼"),
        (0.84, f"{n}#"), (0.95, f"{_zh(n)}栋"), (1.0, f"第{n}栋"),
    ]  # fmt: skip
    return _pick(x, styles)


def _group(x: float, group: str) -> str:
    """``三组`` as written, ``3组``, ``第三组`` or ``3小组``."""
    n = _number(group)
    if n is None:
        return group
    return _pick(x, [(0.5, group), (0.8, f"{n}组"), (0.9, f"第{_zh(n)}组"), (1.0, f"{n}小组")])


def _suffix(u: NDArray[np.float64], *, urban: bool, unit: int | None, room: str | None) -> str:
    if room is None:
        return ""
    if not urban or unit is None:
        return _pick(u[9], [(0.4, f"{room}房"), (0.8, f"{room}室"), (1.0, room)])
    styles = [
        (0.4, f"{unit}单元{room}室"), (0.7, f"{unit}-{room}"), (0.9, f"{room}房"),
        (1.0, f"{_zh(unit)}单元{room}室"),
    ]  # fmt: skip
    return _pick(u[9], styles)


def _join(u: NDArray[np.float64], pieces: list[str]) -> str:
    """Concatenate, with spaces (30 % of addresses) or a comma (5 %) between some pieces."""
    text = pieces[0] if pieces else ""
    spaced, comma_at = u[10] < 0.3, int(u[18] * 8) if u[17] < 0.05 else -1
    for k, piece in enumerate(pieces[1:]):
        gap = " " if spaced and u[11 + k % 6] < 0.5 else ""
        text += ("，" if k == comma_at else gap) + piece
    return text


def _typo(x: float, *, road: str, estate: str, real_names: Collection[str]) -> tuple[str, str]:
    """One look-alike character in the estate (or, without one, the road) name."""
    name = estate or road
    spots = [i for i, ch in enumerate(name) if ch in _TYPOS]
    if not spots:
        return road, estate
    i = spots[int(x * len(spots))]
    wrong = name[:i] + _TYPOS[name[i]] + name[i + 1 :]
    if wrong in real_names:
        return road, estate
    return (road, wrong) if estate else (wrong, estate)


def _pick(x: float, options: list[tuple[float, str]]) -> str:
    """The first option whose cumulative threshold exceeds ``x``."""
    for threshold, value in options:
        if x < threshold:
            return value
    return options[-1][1]


def _short(name: str, suffix: str) -> str:
    return name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) + 1 else name


def _number(part: str) -> int | None:
    """``12号`` → 12, ``三组`` → 3; ``None`` for anything else."""
    head = part[:-1]
    if head.isdigit():
        return int(head)
    if head and all(ch in _ZH_DIGITS + "十" for ch in head):
        return chinese_to_int(head)
    return None


def _zh(n: int) -> str:
    """Chinese numerals for 1..99; larger numbers stay Arabic (as people write them)."""
    return chinese_number(n) if 1 <= n <= 99 else str(n)
