"""The demo county's resident register as a grid office would send it.

One row per resident with the Chinese headers of ``REGISTRY_HEADERS``, as GBK
CSV (what Chinese Excel writes by default), UTF-8 CSV or ``.xlsx``. Reading the
file back with ``geo.tabular.read_table`` and checking it with
``geo.registry.check_table`` accepts every row (tested).

户籍地 (registered residence): the county for local residents (本地…), else
the place of the ID number's area code (``HUKOU_PLACES``; the province when
the code is not in that small table). Personal data here is synthetic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from geo.demo import CATEGORY_LABELS, DemoCounty, IntArray
from geo.demo_state import DemoState
from geo.errors import InvalidInput
from geo.registry import (
    HEALTH_CODE_LABELS,
    QUARANTINE_LABELS,
    SEX_LABELS,
    TAG_LABELS,
)
from geo.tabular import WritableCell, write_table

RegistryFormat = Literal["csv-gbk", "csv-utf8", "xlsx"]
REGISTRY_HEADERS = (
    "姓名", "性别", "身份证号", "手机号", "现住地址", "人员类别", "户籍地", "健康码",
    "标签", "隔离方式", "隔离开始日期", "隔离地点", "备注",
)  # fmt: skip
LOCAL_CATEGORIES = frozenset({"local_permanent", "local_temporary"})
TAG_SEPARATOR = "、"

# Area codes the demo gives non-local residents (geo.demo), by GB/T 2260 name.
HUKOU_PLACES = {
    "420102": "湖北省武汉市江岸区",
    "420106": "湖北省武汉市武昌区",
    "420111": "湖北省武汉市洪山区",
    "420115": "湖北省武汉市江夏区",
    "420502": "湖北省宜昌市西陵区",
    "420902": "湖北省孝感市孝南区",
    "421002": "湖北省荆州市沙市区",
    "421102": "湖北省黄冈市黄州区",
    "440106": "广东省广州市天河区",
    "440304": "广东省深圳市福田区",
    "440604": "广东省佛山市禅城区",
    "440802": "广东省湛江市赤坎区",
    "440902": "广东省茂名市茂南区",
    "441202": "广东省肇庆市端州区",
    "445302": "广东省云浮市云城区",
    "445381": "广东省云浮市罗定市",
    "450103": "广西壮族自治区南宁市青秀区",
    "450403": "广西壮族自治区梧州市万秀区",
    "430104": "湖南省长沙市岳麓区",
    "431003": "湖南省郴州市苏仙区",
    "360102": "江西省南昌市东湖区",
    "510104": "四川省成都市锦江区",
    "350102": "福建省福州市鼓楼区",
    "460106": "海南省海口市龙华区",
}
PROVINCES = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省",
    "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
    "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省",
    "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区", "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}  # fmt: skip


def household_addresses(demo: DemoCounty) -> list[str]:
    """The standard address of every household: its building's address, then
    ``{unit}单元{room}室`` in apartment blocks and ``{room}室`` in a village
    house shared by several households (a one-household house is its address)."""
    b = demo.buildings
    h = demo.households
    shared = b.households[h.building] > 1
    urban = b.road[h.building] != ""
    out = []
    for building, unit, room, is_urban, is_shared in zip(
        h.building.tolist(),
        h.unit.tolist(),
        h.room.tolist(),
        urban.tolist(),
        shared.tolist(),
        strict=True,
    ):
        base = str(b.address[building])
        if is_urban:
            out.append(f"{base}{unit}单元{room}室")
        else:
            out.append(f"{base}{room}室" if is_shared else base)
    return out


def hukou_places(demo: DemoCounty) -> list[str]:
    """户籍地 of every resident of ``demo``, as the register writes it."""
    county = _county_place(demo)
    r = demo.residents
    return [
        hukou_place(id_number=i, category=c, county=county)
        for i, c in zip(r.id_number.tolist(), r.category.tolist(), strict=True)
    ]


def hukou_place(*, id_number: str, category: str, county: str) -> str:
    """户籍地: ``county`` for local categories, else the ID's area (or province)."""
    if category in LOCAL_CATEGORIES:
        return county
    area = id_number[:6]
    return HUKOU_PLACES.get(area) or PROVINCES.get(area[:2], area)


def write_registry_file(
    demo: DemoCounty,
    path: Path,
    *,
    fmt: RegistryFormat,
    addresses: Sequence[str] | None = None,
    state: DemoState | None = None,
    rows: slice | IntArray | np.ndarray | None = None,
) -> int:
    """Write the register of ``demo`` (or of the residents ``rows`` selects: a
    slice, indices or a boolean mask) to ``path``; returns the rows written.

    ``addresses`` (one per household) replace the standard ones, e.g. noisy
    variants for address-matching tests. Without ``state`` the 健康码 and
    quarantine columns are empty and 标签 holds only the demo's own tags. A GBK
    file refuses (``InvalidInput``) any value GBK cannot encode.
    """
    if fmt not in ("csv-gbk", "csv-utf8", "xlsx"):
        raise InvalidInput(f"unknown registry format {fmt!r}; use csv-gbk, csv-utf8 or xlsx")
    if addresses is None:
        addresses = household_addresses(demo)
    if len(addresses) != len(demo.households):
        raise InvalidInput(
            f"addresses has {len(addresses)} entries; the demo has {len(demo.households)}"
            " households"
        )
    if state is not None and len(state.residents) != len(demo.residents):
        raise InvalidInput("the state was generated for another demo (resident counts differ)")
    selected = np.arange(len(demo.residents), dtype=np.int64)[rows if rows is not None else ...]
    lines = _registry_rows(demo, addresses=addresses, state=state, selected=selected)
    return write_table(path, headers=REGISTRY_HEADERS, rows=lines, fmt=fmt, sheet_title="人员")


def _registry_rows(
    demo: DemoCounty,
    *,
    addresses: Sequence[str],
    state: DemoState | None,
    selected: IntArray,
) -> Iterator[list[WritableCell]]:
    r = demo.residents
    county = _county_place(demo)
    quarantine = _quarantine_by_resident(state)
    for i in selected.tolist():
        id_number = str(r.id_number[i])
        category = str(r.category[i])
        kind, start, site, note = _quarantine_cells(state, row=quarantine.get(i))
        yield [
            str(r.name[i]),
            SEX_LABELS[str(r.sex[i])],
            id_number,
            str(r.phone[i]),
            addresses[int(r.household[i])],
            CATEGORY_LABELS[category],
            hukou_place(id_number=id_number, category=category, county=county),
            HEALTH_CODE_LABELS[str(state.residents.health_code[i])] if state else None,
            TAG_SEPARATOR.join(_tags(demo, state=state, index=i)) or None,
            kind,
            start,
            site,
            note,
        ]


def _county_place(demo: DemoCounty) -> str:
    """The county with its province and city, as its building addresses begin."""
    for address in demo.buildings.address[:1].tolist():
        end = str(address).find(demo.county_name)
        if end >= 0:
            return str(address)[: end + len(demo.county_name)]
    return demo.county_name


def _tags(demo: DemoCounty, *, state: DemoState | None, index: int) -> list[str]:
    r = demo.residents
    flags = {"hubei_linked": bool(r.hubei_linked[index]), "abroad_14d": bool(r.abroad_14d[index])}
    if state is not None:
        flags["close_contact"] = bool(state.residents.close_contact[index])
        flags["fever"] = bool(state.residents.fever[index])
    return [TAG_LABELS[t] for t, on in flags.items() if on]


def _quarantine_by_resident(state: DemoState | None) -> dict[int, int]:
    if state is None:
        return {}
    return {int(res): q for q, res in enumerate(state.quarantines.resident.tolist())}


def _quarantine_cells(
    state: DemoState | None, *, row: int | None
) -> tuple[str | None, dt.date | None, str | None, str | None]:
    """隔离方式, 隔离开始日期, 隔离地点 for a quarantine still running on the
    reference date; a released one is only mentioned in 备注."""
    if state is None or row is None:
        return None, None, None, None
    q = state.quarantines
    kind = str(q.kind[row])
    start: dt.date = q.start[row].astype(dt.date)
    if not np.isnat(q.released_on[row]):
        released: dt.date = q.released_on[row].astype(dt.date)
        note = f"{start}起{QUARANTINE_LABELS[kind]}，{released}解除"
        return None, None, None, note
    site = str(q.site[row]) or None
    return QUARANTINE_LABELS[kind], start, site, None
