"""The resident row of a registry file: header mapping and row checks.

A grid office's register (人员登记表) names its columns in its own words. The
headers below are recognised; matching ignores spaces (also full-width ones),
asterisks marking required columns, full-width/half-width forms (NFKC) and the
case of English names. Every canonical field name is also accepted as a header.

=====================  ==================================================
field                  headers as grid offices write them
=====================  ==================================================
name *                 姓名
id_number *            身份证号, 身份证号码, 公民身份号码, 证件号码
phone                  手机号, 手机号码, 联系电话, 联系方式
address * (or lon/lat) 现住地址, 现居住地址, 居住地址, 现住址, 详细地址
category †             人员类别, 人口类别, 人员类型
hukou                  户籍地, 户籍地址, 户籍所在地
sex                    性别
birth_date             出生日期
health_code            健康码, 健康码颜色
tags                   标签, 重点人员类别
hubei                  湖北相关, 是否湖北相关
abroad_return_date     境外返回日期, 入境日期
quarantine_kind        隔离方式
quarantine_start       隔离开始日期
quarantine_site        隔离地点, 隔离点
lon                    经度
lat                    纬度
note                   备注
=====================  ==================================================

``*``: a file without a name, an ID number and either an address or both
coordinates is refused as a whole (``map_headers``). ``†``: every row needs a
category (a file without the column has every row rejected, saying so). Headers in ``IGNORED_HEADERS`` (序号, 拒绝原因 …) are dropped
silently; any other unknown header is reported and ignored.

Categories (Xincheng town's four, ``geo.demo.CATEGORIES``), by label, code or
number: 1 本地常住 → ``local_permanent``, 2 外地常住 → ``nonlocal_permanent``,
3 本地暂住 → ``local_temporary``, 4 外地暂住 → ``nonlocal_temporary``; the
labels may end in 人口/人员, and 外来 may stand for 外地 (both mean "from
outside the county"). Nothing vaguer (流动人口, 外来人员) is guessed.

Privacy (DESIGN.md, PIPL): reasons name the value they reject, with ID and
phone numbers masked (``4453**********1234``, ``138****5678``). The rejected
rows file (``rejected_rows_file``) keeps the original values unmasked: it goes
back to the office that sent them, to be fixed and imported again.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from itertools import compress, repeat
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

import numpy as np
from numpy.typing import NDArray

from geo.demo import CATEGORIES, CATEGORY_LABELS
from geo.errors import InvalidInput
from geo.tabular import Table, looks_like_number_text, write_table

FIELDS = (
    "name", "id_number", "phone", "address", "category", "hukou", "sex", "birth_date",
    "health_code", "tags", "hubei", "abroad_return_date", "quarantine_kind",
    "quarantine_start", "quarantine_site", "lon", "lat", "note",
)  # fmt: skip

# Header as grid offices write it → canonical field (the table in the module docstring).
HEADER_ALIASES: dict[str, str] = {
    "姓名": "name",
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "公民身份号码": "id_number",
    "证件号码": "id_number",
    "手机号": "phone",
    "手机号码": "phone",
    "联系电话": "phone",
    "联系方式": "phone",
    "现住地址": "address",
    "现居住地址": "address",
    "居住地址": "address",
    "现住址": "address",
    "详细地址": "address",
    "人员类别": "category",
    "人口类别": "category",
    "人员类型": "category",
    "户籍地": "hukou",
    "户籍地址": "hukou",
    "户籍所在地": "hukou",
    "性别": "sex",
    "出生日期": "birth_date",
    "健康码": "health_code",
    "健康码颜色": "health_code",
    "标签": "tags",
    "重点人员类别": "tags",
    "湖北相关": "hubei",
    "是否湖北相关": "hubei",
    "境外返回日期": "abroad_return_date",
    "入境日期": "abroad_return_date",
    "隔离方式": "quarantine_kind",
    "隔离开始日期": "quarantine_start",
    "隔离地点": "quarantine_site",
    "隔离点": "quarantine_site",
    "经度": "lon",
    "纬度": "lat",
    "备注": "note",
} | {f: f for f in FIELDS}

# The Chinese label of each field, used in reasons and written files.
FIELD_LABELS: dict[str, str] = {
    "name": "姓名",
    "id_number": "身份证号",
    "phone": "手机号",
    "address": "现住地址",
    "category": "人员类别",
    "hukou": "户籍地",
    "sex": "性别",
    "birth_date": "出生日期",
    "health_code": "健康码",
    "tags": "标签",
    "hubei": "湖北相关",
    "abroad_return_date": "境外返回日期",
    "quarantine_kind": "隔离方式",
    "quarantine_start": "隔离开始日期",
    "quarantine_site": "隔离地点",
    "lon": "经度",
    "lat": "纬度",
    "note": "备注",
}

REASON_HEADER = "拒绝原因"
# Columns a register often has that carry nothing to import: not reported as unknown.
IGNORED_HEADERS = frozenset({"序号", "编号", "行号", REASON_HEADER})


def _category_aliases() -> dict[str, str]:
    """Label (also with 外来 for 外地, and 人口/人员 appended), code and number 1–4."""
    aliases: dict[str, str] = {}
    for number, code in enumerate(CATEGORIES, start=1):
        label = CATEGORY_LABELS[code]
        for variant in (label, label.replace("外地", "外来")):
            aliases.update({variant: code, variant + "人口": code, variant + "人员": code})
        aliases.update({code: code, str(number): code})
    return aliases


CATEGORY_ALIASES = _category_aliases()

HEALTH_CODES = ("green", "yellow", "red")
HEALTH_CODE_ALIASES: dict[str, str] = {
    alias: colour
    for colour, zh in zip(HEALTH_CODES, "绿黄红", strict=True)
    for alias in (colour, zh, zh + "码", zh + "色")
}
HEALTH_CODE_LABELS = {"green": "绿", "yellow": "黄", "red": "红"}

TAGS = ("hubei_linked", "abroad_14d", "close_contact", "fever")
TAG_LABELS = {
    "hubei_linked": "湖北相关",
    "abroad_14d": "境外返回",
    "close_contact": "密切接触者",
    "fever": "发热",
}
TAG_ALIASES: dict[str, str] = {
    "湖北相关": "hubei_linked",
    "涉湖北人员": "hubei_linked",
    "涉湖北省人员": "hubei_linked",
    "境外返回": "abroad_14d",
    "境外返回人员": "abroad_14d",
    "密切接触者": "close_contact",
    "密接": "close_contact",
    "发热": "fever",
    "发热人员": "fever",
} | {t: t for t in TAGS}
_TAG_SEPARATORS = re.compile(r"[，,;；、\s]+")

QUARANTINE_KINDS = ("home", "central")
QUARANTINE_LABELS = {"home": "居家隔离", "central": "集中隔离"}
QUARANTINE_ALIASES: dict[str, str] = {
    "居家隔离": "home",
    "居家": "home",
    "居家医学观察": "home",
    "居家隔离医学观察": "home",
    "集中隔离": "central",
    "集中": "central",
    "集中医学观察": "central",
    "集中隔离医学观察": "central",
    "home": "home",
    "central": "central",
}
QUARANTINE_DAYS = 14
# Back from abroad fewer than this many days before ``today`` → tag abroad_14d.
ABROAD_WINDOW_DAYS = 14

SEX_ALIASES = {
    "男": "M",
    "男性": "M",
    "m": "M",
    "male": "M",
    "女": "F",
    "女性": "F",
    "f": "F",
    "female": "F",
}
SEX_LABELS = {"M": "男", "F": "女"}
YES_NO = {"是": True, "否": False, "y": True, "n": False, "yes": True, "no": False}
YES_NO |= {"1": True, "0": False, "true": True, "false": False}

# Provinces of GB/T 2260: the first two digits of a real area code.
PROVINCE_CODES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
})  # fmt: skip
EARLIEST_BIRTH = dt.date(1900, 1, 1)
# Coordinates outside this box are not in China (lon 73–136 °E, lat 3–54 °N).
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)
MAX_TEXT = {"name": 50, "address": 200, "hukou": 200, "quarantine_site": 200, "note": 500}

# re.ASCII: ``\d`` must not match other scripts' digits (٤), which NFKC keeps.
_ID_FORM = re.compile(r"\d{17}[\dX]", re.ASCII)
_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
_LANDLINE = re.compile(r"0\d{9,11}|\d{7,8}", re.ASCII)
_PHONE_NOISE = re.compile(r"[\s\-()（）—－]")
_DATE_SEPARATED = re.compile(
    r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?", re.ASCII
)
_DATE_CHINESE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?", re.ASCII)
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_EXCEL_SERIAL = re.compile(r"(\d{1,5})(?:\.0+)?", re.ASCII)
# Excel counts days from 1899-12-31 as day 1 and believes 1900 was a leap year:
# serial 60 is the phantom 1900-02-29, and from 61 on the epoch is 1899-12-30.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_PHANTOM_LEAP_DAY = 60


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a row is refused: the field, its value (ID/phone masked), why."""

    field: str
    value: str | None
    message: str

    def __str__(self) -> str:
        shown = "(empty)" if self.value is None else f"“{self.value}”"
        return f"{FIELD_LABELS.get(self.field, self.field)} ({self.field}) {shown}: {self.message}"


@dataclass(frozen=True, slots=True)
class ResidentRow:
    """A checked resident. ``sex`` ("M"/"F") and ``birth_date`` come from the ID
    number; ``lon``/``lat`` are the file's numbers, in whatever CRS the caller
    declares for the file; ``quarantine_planned_end`` is start + 14 days."""

    row: int
    name: str
    id_number: str
    sex: str
    birth_date: dt.date
    category: str
    phone: str | None = None
    address: str | None = None
    hukou: str | None = None
    lon: float | None = None
    lat: float | None = None
    health_code: str | None = None
    tags: tuple[str, ...] = ()
    abroad_return_date: dt.date | None = None
    quarantine_kind: str | None = None
    quarantine_start: dt.date | None = None
    quarantine_planned_end: dt.date | None = None
    quarantine_site: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class RowRejection:
    """A refused row: its Excel row number, the raw values by field, and every problem.

    ``cells`` are the row's original cells in file order when known (set by
    ``check_table``), so the rejected rows file can give back every column.
    """

    row: int
    values: dict[str, str | None]
    problems: tuple[Problem, ...]
    cells: tuple[str | None, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(str(p) for p in self.problems)

    def reason_text(self) -> str:
        """One line for the 拒绝原因 column: the row number, then every reason."""
        return f"第{self.row}行：" + "；".join(self.reasons)


@dataclass(frozen=True)
class HeaderMapping:
    """Which column holds each field; ``unknown`` and ``duplicates`` were ignored."""

    headers: tuple[str, ...]
    columns: dict[str, int]
    unknown: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()

    def values(self, cells: Sequence[str | None]) -> dict[str, str | None]:
        """The row's raw value of every mapped field."""
        return {f: (cells[i] if i < len(cells) else None) for f, i in self.columns.items()}


@dataclass(frozen=True)
class RegistryCheck:
    """A checked table: accepted rows, rejected rows, and how its headers mapped."""

    mapping: HeaderMapping
    accepted: list[ResidentRow]
    rejected: list[RowRejection]


# The fields of ``ResidentRow``, in order: the columns of ``AcceptedRows``.
RESIDENT_FIELDS = tuple(f.name for f in fields(ResidentRow))


@dataclass(frozen=True)
class AcceptedRows:
    """Accepted rows as columns: ``columns[f][i]`` is field ``f`` of the i-th
    accepted row, exactly what ``ResidentRow`` ``i`` of ``check_table`` holds
    (same order), without an object per row."""

    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.columns["row"])

    def __getitem__(self, name: str) -> list[Any]:
        return self.columns[name]

    def residents(self) -> list[ResidentRow]:
        """One ``ResidentRow`` per accepted row."""
        return [ResidentRow(*values) for values in zip(*self._ordered(), strict=True)]

    def _ordered(self) -> list[list[Any]]:
        return [self.columns[name] for name in RESIDENT_FIELDS]


@dataclass(frozen=True)
class ColumnCheck:
    """``check_table``'s answer with the accepted rows as columns (``check_columns``)."""

    mapping: HeaderMapping
    accepted: AcceptedRows
    rejected: list[RowRejection]


# --- masking ----------------------------------------------------------------------------


def mask_id_number(id_number: str) -> str:
    """First 4 and last 4 characters, the rest ``*``: ``4453**********1234``.

    Values of 8 characters or fewer are masked entirely.
    """
    text = id_number.strip()
    if len(text) <= 8:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]


def mask_phone(phone: str) -> str:
    """First 3 and last 4 digits, the rest ``*``: ``138****5678``.

    Values of 7 characters or fewer are masked entirely.
    """
    text = phone.strip()
    if len(text) <= 7:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


# --- headers ----------------------------------------------------------------------------


def normalize_header(header: str) -> str:
    """The matching key of a header: NFKC, no whitespace or ``*``, lower case."""
    text = unicodedata.normalize("NFKC", header)
    return "".join(ch for ch in text if not ch.isspace() and ch != "*").lower()


_ALIAS_KEYS = {normalize_header(k): v for k, v in HEADER_ALIASES.items()}
_IGNORED_KEYS = frozenset(normalize_header(h) for h in IGNORED_HEADERS)


def header_field(header: str) -> str | None:
    """The canonical field a header names, or ``None``."""
    return _ALIAS_KEYS.get(normalize_header(header))


def map_headers(headers: Sequence[str], *, source: str | None = None) -> HeaderMapping:
    """Map a file's headers to fields; the first column naming a field wins.

    Raises ``InvalidInput`` (``extra``: missing, found, unknown) when the file
    has no name column, no ID number column, or neither an address column nor
    both coordinate columns.
    """
    columns: dict[str, int] = {}
    unknown: list[str] = []
    duplicates: list[str] = []
    for index, header in enumerate(headers):
        target = header_field(header)
        if target is None:
            if normalize_header(header) not in _IGNORED_KEYS:
                unknown.append(header)
        elif target in columns:
            duplicates.append(header)
        else:
            columns[target] = index
    missing = _missing_columns(columns)
    if missing:
        prefix = f"{source}: " if source else ""
        found = ", ".join(h for h in headers if h) or "no headers"
        raise InvalidInput(
            f"{prefix}missing required column(s): {'; '.join(missing)}. Found: {found}",
            extra={"missing": missing, "found": list(headers), "unknown": unknown},
        )
    return HeaderMapping(
        headers=tuple(headers),
        columns=columns,
        unknown=tuple(unknown),
        duplicates=tuple(duplicates),
    )


def _missing_columns(columns: dict[str, int]) -> list[str]:
    missing = [f"{FIELD_LABELS[f]} ({f})" for f in ("name", "id_number") if f not in columns]
    if "address" not in columns and not ("lon" in columns and "lat" in columns):
        missing.append("现住地址 (address), or 经度 and 纬度 (lon, lat)")
    return missing


# --- rows -------------------------------------------------------------------------------


def check_table(table: Table, *, today: dt.date) -> RegistryCheck:
    """Map the headers and check every row; an ID number repeated in the file is
    refused on every row after the first one that was accepted."""
    checked = check_columns(table, today=today)
    return RegistryCheck(
        mapping=checked.mapping,
        accepted=checked.accepted.residents(),
        rejected=checked.rejected,
    )


def check_columns(table: Table, *, today: dt.date) -> ColumnCheck:
    """``check_table`` with the accepted rows as columns: the same rows, values,
    rejections and reasons, for files of a million rows.

    Rows whose every value is in its plainest form (an 18-character ID number
    of ASCII digits, an 11-digit mobile number, a category and health code as
    their labels or codes, text already stripped, no date, coordinate or
    quarantine column filled) are checked column by column; every other row
    goes through ``check_resident_row``, which gives its exact reasons.
    """
    mapping = map_headers(table.headers, source=table.name)
    fast = _FastColumns(table, mapping=mapping, today=today)
    accepted = fast.ok.copy()
    slow_rows: dict[int, ResidentRow] = {}
    rejections: dict[int, RowRejection] = {}
    for index in np.flatnonzero(~fast.ok).tolist():
        cells = table.rows[index]
        result = check_resident_row(
            mapping.values(cells), row=table.row_numbers[index], today=today
        )
        if isinstance(result, RowRejection):
            rejections[index] = replace(result, cells=tuple(cells))
        else:
            accepted[index] = True
            slow_rows[index] = result
    columns = fast.columns  # lists of their own, one per field: the row check's values go in
    for index, resident in slow_rows.items():
        for name in RESIDENT_FIELDS:
            columns[name][index] = getattr(resident, name)
    _refuse_repeated_ids(
        table, mapping=mapping, ids=columns["id_number"], accepted=accepted, rejections=rejections
    )
    if not rejections:
        kept = columns
    else:
        keep = accepted.tolist()
        kept = {name: list(compress(values, keep)) for name, values in columns.items()}
    rejected = [rejections[i] for i in sorted(rejections)]
    return ColumnCheck(mapping=mapping, accepted=AcceptedRows(kept), rejected=rejected)


def _refuse_repeated_ids(
    table: Table,
    *,
    mapping: HeaderMapping,
    ids: list[Any],
    accepted: NDArray[np.bool_],
    rejections: dict[int, RowRejection],
) -> None:
    """Reject (in place) every accepted row whose ID number an earlier accepted row has."""
    accepted_ids = list(compress(ids, accepted.tolist()))
    if len(set(accepted_ids)) == len(accepted_ids):
        return  # the common case: no ID number twice
    first_row: dict[str, int] = {}
    for index in np.flatnonzero(accepted).tolist():
        id_number = ids[index]
        if id_number in first_row:
            cells = table.rows[index]
            problem = Problem(
                "id_number",
                mask_id_number(id_number),
                f"the same ID number is already on row {first_row[id_number]}",
            )
            rejections[index] = RowRejection(
                row=table.row_numbers[index],
                values=mapping.values(cells),
                problems=(problem,),
                cells=tuple(cells),
            )
            accepted[index] = False
        else:
            first_row[id_number] = table.row_numbers[index]


def check_resident_row(
    values: dict[str, str | None], *, row: int, today: dt.date
) -> ResidentRow | RowRejection:
    """Check one row's raw values (by canonical field) as of ``today``.

    Promises: every problem of the row is reported, not only the first; each
    names the field and its value (ID and phone masked). Accepted rows carry
    typed, canonical values (see ``ResidentRow``); tags combine the 标签 column,
    湖北相关=是 (hubei_linked) and a return from abroad fewer than 14 days
    before ``today`` (abroad_14d), in the order of ``TAGS``.
    """
    raw = {k: _blank_to_none(v) for k, v in values.items()}
    problems: list[Problem] = []
    name = _check_text("name", raw.get("name"), problems=problems, required=True)
    identity = _check_id_number(raw.get("id_number"), today=today, problems=problems)
    _check_sex_column(raw.get("sex"), identity=identity, problems=problems)
    _check_birth_column(raw.get("birth_date"), identity=identity, today=today, problems=problems)
    place = _check_place(raw, problems=problems)
    quarantine = _check_quarantine(raw, today=today, problems=problems)
    abroad = _check_date(
        "abroad_return_date", raw.get("abroad_return_date"), today=today, problems=problems
    )
    category = _check_category(raw.get("category"), problems=problems)
    phone = _check_phone(raw.get("phone"), problems=problems)
    hukou = _check_text("hukou", raw.get("hukou"), problems=problems)
    health_code = _check_health_code(raw.get("health_code"), problems=problems)
    tags = _check_tags(raw, abroad=abroad, today=today, problems=problems)
    note = _check_text("note", raw.get("note"), problems=problems)
    if problems or name is None or identity is None or category is None:
        return RowRejection(row=row, values=dict(values), problems=tuple(problems))
    return ResidentRow(
        row=row,
        name=name,
        id_number=identity.id_number,
        sex=identity.sex,
        birth_date=identity.birth_date,
        category=category,
        phone=phone,
        address=place.address,
        hukou=hukou,
        lon=place.lon,
        lat=place.lat,
        health_code=health_code,
        tags=tags,
        abroad_return_date=abroad,
        quarantine_kind=quarantine.kind,
        quarantine_start=quarantine.start,
        quarantine_planned_end=quarantine.planned_end,
        quarantine_site=quarantine.site,
        note=note,
    )


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return text or None


def _check_text(
    name: str, value: str | None, *, problems: list[Problem], required: bool = False
) -> str | None:
    if value is None:
        if required:
            problems.append(Problem(name, None, "required"))
        return None
    limit = MAX_TEXT.get(name, 200)
    if len(value) > limit:
        problems.append(Problem(name, value[:20] + "…", f"longer than {limit} characters"))
    return value


# --- ID number ---------------------------------------------------------------------------


def check_id_number(value: str, *, today: dt.date) -> tuple[str | None, tuple[Problem, ...]]:
    """One ID number checked as the registry import checks it (GB 11643: form,
    area, birth date, check digit): its canonical 18 characters, or None and
    every problem (values masked)."""
    problems: list[Problem] = []
    identity = _check_id_number(value, today=today, problems=problems)
    return (identity.id_number if identity else None), tuple(problems)


def check_phone(value: str) -> tuple[str | None, tuple[Problem, ...]]:
    """One phone number checked as the registry import checks it: the 11
    mobile digits, or None and the problem (value masked)."""
    problems: list[Problem] = []
    digits = _check_phone(value, problems=problems)
    return digits, tuple(problems)


class _Identity(NamedTuple):
    id_number: str
    birth_date: dt.date
    sex: str  # "M" / "F"


def _check_id_number(
    value: str | None, *, today: dt.date, problems: list[Problem]
) -> _Identity | None:
    """GB 11643: 18 characters, real area, real birth date, MOD 11-2 check digit."""
    if value is None:
        problems.append(Problem("id_number", None, "required"))
        return None
    # Excel users type a leading ' to keep digits as text; full-width digits occur too.
    text = unicodedata.normalize("NFKC", value).replace(" ", "").lstrip("'`").upper()
    before = len(problems)
    if looks_like_number_text(text):
        problems.append(_id_problem(text, _STORED_AS_NUMBER))
        return None
    if len(text) == 15 and text.isdigit():
        problems.append(_id_problem(text, "15-digit ID numbers must be converted to 18 digits"))
        return None
    if not _ID_FORM.fullmatch(text):
        problems.append(
            _id_problem(
                text,
                f"must be 18 characters, got {len(text)}"
                if len(text) != 18
                else "must be 17 digits followed by a digit or X",
            )
        )
        return None
    birth = _id_birth_date(text, today=today, problems=problems)
    _check_id_area(text, problems=problems)
    if _check_digit(text) != text[17]:
        problems.append(
            _id_problem(
                text,
                f"the check digit {text[17]} does not match the first 17 digits: a digit is mistyped",
            )
        )
    if len(problems) > before or birth is None:
        return None
    # The 17th digit is the sequence number's last: odd for men, even for women.
    return _Identity(text, birth, "M" if int(text[16]) % 2 == 1 else "F")


_STORED_AS_NUMBER = (
    "was stored as a number and has lost its last digits; format the column as text (文本)"
    " and enter the number again"
)


def _id_problem(text: str, message: str) -> Problem:
    return Problem("id_number", mask_id_number(text), message)


# ISO 7064 MOD 11-2 weights of the first 17 digits (2^(17-i) mod 11), as geo.demo.id_check_digit.
_ID_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))


def _check_digit(text: str) -> str:
    total = sum(w * (ord(c) - 48) for w, c in zip(_ID_WEIGHTS, text[:17], strict=False))
    return "10X98765432"[total % 11]


def _check_id_area(text: str, *, problems: list[Problem]) -> None:
    if text[:6] == "000000":
        problems.append(_id_problem(text, "area code 000000 is not a real area"))
    elif text[:2] not in PROVINCE_CODES:
        problems.append(_id_problem(text, f"area code {text[:6]} names no province ({text[:2]})"))


def _id_birth_date(text: str, *, today: dt.date, problems: list[Problem]) -> dt.date | None:
    digits = text[6:14]
    try:
        birth = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        problems.append(_id_problem(text, f"its birth date {digits} is not a calendar date"))
        return None
    if birth > today:
        problems.append(_id_problem(text, f"its birth date {birth} is in the future"))
        return None
    if birth < EARLIEST_BIRTH:
        problems.append(_id_problem(text, f"its birth date {birth} is before 1900"))
        return None
    return birth


def _check_sex_column(
    value: str | None, *, identity: _Identity | None, problems: list[Problem]
) -> None:
    if value is None:
        return
    sex = SEX_ALIASES.get(value.lower())
    if sex is None:
        problems.append(Problem("sex", value, "use 男 or 女"))
    elif identity is not None and sex != identity.sex:
        problems.append(
            Problem(
                "sex", value, f"disagrees with the ID number, which says {SEX_LABELS[identity.sex]}"
            )
        )


def _check_birth_column(
    value: str | None, *, identity: _Identity | None, today: dt.date, problems: list[Problem]
) -> None:
    birth = _check_date("birth_date", value, today=today, problems=problems)
    if birth is not None and identity is not None and birth != identity.birth_date:
        problems.append(
            Problem(
                "birth_date",
                value,
                f"{birth} disagrees with the ID number's birth date {identity.birth_date}",
            )
        )


# --- phone, category, codes ----------------------------------------------------------------


def _check_phone(value: str | None, *, problems: list[Problem]) -> str | None:
    """An 11-digit mobile number; +86/0086/86, spaces and dashes are dropped."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value)
    if looks_like_number_text(text):
        problems.append(Problem("phone", mask_phone(text), _STORED_AS_NUMBER))
        return None
    digits = _PHONE_NOISE.sub("", text)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and _MOBILE.fullmatch(digits[len(prefix) :]):
            digits = digits[len(prefix) :]
    if _MOBILE.fullmatch(digits):
        return digits
    shown = mask_phone(digits)
    if _LANDLINE.fullmatch(digits):
        message = "is a landline number, not a mobile number (11 digits starting with 13–19)"
    else:
        message = "is not a mobile number (11 digits starting with 13–19)"
    problems.append(Problem("phone", shown, message))
    return None


def _check_category(value: str | None, *, problems: list[Problem]) -> str | None:
    if value is None:
        problems.append(Problem("category", None, "required"))
        return None
    key = unicodedata.normalize("NFKC", value).replace(" ", "").lower()
    category = CATEGORY_ALIASES.get(key)
    if category is None:
        known = ", ".join(f"{n} {label}" for n, label in enumerate(CATEGORY_LABELS.values(), 1))
        problems.append(Problem("category", value, f"unknown category; use one of {known}"))
    return category


def _check_health_code(value: str | None, *, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    colour = HEALTH_CODE_ALIASES.get(value.replace(" ", "").lower())
    if colour is None:
        problems.append(Problem("health_code", value, "use 绿码, 黄码 or 红码"))
    return colour


def _check_tags(
    raw: dict[str, str | None], *, abroad: dt.date | None, today: dt.date, problems: list[Problem]
) -> tuple[str, ...]:
    found: set[str] = set()
    text = raw.get("tags")
    for label in _TAG_SEPARATORS.split(text) if text else ():
        if not label:
            continue
        tag = TAG_ALIASES.get(label.lower())
        if tag is None:
            known = ", ".join(TAG_LABELS.values())
            problems.append(Problem("tags", label, f"unknown tag; known tags: {known}"))
        else:
            found.add(tag)
    if _check_yes_no("hubei", raw.get("hubei"), problems=problems):
        found.add("hubei_linked")
    if abroad is not None and 0 <= (today - abroad).days < ABROAD_WINDOW_DAYS:
        found.add("abroad_14d")
    return tuple(t for t in TAGS if t in found)


def _check_yes_no(name: str, value: str | None, *, problems: list[Problem]) -> bool:
    if value is None:
        return False
    answer = YES_NO.get(value.lower())
    if answer is None:
        problems.append(Problem(name, value, "use 是 or 否"))
    return bool(answer)


# --- place ----------------------------------------------------------------------------------


class _Place(NamedTuple):
    address: str | None
    lon: float | None
    lat: float | None


def _check_place(raw: dict[str, str | None], *, problems: list[Problem]) -> _Place:
    """Address and/or a coordinate pair; at least one must locate the person."""
    address = _check_text("address", raw.get("address"), problems=problems)
    lon_text, lat_text = raw.get("lon"), raw.get("lat")
    lon = lat = None
    if (lon_text is None) != (lat_text is None):
        present = "lon" if lon_text is not None else "lat"
        problems.append(
            Problem(present, lon_text or lat_text, "give both 经度 and 纬度, or neither")
        )
    elif lon_text is not None and lat_text is not None:
        lon, lat = _check_lonlat(lon_text, lat_text, problems=problems)
    if address is None and lon_text is None and lat_text is None:
        problems.append(Problem("address", None, "give an address (现住地址) or 经度 and 纬度"))
    return _Place(address, lon, lat)


def _check_lonlat(
    lon_text: str, lat_text: str, *, problems: list[Problem]
) -> tuple[float | None, float | None]:
    lon = _number("lon", lon_text, problems=problems)
    lat = _number("lat", lat_text, problems=problems)
    if lon is None or lat is None:
        return None, None
    lon_ok = CHINA_LON[0] <= lon <= CHINA_LON[1]
    lat_ok = CHINA_LAT[0] <= lat <= CHINA_LAT[1]
    if lon_ok and lat_ok:
        return lon, lat
    swapped = CHINA_LON[0] <= lat <= CHINA_LON[1] and CHINA_LAT[0] <= lon <= CHINA_LAT[1]
    hint = "; 经度 and 纬度 look swapped" if swapped else ""
    if not lon_ok:
        problems.append(Problem("lon", lon_text, f"not a longitude in China (73–136){hint}"))
    if not lat_ok:
        problems.append(Problem("lat", lat_text, f"not a latitude in China (3–54){hint}"))
    return None, None


def _number(name: str, text: str, *, problems: list[Problem]) -> float | None:
    try:
        value = float(unicodedata.normalize("NFKC", text).rstrip("°"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        problems.append(Problem(name, text, "not a number"))
        return None
    return value


# --- quarantine -----------------------------------------------------------------------------


class _Quarantine(NamedTuple):
    kind: str | None
    start: dt.date | None
    planned_end: dt.date | None
    site: str | None


def _check_quarantine(
    raw: dict[str, str | None], *, today: dt.date, problems: list[Problem]
) -> _Quarantine:
    """Kind and start go together; central quarantine names its site."""
    kind_text, site = raw.get("quarantine_kind"), raw.get("quarantine_site")
    start = _check_date(
        "quarantine_start", raw.get("quarantine_start"), today=today, problems=problems
    )
    kind = _quarantine_kind(kind_text, problems=problems)
    if kind_text is None and (raw.get("quarantine_start") is not None or site is not None):
        problems.append(
            Problem(
                "quarantine_kind",
                None,
                "required with a quarantine start or site (居家隔离 or 集中隔离)",
            )
        )
    if kind_text is not None and raw.get("quarantine_start") is None:
        problems.append(
            Problem("quarantine_start", None, f"required with quarantine kind “{kind_text}”")
        )
    if kind == "central" and site is None:
        problems.append(
            Problem("quarantine_site", None, "central quarantine (集中隔离) needs its site")
        )
    if kind == "home" and site is not None:
        problems.append(
            Problem(
                "quarantine_site",
                site,
                "home quarantine (居家隔离) is at the home address; a site is for 集中隔离",
            )
        )
    _check_text("quarantine_site", site, problems=problems)
    end = start + dt.timedelta(days=QUARANTINE_DAYS) if start is not None else None
    return _Quarantine(kind, start, end, site)


def _quarantine_kind(value: str | None, *, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    kind = QUARANTINE_ALIASES.get(value.replace(" ", "").lower())
    if kind is None:
        problems.append(Problem("quarantine_kind", value, "use 居家隔离 or 集中隔离"))
    return kind


# --- dates ----------------------------------------------------------------------------------


def parse_registry_date(text: str) -> dt.date:
    """A date as registers write it: ``2020-02-06`` (a time may follow), ``2020/2/6``,
    ``2020.2.6``, ``2020年2月6日``, ``20200206`` or an Excel serial day number.

    Raises ``ValueError`` saying why. A bare 4-digit year (1900–2100) is refused
    rather than read as an Excel serial.
    """
    value = unicodedata.normalize("NFKC", text).strip()
    for pattern, groups in _DATE_PATTERNS:
        match = pattern.fullmatch(value)
        if match:
            year, month, day = (int(match.group(g)) for g in groups)
            try:
                return dt.date(year, month, day)
            except ValueError:
                raise ValueError("not a calendar date") from None
    match = _EXCEL_SERIAL.fullmatch(value)
    if match:
        return _excel_serial_date(int(match.group(1)))
    raise ValueError("not a date; write it as 2020-02-06")


_DATE_PATTERNS: tuple[tuple[re.Pattern[str], tuple[int, int, int]], ...] = (
    (_DATE_SEPARATED, (1, 3, 4)),
    (_DATE_CHINESE, (1, 2, 3)),
    (_DATE_COMPACT, (1, 2, 3)),
)


def _excel_serial_date(serial: int) -> dt.date:
    if 1900 <= serial <= 2100:
        raise ValueError("a year alone is not a date")
    if serial < 1:
        raise ValueError("not a date")
    if serial == _EXCEL_PHANTOM_LEAP_DAY:
        raise ValueError("Excel's serial 60 is 1900-02-29, which did not exist")
    offset = serial + 1 if serial < _EXCEL_PHANTOM_LEAP_DAY else serial
    return _EXCEL_EPOCH + dt.timedelta(days=offset)


def _check_date(
    name: str, value: str | None, *, today: dt.date, problems: list[Problem]
) -> dt.date | None:
    """A parsed date not after ``today`` (a birth date not before 1900)."""
    if value is None:
        return None
    try:
        day = parse_registry_date(value)
    except ValueError as exc:
        problems.append(Problem(name, value, str(exc)))
        return None
    if day > today:
        problems.append(Problem(name, value, f"{day} is in the future (today is {today})"))
        return None
    if name == "birth_date" and day < EARLIEST_BIRTH:
        problems.append(Problem(name, value, f"{day} is before 1900"))
        return None
    return day


# --- the column-wise fast path (check_columns) ---------------------------------------------

# Values the row checks would map without changing a character: a raw value
# found here gets exactly the answer ``check_resident_row`` gives it.
_FAST_CATEGORIES = {
    k: v
    for k, v in CATEGORY_ALIASES.items()
    if unicodedata.normalize("NFKC", k).replace(" ", "").lower() == k
}
_FAST_HEALTH_CODES = {
    k: v for k, v in HEALTH_CODE_ALIASES.items() if k.replace(" ", "").lower() == k
}
_FAST_SEXES = {k: v for k, v in SEX_ALIASES.items() if k.lower() == k}
# Columns a row must leave empty to be checked column-wise: their values need parsing.
_SLOW_FIELDS = (
    "birth_date", "hubei", "abroad_return_date", "quarantine_kind", "quarantine_start",
    "quarantine_site", "lon", "lat",
)  # fmt: skip
_ID_LENGTH = 18
_MOBILE_LENGTH = 11
_ASCII_0 = ord("0")
# The check digit ("10X98765432"[sum % 11]) as bytes, and the provinces as a lookup by number.
_CHECK_DIGITS = np.frombuffer(b"10X98765432", dtype=np.uint8)
_PROVINCE_TABLE = np.array([f"{n:02d}" in PROVINCE_CODES for n in range(100)])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])

BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


class _FastColumns:
    """The column-wise check of every row in its plainest form.

    ``ok[i]``: row ``i`` passes every check and ``columns[f][i]`` are its
    values, equal to what ``check_resident_row`` would accept it with; rows
    not ``ok`` (placeholders in ``columns``) must go through the row check.
    The loops run in C (``map``, ``numpy``): a million rows take about a second.
    """

    def __init__(self, table: Table, *, mapping: HeaderMapping, today: dt.date) -> None:
        self.count = len(table.rows)
        narrowest = min(map(len, table.rows), default=0)
        self.raw = {f: _column(table.rows, i, narrowest) for f, i in mapping.columns.items()}
        self.ok = np.ones(self.count, dtype=bool)
        for name in _SLOW_FIELDS:
            if name in self.raw:
                self.ok &= _is_none(self.raw[name])
        sexes, births = self._identity(today=today)
        columns: dict[str, list[Any]] = {
            "row": list(table.row_numbers),
            "name": self._text("name", required=True),
            "id_number": self._raw("id_number"),
            "sex": sexes,
            "birth_date": births,
            "category": self._lookup("category", _FAST_CATEGORIES, required=True),
            "phone": self._phone(),
            "address": self._text("address", required=True),
            "hukou": self._text("hukou"),
            "health_code": self._lookup("health_code", _FAST_HEALTH_CODES),
            "tags": self._tags(today=today),
            "note": self._text("note"),
        }
        # The fields a row checked here never has are empty.
        self.columns = {
            name: columns[name] if name in columns else [None] * self.count
            for name in RESIDENT_FIELDS
        }

    def _raw(self, name: str) -> list[str | None]:
        values = self.raw.get(name)
        return values if values is not None else [None] * self.count

    def _text(self, name: str, *, required: bool = False) -> list[str | None]:
        """Stripped, non-empty text within its length limit (or none, unless required)."""
        values = self._raw(name)
        absent, present, texts = _present(values)
        good = np.zeros(self.count, dtype=bool)
        if texts:
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
            unchanged = map(operator.eq, map(str.strip, texts), texts)
            stripped = np.fromiter(unchanged, dtype=np.bool_, count=len(texts))
            good[present] = stripped & (lengths > 0) & (lengths <= MAX_TEXT.get(name, 200))
        self.ok &= good if required else good | absent
        return values

    def _lookup(
        self, name: str, aliases: dict[str, str], *, required: bool = False
    ) -> list[str | None]:
        values = self._raw(name)
        found: list[str | None] = list(map(aliases.get, values))  # type: ignore[arg-type]
        known = ~_is_none(found)
        self.ok &= known if required else known | _is_none(values)
        return found

    def _tags(self, *, today: dt.date) -> list[Any]:
        """The 标签 column's tags, each distinct value read once."""
        values = self._raw("tags")
        known: dict[str | None, tuple[str, ...] | None] = {}
        for value in set(values):
            problems: list[Problem] = []
            raw = {"tags": _blank_to_none(value)}
            tags = _check_tags(raw, abroad=None, today=today, problems=problems)
            known[value] = None if problems else tags
        found = list(map(known.__getitem__, values))
        self.ok &= ~_is_none(found)
        return found

    def _fixed_width(
        self, values: list[str | None], *, width: int
    ) -> tuple[NDArray[np.uint8], BoolArray]:
        """The values as a (rows, width) array of ASCII codes (others: ``?``), and
        whether each value was ``width`` characters long."""
        _, present, texts = _present(values)
        lengths = np.zeros(self.count, dtype=np.int64)
        lengths[present] = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        fits = lengths == width
        if fits.all():
            joined = "".join(texts)
        else:
            filler = "?" * width
            joined = "".join(
                cast(str, v) if f else filler for v, f in zip(values, fits.tolist(), strict=True)
            )
        codes = np.frombuffer(joined.encode("ascii", errors="replace"), dtype=np.uint8)
        return codes.reshape(self.count, width), fits

    def _phone(self) -> list[str | None]:
        """An 11-digit mobile number as written, or none."""
        values = self._raw("phone")
        if not self.count:
            return values
        codes, fits = self._fixed_width(values, width=_MOBILE_LENGTH)
        numeric = ((codes >= ord("0")) & (codes <= ord("9"))).all(axis=1)
        mobile = fits & numeric & (codes[:, 0] == ord("1")) & (codes[:, 1] >= ord("3"))
        self.ok &= mobile | _is_none(values)
        return values

    def _identity(self, *, today: dt.date) -> tuple[list[Any], list[Any]]:
        """Sex and birth date of every ID number in plain form (GB 11643 checks);
        the 性别 column, when filled, must agree."""
        values = self._raw("id_number")
        if not self.count:
            return [], []
        codes, fits = self._fixed_width(values, width=_ID_LENGTH)
        digits = codes.astype(np.int16) - _ASCII_0
        numeric = ((digits[:, :17] >= 0) & (digits[:, :17] <= 9)).all(axis=1)
        last = ((digits[:, 17] >= 0) & (digits[:, 17] <= 9)) | (codes[:, 17] == ord("X"))
        ok = fits & numeric & last
        digits[~ok] = 0
        province = _PROVINCE_TABLE[digits[:, 0] * 10 + digits[:, 1]]
        weighted = digits[:, :17].astype(np.int32) @ np.array(_ID_WEIGHTS, dtype=np.int32)
        check = _CHECK_DIGITS[weighted % 11] == codes[:, 17]
        year = _decimal(digits[:, 6:10])
        month = _decimal(digits[:, 10:12])
        day = _decimal(digits[:, 12:14])
        leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
        month_ok = (month >= 1) & (month <= 12)
        days = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + (leap & (month == 2))
        ymd = year * 10_000 + month * 100 + day
        ok &= province & check & month_ok & (day >= 1) & (day <= days)
        ok &= (ymd <= _ymd(today)) & (ymd >= _ymd(EARLIEST_BIRTH))
        sexes: list[str] = np.where(digits[:, 16] % 2 == 1, "M", "F").tolist()
        if "sex" in self.raw:
            written = self.raw["sex"]
            agrees = map(operator.eq, map(_FAST_SEXES.get, written), sexes)  # type: ignore[arg-type]
            ok &= np.fromiter(agrees, dtype=bool, count=self.count) | _is_none(written)
        self.ok &= ok
        year, month, day = (np.where(ok, a, b) for a, b in ((year, 1970), (month, 1), (day, 1)))
        months = (year - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (month - 1)
        born = months.astype("datetime64[D]") + (day - 1)
        return sexes, born.tolist()


def _column(rows: list[list[str | None]], index: int, narrowest: int) -> list[str | None]:
    """Cell ``index`` of every row, ``None`` where a row is too short (``narrowest``:
    the length of the shortest row)."""
    if narrowest > index:
        return list(map(operator.itemgetter(index), rows))
    return [cells[index] if index < len(cells) else None for cells in rows]


def _is_none(values: list[Any]) -> BoolArray:
    return np.fromiter(map(operator.is_, values, repeat(None)), dtype=np.bool_, count=len(values))


def _present(values: list[str | None]) -> tuple[BoolArray, IntArray, list[str]]:
    """Which values are ``None``, the indices of the others, and the others."""
    absent = _is_none(values)
    present = np.flatnonzero(~absent)
    if not absent.any():
        return absent, present, cast(list[str], values)
    return absent, present, [cast(str, values[i]) for i in present.tolist()]


def _ymd(day: dt.date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


def _decimal(digits: NDArray[np.int16]) -> IntArray:
    """Each row's decimal digits as one number."""
    out = np.zeros(len(digits), dtype=np.int64)
    for column in range(digits.shape[1]):
        out = out * 10 + digits[:, column]
    return out


# --- the rejected rows file ------------------------------------------------------------------


def rejected_rows_file(
    rejections: Iterable[RowRejection],
    *,
    headers: Sequence[str],
    path: Path,
    fmt: Literal["csv", "xlsx"],
) -> int:
    """Write the rejected rows for the office to fix and import again.

    Columns: the file's own ``headers`` in order (an earlier 拒绝原因 column is
    dropped), then 拒绝原因 with the row number and every reason. Original
    values are written unmasked: the file goes back to the office that sent
    them. CSV is UTF-8 with a BOM so Excel opens it correctly. Returns the
    number of rows written.
    """
    keep = [i for i, h in enumerate(headers) if normalize_header(h) not in _REASON_KEYS]
    out_headers = [headers[i] for i in keep] + [REASON_HEADER]
    if fmt not in ("csv", "xlsx"):
        raise InvalidInput(f"unknown rejected rows format {fmt!r}; use csv or xlsx")
    cell = _cell_lookup(headers)
    rows = ([cell(r, i) for i in keep] + [r.reason_text()] for r in rejections)
    table_fmt: Literal["csv-utf8", "xlsx"] = "xlsx" if fmt == "xlsx" else "csv-utf8"
    return write_table(path, headers=out_headers, rows=rows, fmt=table_fmt, sheet_title="拒绝")


_REASON_KEYS = frozenset({normalize_header(REASON_HEADER)})


def _cell_lookup(headers: Sequence[str]) -> Callable[[RowRejection, int], str | None]:
    """Cell ``index`` of a rejection: its original cell, else its value by field."""
    fields = [header_field(h) for h in headers]

    def lookup(rejection: RowRejection, index: int) -> str | None:
        if rejection.cells:
            return rejection.cells[index] if index < len(rejection.cells) else None
        target = fields[index]
        return rejection.values.get(target) if target else None

    return lookup
