"""The resident row: header mapping, row checks with every reason, masking, the
rejected rows file, and the demo's register passing its own checks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
from pathlib import Path
from typing import Literal

import pytest

import geo.registry
from db.demo import build_demo
from geo.demo import DemoCounty, id_check_digit
from geo.demo_state import DemoState, generate_state
from geo.errors import InvalidInput
from geo.registry import (
    CATEGORY_ALIASES,
    FIELDS,
    HEADER_ALIASES,
    ResidentRow,
    RowRejection,
    check_resident_row,
    check_table,
    map_headers,
    mask_id_number,
    mask_phone,
    parse_registry_date,
    rejected_rows_file,
)
from geo.registry_export import REGISTRY_HEADERS, household_addresses, write_registry_file
from geo.tabular import Table, read_table

TODAY = dt.date(2020, 2, 6)


def make_id(*, area: str = "445321", birth: str = "19900101", sequence: str = "123") -> str:
    """A GB 11643 number; an odd last sequence digit is a man."""
    first17 = area + birth + sequence
    return first17 + id_check_digit(first17)


GOOD_ID = make_id()  # 445321199001011231… with its check digit
GOOD: dict[str, str | None] = {
    "name": "张三",
    "id_number": GOOD_ID,
    "phone": "13812345678",
    "address": "广东省云浮市新兴县新城镇人民路1号",
    "category": "本地常住",
}


def check(**changes: str | None) -> ResidentRow | RowRejection:
    return check_resident_row({**GOOD, **changes}, row=7, today=TODAY)


def rejected(**changes: str | None) -> RowRejection:
    result = check(**changes)
    assert isinstance(result, RowRejection), result
    return result


def accepted(**changes: str | None) -> ResidentRow:
    result = check(**changes)
    assert isinstance(result, ResidentRow), result
    return result


def only_reason(rejection: RowRejection) -> str:
    assert len(rejection.reasons) == 1, rejection.reasons
    return rejection.reasons[0]


# --- headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "field"), sorted(HEADER_ALIASES.items()))
def test_every_mapped_header(header: str, field: str) -> None:
    required = {"name": "姓名", "id_number": "身份证号", "address": "现住地址"}
    headers = [h for f, h in required.items() if f != field] + [header]
    mapping = map_headers(headers)
    assert mapping.columns[field] == len(headers) - 1
    assert mapping.unknown == () and mapping.duplicates == ()


def test_every_alias_is_in_the_documented_table() -> None:
    doc = geo.registry.__doc__ or ""
    table = doc[doc.index("=====") : doc.rindex("=====")]
    for header, field in HEADER_ALIASES.items():
        if header == field:
            continue
        line = next(line for line in table.splitlines() if line.startswith(field + " "))
        assert re.search(rf"[ ,]{re.escape(header)}(,|$)", line), (header, line)
    assert {f for f in HEADER_ALIASES.values()} == set(FIELDS)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        (" 姓 名 ", "name"),
        ("\u3000身份证号码\u3000", "id_number"),
        ("*手机号", "phone"),
        ("联系电话＊", "phone"),
        ("ID_NUMBER", "id_number"),
        ("Name", "name"),
        ("ｌｏｎ", "lon"),  # full-width letters
        ("Quarantine_Start", "quarantine_start"),
    ],
)
def test_header_matching_forgives_spaces_width_and_case(header: str, field: str) -> None:
    assert geo.registry.header_field(header) == field


def test_unknown_and_duplicate_headers_are_reported() -> None:
    mapping = map_headers(["序号", "姓名", "身份证号", "经度", "纬度", "民族", "手机号", "联系电话", "拒绝原因"])  # fmt: skip
    assert mapping.unknown == ("民族",)
    assert mapping.duplicates == ("联系电话",)
    assert mapping.columns == {"name": 1, "id_number": 2, "lon": 3, "lat": 4, "phone": 6}
    assert mapping.values(["1", "张三", "x", "112.1", "22.6", "汉", "138", "139"]) == {
        "name": "张三",
        "id_number": "x",
        "lon": "112.1",
        "lat": "22.6",
        "phone": "138",
    }


def test_missing_required_columns_are_listed_with_what_was_found() -> None:
    with pytest.raises(InvalidInput) as caught:
        map_headers(["名字", "电话", "经度"], source="人员.csv")
    message = str(caught.value)
    assert message.startswith("人员.csv: missing required column(s)")
    assert "姓名 (name)" in message and "身份证号 (id_number)" in message
    assert "现住地址 (address), or 经度 and 纬度" in message
    assert "Found: 名字, 电话, 经度" in message
    assert caught.value.extra["found"] == ["名字", "电话", "经度"]
    assert caught.value.extra["unknown"] == ["名字", "电话"]
    assert len(caught.value.extra["missing"]) == 3


def test_coordinates_may_stand_in_for_the_address_column() -> None:
    assert map_headers(["姓名", "身份证号", "经度", "纬度"]).columns["lat"] == 3


# --- a good row ------------------------------------------------------------------------------


def test_good_row_is_typed_and_canonical() -> None:
    row = accepted(
        id_number=" " + GOOD_ID[:-1] + GOOD_ID[-1].lower() + " ",
        phone="+86 138-1234-5678",
        sex="男",
        birth_date="1990/1/1",
        hukou="新兴县",
        health_code="黄码",
        tags="密接、发热",
        hubei="是",
        abroad_return_date="2020年1月30日",
        quarantine_kind="集中隔离",
        quarantine_start="2020.2.1",
        quarantine_site="新兴县迎宾馆",
        lon="112.2",
        lat=" 22.7 ",
        note="",
    )
    assert row == ResidentRow(
        row=7,
        name="张三",
        id_number=GOOD_ID,
        sex="M",
        birth_date=dt.date(1990, 1, 1),
        category="local_permanent",
        phone="13812345678",
        address=GOOD["address"],
        hukou="新兴县",
        lon=112.2,
        lat=22.7,
        health_code="yellow",
        tags=("hubei_linked", "abroad_14d", "close_contact", "fever"),
        abroad_return_date=dt.date(2020, 1, 30),
        quarantine_kind="central",
        quarantine_start=dt.date(2020, 2, 1),
        quarantine_planned_end=dt.date(2020, 2, 15),
        quarantine_site="新兴县迎宾馆",
        note=None,
    )


def test_lower_case_x_is_upper_cased() -> None:
    for sequence in ("000", "001", "002", "003", "004", "005", "006", "007", "008", "009"):
        number = make_id(sequence=sequence)
        if number.endswith("X"):
            assert accepted(id_number=number.lower()).id_number == number
            return
    raise AssertionError("no X check digit among ten sequences")


def test_sex_and_birth_date_come_from_the_id() -> None:
    row = accepted(id_number=make_id(birth="20000229", sequence="002"))
    assert (row.sex, row.birth_date) == ("F", dt.date(2000, 2, 29))


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("本地常住", "local_permanent"),
        ("外地常住", "nonlocal_permanent"),
        ("本地暂住", "local_temporary"),
        ("外地暂住", "nonlocal_temporary"),
        ("1", "local_permanent"),
        ("2", "nonlocal_permanent"),
        ("3", "local_temporary"),
        ("4", "nonlocal_temporary"),
        ("外来暂住人口", "nonlocal_temporary"),
        ("本地常住人员", "local_permanent"),
        ("nonlocal_permanent", "nonlocal_permanent"),
        ("４", "nonlocal_temporary"),
    ],
)
def test_categories(label: str, code: str) -> None:
    assert accepted(category=label).category == code


def test_vague_categories_are_not_guessed() -> None:
    for vague in ("流动人口", "外来人员", "常住", "5"):
        assert vague not in CATEGORY_ALIASES


@pytest.mark.parametrize(
    ("text", "colour"),
    [("绿", "green"), ("绿码", "green"), ("Green", "green"), ("黄", "yellow"), ("黄码", "yellow"),
     ("yellow", "yellow"), ("红", "red"), ("红码", "red"), ("RED", "red")],
)  # fmt: skip
def test_health_codes(text: str, colour: str) -> None:
    assert accepted(health_code=text).health_code == colour


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2020-02-06", dt.date(2020, 2, 6)),
        ("2020-2-6", dt.date(2020, 2, 6)),
        ("2020/2/6", dt.date(2020, 2, 6)),
        ("2020.2.6", dt.date(2020, 2, 6)),
        ("2020年2月6日", dt.date(2020, 2, 6)),
        ("2020年02月06", dt.date(2020, 2, 6)),
        ("20200206", dt.date(2020, 2, 6)),
        ("2020-02-06 00:00:00", dt.date(2020, 2, 6)),
        ("43867", dt.date(2020, 2, 6)),  # Excel serial
        ("43867.0", dt.date(2020, 2, 6)),
        ("61", dt.date(1900, 3, 1)),
        ("59", dt.date(1900, 2, 28)),
        ("1", dt.date(1900, 1, 1)),
    ],
)
def test_dates(text: str, day: dt.date) -> None:
    assert parse_registry_date(text) == day


@pytest.mark.parametrize("text", ["2020", "60", "0", "2020-2/6", "2020-02-30", "6/2/2020", "昨天"])
def test_bad_dates(text: str) -> None:
    with pytest.raises(ValueError):
        parse_registry_date(text)


def test_tags_split_and_map() -> None:
    row = accepted(tags="湖北相关，境外返回;密切接触者 ; 发热,fever")
    assert row.tags == ("hubei_linked", "abroad_14d", "close_contact", "fever")
    assert accepted(hubei="否").tags == ()
    assert accepted(hubei="是").tags == ("hubei_linked",)


def test_abroad_return_within_14_days_adds_the_tag() -> None:
    assert accepted(abroad_return_date="2020-01-24").tags == ("abroad_14d",)  # 13 days
    assert accepted(abroad_return_date="2020-01-23").tags == ()  # 14 days: served
    assert accepted(abroad_return_date="2020-02-06").tags == ("abroad_14d",)


def test_home_quarantine_plans_14_days() -> None:
    row = accepted(quarantine_kind="居家隔离", quarantine_start="2020-01-30")
    assert (row.quarantine_kind, row.quarantine_site) == ("home", None)
    assert row.quarantine_planned_end == dt.date(2020, 2, 13)


def test_phone_variants() -> None:
    for text in ("138 1234 5678", "138-1234-5678", "8613812345678", "+86-13812345678", "0086 13812345678", "１３８１２３４５６７８"):  # fmt: skip
        assert accepted(phone=text).phone == "13812345678"
    assert accepted(phone=None).phone is None


def test_coordinates_alone_locate_a_person() -> None:
    row = accepted(address=None, lon="112.2", lat="22.7")
    assert (row.address, row.lon, row.lat) == (None, 112.2, 22.7)


# --- each bad row kind -----------------------------------------------------------------------


def test_bad_check_digit() -> None:
    wrong = GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1")
    reason = only_reason(rejected(id_number=wrong))
    assert reason.startswith(f"身份证号 (id_number) “{mask_id_number(wrong)}”: the check digit")


def test_impossible_birth_date() -> None:
    reason = only_reason(rejected(id_number=make_id(birth="19990231")))
    assert "id_number" in reason and "birth date 19990231 is not a calendar date" in reason


def test_future_birth_date() -> None:
    reason = only_reason(rejected(id_number=make_id(birth="20200207")))
    assert "birth date 2020-02-07 is in the future" in reason


def test_birth_before_1900() -> None:
    assert "before 1900" in only_reason(rejected(id_number=make_id(birth="18991231")))


def test_fifteen_digit_id() -> None:
    reason = only_reason(rejected(id_number="445321900101123"))
    assert "15-digit ID numbers must be converted to 18 digits" in reason
    assert "4453*******1123" in reason


def test_area_code_000000() -> None:
    reason = only_reason(rejected(id_number=make_id(area="000000")))
    assert "area code 000000" in reason


def test_id_stored_as_a_number() -> None:
    reason = only_reason(rejected(id_number="4.45321E+17"))
    assert "stored as a number" in reason


def test_wrong_length_id() -> None:
    assert "must be 18 characters" in only_reason(rejected(id_number="4453211990"))


def test_landline_as_mobile() -> None:
    reason = only_reason(rejected(phone="0766-2881234"))
    assert reason == (
        "手机号 (phone) “076****1234”: is a landline number, not a mobile number"
        " (11 digits starting with 13–19)"
    )


def test_not_a_mobile() -> None:
    assert "is not a mobile number" in only_reason(rejected(phone="12812345678"))


def test_unknown_category() -> None:
    reason = only_reason(rejected(category="流动人口"))
    assert reason.startswith(
        "人员类别 (category) “流动人口”: unknown category; use one of 1 本地常住"
    )


def test_missing_category() -> None:
    assert only_reason(rejected(category=" ")) == "人员类别 (category) (empty): required"


def test_bad_date() -> None:
    reason = only_reason(rejected(abroad_return_date="2020-13-01"))
    assert reason == "境外返回日期 (abroad_return_date) “2020-13-01”: not a calendar date"


def test_future_date() -> None:
    reason = only_reason(rejected(quarantine_kind="居家隔离", quarantine_start="2020-02-07"))
    assert "2020-02-07 is in the future (today is 2020-02-06)" in reason


def test_central_quarantine_without_site() -> None:
    reason = only_reason(rejected(quarantine_kind="集中隔离", quarantine_start="2020-02-01"))
    assert (
        reason == "隔离地点 (quarantine_site) (empty): central quarantine (集中隔离) needs its site"
    )


def test_quarantine_kind_and_start_go_together() -> None:
    assert "quarantine_kind" in only_reason(rejected(quarantine_start="2020-02-01"))
    assert "quarantine_start" in only_reason(rejected(quarantine_kind="居家隔离"))
    assert "use 居家隔离 or 集中隔离" in rejected(quarantine_kind="在家", quarantine_start="2020-02-01").reasons[0]  # fmt: skip


def test_birth_date_disagreeing_with_id() -> None:
    reason = only_reason(rejected(birth_date="1990-01-02"))
    assert "1990-01-02" in reason and "1990-01-01" in reason
    assert reason.startswith("出生日期 (birth_date)")


def test_sex_disagreeing_with_id() -> None:
    reason = only_reason(rejected(sex="女"))
    assert reason == "性别 (sex) “女”: disagrees with the ID number, which says 男"


def test_implausible_coordinates() -> None:
    swapped = rejected(address=None, lon="22.7", lat="112.2")
    assert len(swapped.reasons) == 2
    assert all("look swapped" in r for r in swapped.reasons)
    assert "not a number" in only_reason(rejected(lon="east", lat="22.7"))
    assert "give both" in only_reason(rejected(lon="112.2"))


def test_unknown_tag_and_health_code() -> None:
    assert "unknown tag" in only_reason(rejected(tags="发热、重点关注"))
    assert "use 绿码, 黄码 or 红码" in only_reason(rejected(health_code="蓝码"))


def test_every_problem_of_a_row_is_listed() -> None:
    rejection = rejected(
        name=None,
        id_number=make_id(birth="19990231")[:-1] + "0",
        phone="0766-2881234",
        category="流动人口",
        quarantine_kind="集中隔离",
        quarantine_start="2020/2/30",
        address=None,
    )
    fields = [p.field for p in rejection.problems]
    assert fields.count("id_number") == 2  # impossible birth date and check digit
    assert {"name", "phone", "category", "quarantine_start", "quarantine_site", "address"} <= set(fields)  # fmt: skip
    assert len(rejection.reasons) == 8
    assert rejection.row == 7
    assert rejection.values["category"] == "流动人口"
    assert rejection.reason_text().startswith("第7行：姓名 (name) (empty): required；")


# --- masking ---------------------------------------------------------------------------------


def test_masking() -> None:
    assert mask_id_number("445321199001011234") == "4453**********1234"
    assert mask_id_number("44532119900101123X") == "4453**********123X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("12345678") == "********"
    assert mask_phone("1234567") == "*******"
    assert mask_phone(" 13812345678 ") == "138****5678"


def test_reasons_never_show_full_id_or_phone() -> None:
    bad_id = GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1")
    rejection = rejected(id_number=bad_id, phone="12812345678", sex="女")
    text = " ".join(rejection.reasons)
    assert bad_id not in text and "12812345678" not in text
    assert bad_id[4:14] not in text


# --- tables and the rejected rows file ---------------------------------------------------------


def registry_table() -> Table:
    headers = ["序号", "姓名", "身份证号", "手机号", "现住地址", "人员类别", "民族"]
    rows: list[list[str | None]] = [
        ["1", "张三", GOOD_ID, "13812345678", "人民路1号", "本地常住", "汉"],
        ["2", "李四", "445321900101123", "0766-2881234", "人民路2号", "外地常住", "汉"],
        ["3", "王五", GOOD_ID, "13912345678", "人民路3号", "本地暂住", "壮"],
        ["4", "赵六", make_id(sequence="224"), None, None, "9", None],
    ]
    return Table(
        name="人员.csv",
        headers=headers,
        rows=rows,
        encoding="utf-8",
        row_numbers=[2, 3, 5, 6],
    )


def test_check_table_refuses_repeated_id_numbers() -> None:
    result = check_table(registry_table(), today=TODAY)
    assert [r.row for r in result.accepted] == [2]
    assert [r.row for r in result.rejected] == [3, 5, 6]
    assert result.mapping.unknown == ("民族",)
    duplicate = result.rejected[1]
    assert only_reason(duplicate).endswith("the same ID number is already on row 2")
    assert len(result.rejected[2].reasons) == 2  # no address, category 9


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_rejected_rows_file_gives_back_original_values(
    tmp_path: Path, fmt: Literal["csv", "xlsx"]
) -> None:
    table = registry_table()
    result = check_table(table, today=TODAY)
    path = tmp_path / f"rejected.{fmt}"
    written = rejected_rows_file(result.rejected, headers=table.headers, path=path, fmt=fmt)
    assert written == 3
    if fmt == "csv":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    back = read_table(path)
    assert back.headers == [*table.headers, "拒绝原因"]
    assert back.rows[0][:7] == table.rows[1]  # unmasked: the office fixes and re-imports it
    assert back.rows[0][7] is not None and back.rows[0][7].startswith("第3行：")
    assert "15-digit" in back.rows[0][7] and "landline" in back.rows[0][7]
    # Re-importing the file: the reason column is neither unknown nor in the way.
    assert map_headers(back.headers).unknown == ("民族",)
    again = rejected_rows_file(
        check_table(back, today=TODAY).rejected,
        headers=back.headers,
        path=path,
        fmt=fmt,
    )
    # 王五 repeated 张三's ID number; without 张三 in the file it is accepted now.
    assert again == 2
    assert read_table(path).headers == [*table.headers, "拒绝原因"]


def test_rejected_rows_file_without_original_cells(tmp_path: Path) -> None:
    rejection = rejected(phone="0766-2881234")
    path = tmp_path / "rejected.csv"
    rejected_rows_file([rejection], headers=["姓名", "联系电话", "其他"], path=path, fmt="csv")
    back = read_table(path)
    assert back.rows[0][:3] == ["张三", "0766-2881234", None]


# --- the column-wise check is the row check ------------------------------------------------

# Values of each column, plain and otherwise: every row of the table below
# draws one of each, so the column-wise fast path meets every kind of value.
VARIANTS: dict[str, list[str | None]] = {
    "姓名": ["张三", " 张三", "张三 ", None, "", "   ", "李" * 50, "李" * 51, "Ｚｈａｎｇ"],
    "性别": [None, "男", "女", "M", "f", "男性", "Male", "未知", " 男"],
    "身份证号": [
        make_id(), make_id(sequence="124"), make_id(birth="20000229"), make_id(birth="19000101"),
        make_id(area="110101"), make_id(area="000000"), make_id(area="991234"),
        make_id(birth="19000229"), make_id(birth="19991301"), make_id(birth="18991231"),
        make_id(birth="20200207"), make_id(birth="20200206"), make_id()[:17] + "0",
        make_id()[:17].lower() + "x", "4453211990010112X", make_id() + " ", "'" + make_id(),
        "".join(chr(ord(c) + 0xFEE0) for c in make_id()), make_id()[:17] + "Y",
        "445321900101123", "4.45321E+17", None, "",
    ],
    "手机号": [
        "13812345678", "12812345678", "1381234567", "138123456789", "+8613812345678",
        "138-1234-5678", "0766-2881234", "1.38123E+10", "１３８１２３４５６７８", None, " ",
    ],
    "现住地址": ["新兴县新城镇人民路1号", None, "新" * 200, "新" * 201, " 新兴县 "],
    "人员类别": ["本地常住", "1", "4", "5", "local_permanent", "外来暂住人员", "LOCAL_TEMPORARY",
             " 本地常住", "流动人口", None, "本地 常住"],
    "户籍地": [None, "广东省", "广" * 201, "  "],
    "健康码": [None, "绿码", "green", "GREEN", "红", "紫码", " 黄码"],
    "标签": [None, "密接", "发热、湖北相关", "发热,外星人", "fever", " 密切接触者 "],
    "隔离方式": [None, None, None, "居家隔离", "集中隔离", "隔离"],
    "隔离开始日期": [None, None, "2020-02-01", "2020/2/30"],
    "隔离地点": [None, None, None, "新兴县迎宾馆"],
    "出生日期": [None, None, "1990-01-01", "1991-01-01"],
    "湖北相关": [None, None, "是", "否", "也许"],
    "经度": [None, None, None, "112.23", "abc"],
    "纬度": [None, None, None, "22.69", "200"],
    "备注": [None, "备注", "注" * 501],
}  # fmt: skip


def row_by_row(table: Table) -> tuple[list[ResidentRow], list[RowRejection]]:
    """The definition ``check_table`` keeps: ``check_resident_row`` on every
    row, a repeated ID number refused after the first accepted one."""
    mapping = map_headers(table.headers, source=table.name)
    accepted: list[ResidentRow] = []
    refused: list[RowRejection] = []
    first: dict[str, int] = {}
    for number, cells in zip(table.row_numbers, table.rows, strict=True):
        values = mapping.values(cells)
        result = check_resident_row(values, row=number, today=TODAY)
        if isinstance(result, ResidentRow) and result.id_number in first:
            problem = geo.registry.Problem(
                "id_number",
                mask_id_number(result.id_number),
                f"the same ID number is already on row {first[result.id_number]}",
            )
            result = RowRejection(row=number, values=values, problems=(problem,))
        if isinstance(result, RowRejection):
            refused.append(dataclasses.replace(result, cells=tuple(cells)))
        else:
            first[result.id_number] = number
            accepted.append(result)
    return accepted, refused


@pytest.mark.parametrize("plain_share", [0.0, 0.6, 0.97])
@pytest.mark.parametrize("columns", ["all", "register", "short rows"])
def test_check_table_is_the_row_check(plain_share: float, columns: str) -> None:
    rng = random.Random(f"{plain_share}{columns}")
    headers = list(VARIANTS)
    if columns == "register":
        headers = [h for h in REGISTRY_HEADERS if h in VARIANTS]
    rows: list[list[str | None]] = []
    for _ in range(3000):
        # A plain row, or one with one or two other values, or any values at all.
        row = [VARIANTS[h][0] for h in headers]
        row[headers.index("身份证号")] = make_id(sequence=f"{rng.randrange(1000):03d}")
        if rng.random() >= plain_share:
            varied = rng.sample(headers, rng.choice([1, 1, 2, len(headers)]))
            for h in varied:
                row[headers.index(h)] = rng.choice(VARIANTS[h])
        if columns == "short rows" and rng.random() < 0.3:
            row = row[: rng.randrange(len(row))]
        rows.append(row)
    table = Table(
        name="变体.csv",
        headers=headers,
        rows=rows,
        encoding="utf-8",
        row_numbers=list(range(2, len(rows) + 2)),
    )
    result = check_table(table, today=TODAY)
    accepted, refused = row_by_row(table)
    assert result.accepted == accepted
    assert result.rejected == refused
    assert len(refused) > 0 and (len(accepted) > 500 or plain_share == 0)
    columnar = geo.registry.check_columns(table, today=TODAY)
    assert columnar.accepted.residents() == accepted
    assert len(columnar.accepted) == len(accepted)


def test_check_table_of_no_rows() -> None:
    table = Table(name="空.csv", headers=["姓名", "身份证号", "现住地址"], rows=[],
                  encoding="utf-8", row_numbers=[])  # fmt: skip
    result = check_table(table, today=TODAY)
    assert (result.accepted, result.rejected) == ([], [])


# --- the demo register ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> DemoCounty:
    return build_demo(county_code="445321", households=2000, seed=3)


@pytest.fixture(scope="module")
def state(demo: DemoCounty) -> DemoState:
    return generate_state(demo)


def test_demo_register_passes_its_own_checks(
    tmp_path: Path, demo: DemoCounty, state: DemoState
) -> None:
    path = tmp_path / "register.csv"
    write_registry_file(demo, path, fmt="csv-gbk", state=state)
    result = check_table(read_table(path), today=state.reference_date)
    assert result.rejected == []
    assert result.mapping.unknown == ()
    r = demo.residents
    assert [a.id_number for a in result.accepted] == r.id_number.tolist()
    assert [a.phone for a in result.accepted] == r.phone.tolist()
    assert [a.category for a in result.accepted] == r.category.tolist()
    assert [a.sex for a in result.accepted] == r.sex.tolist()
    assert [a.birth_date for a in result.accepted] == r.birth_date.astype(dt.date).tolist()
    addresses = household_addresses(demo)
    assert [a.address for a in result.accepted] == [addresses[h] for h in r.household.tolist()]
    hubei = [i for i, a in enumerate(result.accepted) if "hubei_linked" in a.tags]
    assert hubei == r.hubei_linked.nonzero()[0].tolist()
    contacts = [i for i, a in enumerate(result.accepted) if "close_contact" in a.tags]
    assert contacts == state.residents.close_contact.nonzero()[0].tolist()
    ongoing = state.in_quarantine()
    quarantined = [i for i, a in enumerate(result.accepted) if a.quarantine_kind is not None]
    assert quarantined == ongoing.nonzero()[0].tolist()
    codes = [a.health_code for a in result.accepted]
    assert codes == state.residents.health_code.tolist()


def test_demo_register_subset_and_noisy_addresses(tmp_path: Path, demo: DemoCounty) -> None:
    noisy = [f"新兴县{i}号" for i in range(len(demo.households))]
    path = tmp_path / "part.csv"
    assert write_registry_file(demo, path, fmt="csv-utf8", addresses=noisy, rows=slice(10, 20)) == 10  # fmt: skip
    table = read_table(path)
    expected = [noisy[h] for h in demo.residents.household[10:20].tolist()]
    assert [row[4] for row in table.rows] == expected
    assert all(row[7] is None and row[9] is None for row in table.rows)
    with pytest.raises(InvalidInput, match="households"):
        write_registry_file(demo, path, fmt="csv-utf8", addresses=noisy[:-1])


def test_demo_hukou_places(tmp_path: Path, demo: DemoCounty) -> None:
    path = tmp_path / "register.csv"
    write_registry_file(demo, path, fmt="csv-utf8")
    table = read_table(path)
    for row, category in zip(table.rows, demo.residents.category.tolist(), strict=True):
        if category.startswith("local"):
            assert row[6] == "广东省云浮市新兴县"
        else:
            assert row[6] is not None and row[6] != "广东省云浮市新兴县"
