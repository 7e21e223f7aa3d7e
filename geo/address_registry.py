"""Rows of the standard address registry (标准地址库) as offices hand them over.

A registry file (CSV, XLSX, or GeoJSON points) has one row per building.
Header names are accepted as they are written in Chinese grid systems or as
the canonical English names:

| field | headers |
|---|---|
| code | 地址编码, 标准地址编码, 楼栋编码, 编码, code |
| address | 标准地址, 地址, 详细地址, address |
| county | 县区, 区县, 县(市、区), county |
| township | 乡镇街道, 镇街, 乡镇, 街道, township |
| community | 社区村, 村社区, 社区, 村, 村(社区), community |
| road | 道路, 街路巷, 路, road |
| house_number | 门牌号, 门牌, house_number |
| estate | 小区, 小区名称, estate |
| building_no | 楼栋, 楼栋号, 栋, building_no |
| village_group | 村民小组, 组, village_group |
| lon | 经度, lon, lng, x |
| lat | 纬度, lat, y |

``code`` and a point are required, and ``address`` or enough parts to
compose it. Coordinates are in the CRS the caller names (converted by the
caller with ``geo.crs``).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from geo.errors import InvalidInput

FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("地址编码", "标准地址编码", "楼栋编码", "编码", "code"),
    "address": ("标准地址", "地址", "详细地址", "address"),
    "county": ("县区", "区县", "县(市、区)", "county"),
    "township": ("乡镇街道", "镇街", "乡镇", "街道", "township"),
    "community": ("社区村", "村社区", "社区", "村", "村(社区)", "community"),
    "road": ("道路", "街路巷", "路", "road"),
    "house_number": ("门牌号", "门牌", "house_number"),
    "estate": ("小区", "小区名称", "estate"),
    "building_no": ("楼栋", "楼栋号", "栋", "building_no"),
    "village_group": ("村民小组", "组", "village_group"),
    "lon": ("经度", "lon", "lng", "x"),
    "lat": ("纬度", "lat", "y"),
}
PARTS = (
    "county",
    "township",
    "community",
    "road",
    "house_number",
    "estate",
    "building_no",
    "village_group",
)


@dataclass(frozen=True)
class AddressRow:
    """One building of the registry; lon/lat in the file's CRS."""

    row: int
    code: str
    address: str
    lon: float
    lat: float
    parts: Mapping[str, str | None]


@dataclass(frozen=True)
class AddressRejection:
    row: int
    reasons: tuple[str, ...]


def _header_key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


def map_headers(headers: Sequence[str]) -> dict[str, int]:
    """Canonical field → column index. ``InvalidInput`` names the missing
    required columns and lists the headers found."""
    lookup = {_header_key(alias): field for field, aliases in FIELDS.items() for alias in aliases}
    columns: dict[str, int] = {}
    for index, header in enumerate(headers):
        field = lookup.get(_header_key(header))
        if field is not None and field not in columns:
            columns[field] = index
    missing = [f for f in ("code", "lon", "lat") if f not in columns]
    if missing:
        raise InvalidInput(
            f"the address registry needs the columns {', '.join(missing)}"
            f" ({' / '.join(FIELDS[missing[0]][:2])} …); found: {', '.join(headers) or 'none'}"
        )
    return columns


def check_address_row(
    values: Mapping[str, str | None], *, row: int
) -> AddressRow | AddressRejection:
    """Check one registry row; a rejection lists every reason."""
    reasons: list[str] = []
    code = (values.get("code") or "").strip()
    if not code:
        reasons.append("code: missing")
    lon = _number(values.get("lon"), field="lon", low=-180, high=180, reasons=reasons)
    lat = _number(values.get("lat"), field="lat", low=-90, high=90, reasons=reasons)
    parts = {part: _clean(values.get(part)) for part in PARTS}
    address = _clean(values.get("address")) or "".join(p for p in parts.values() if p)
    if not address:
        reasons.append("address: missing, and no parts to compose it from")
    if reasons or lon is None or lat is None:
        return AddressRejection(row=row, reasons=tuple(reasons))
    return AddressRow(row=row, code=code, address=address, lon=lon, lat=lat, parts=parts)


def _clean(value: str | None) -> str | None:
    text = (value or "").strip()
    return text or None


def _number(
    value: str | None, *, field: str, low: float, high: float, reasons: list[str]
) -> float | None:
    if value is None or not str(value).strip():
        reasons.append(f"{field}: missing")
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        reasons.append(f"{field}: {value!r} is not a number")
        return None
    if not math.isfinite(number) or not low <= number <= high:
        reasons.append(f"{field}: {number} is outside [{low}, {high}]")
        return None
    return number


def rows_from_records(
    records: Sequence[Mapping[str, str | None]],
    *,
    headers: Sequence[str],
    row_numbers: Sequence[int],
) -> tuple[list[AddressRow], list[AddressRejection]]:
    """Check every record (a dict keyed by the file's headers); returns the good
    rows and every rejection, in file order."""
    columns = map_headers(headers)
    good: list[AddressRow] = []
    bad: list[AddressRejection] = []
    for record, row in zip(records, row_numbers, strict=True):
        values = {field: _as_text(record.get(headers[index])) for field, index in columns.items()}
        checked = check_address_row(values, row=row)
        (good if isinstance(checked, AddressRow) else bad).append(checked)  # type: ignore[arg-type]
    return good, bad


def _as_text(value: object) -> str | None:
    return None if value is None else str(value)
