"""Reading registry spreadsheets: encodings, delimiters, workbooks, errors, round trips."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import openpyxl
import pytest

import geo.tabular
from db.demo import build_demo
from geo.demo import DemoCounty
from geo.demo_state import DemoState, generate_state
from geo.errors import InvalidInput, LimitExceeded
from geo.registry_export import REGISTRY_HEADERS, write_registry_file
from geo.tabular import Table, read_table, write_table

HEADER = "姓名,身份证号,现住地址"
ROW = "张三,445321199001011234,新兴县新城镇人民路1号"


@pytest.fixture(scope="module")
def demo() -> DemoCounty:
    return build_demo(county_code="445321", households=2000, seed=3)


@pytest.fixture(scope="module")
def state(demo: DemoCounty) -> DemoState:
    return generate_state(demo)


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def write_workbook(
    tmp_path: Path, rows: Sequence[Sequence[object]], *, name: str = "t.xlsx"
) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    path = tmp_path / name
    workbook.save(path)
    return path


# --- the demo register round trip -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv-gbk", "xlsx"])
def test_demo_register_reads_back_identically(
    tmp_path: Path, demo: DemoCounty, state: DemoState, fmt: Literal["csv-gbk", "xlsx"]
) -> None:
    reference = tmp_path / "reference.csv"
    write_registry_file(demo, reference, fmt="csv-utf8", state=state)
    path = tmp_path / ("register.xlsx" if fmt == "xlsx" else "register.csv")
    written = write_registry_file(demo, path, fmt=fmt, state=state)
    table = read_table(path)
    expected = read_table(reference)
    assert written == len(demo.residents) == len(table)
    assert table.headers == list(REGISTRY_HEADERS)
    assert table.rows == expected.rows
    assert table.row_numbers == list(range(2, len(demo.residents) + 2))
    assert table.notes == []
    assert table.encoding == ("gb18030" if fmt == "csv-gbk" else None)
    assert expected.encoding == "utf-8-sig"
    first = table.rows[0]
    assert first[2] == demo.residents.id_number[0]
    assert first[3] == demo.residents.phone[0]
    # Quarantine start dates survive as ISO text (date cells in the workbook).
    starts = [r[10] for r in table.rows if r[10] is not None]
    assert starts and all(dt.date.fromisoformat(s) for s in starts)


def test_gbk_file_really_is_gbk(tmp_path: Path, demo: DemoCounty) -> None:
    path = tmp_path / "register.csv"
    write_registry_file(demo, path, fmt="csv-gbk")
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    text = data.decode("gbk")
    assert text.splitlines()[0] == ",".join(REGISTRY_HEADERS)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


# --- CSV ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_csv_encodings(tmp_path: Path, encoding: str, reported: str) -> None:
    text = f"{HEADER}\r\n{ROW}\r\n"
    table = read_table(write_bytes(tmp_path, "r.csv", text.encode(encoding)))
    assert table.encoding == reported
    assert table.headers == ["姓名", "身份证号", "现住地址"]
    assert table.rows == [["张三", "445321199001011234", "新兴县新城镇人民路1号"]]


def test_gb18030_only_characters(tmp_path: Path) -> None:
    # 𠮷 is outside GBK: only GB18030 (four-byte form) holds it.
    text = f"{HEADER}\n𠮷三,445321199001011234,新兴县\n"
    table = read_table(write_bytes(tmp_path, "r.csv", text.encode("gb18030")))
    assert table.rows[0][0] == "𠮷三"
    assert table.encoding == "gb18030"


def test_utf16_excel_unicode_text(tmp_path: Path) -> None:
    text = "姓名\t身份证号\n张三\t445321199001011234\n"
    table = read_table(write_bytes(tmp_path, "r.csv", text.encode("utf-16")))
    assert table.encoding == "utf-16"
    assert table.rows == [["张三", "445321199001011234"]]


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_obvious_delimiters(tmp_path: Path, delimiter: str) -> None:
    text = f"姓名{delimiter}现住地址{delimiter}备注\n张三{delimiter}人民路1号,2栋{delimiter}a\n"
    table = read_table(write_bytes(tmp_path, "r.csv", text.encode()))
    assert table.headers == ["姓名", "现住地址", "备注"]
    assert table.rows == [["张三", "人民路1号,2栋", "a"]]


def test_comma_with_commas_in_quoted_addresses(tmp_path: Path) -> None:
    text = '姓名,现住地址\n张三,"人民路1号,2栋;3室"\n李四,"建设路\t2号"\n'
    table = read_table(write_bytes(tmp_path, "r.csv", text.encode()))
    assert table.rows == [["张三", "人民路1号,2栋;3室"], ["李四", "建设路\t2号"]]


def test_blank_lines_stripping_and_excel_row_numbers(tmp_path: Path) -> None:
    text = "姓名, 备注 ,\n\n 张三 ,\u3000,\n,,\n李四,x,\n"
    table = read_table(write_bytes(tmp_path, "r.csv", text.encode()))
    assert table.headers == ["姓名", "备注"]
    assert table.rows == [["张三", None], ["李四", "x"]]
    # Excel shows the header in row 1, 张三 in row 3 (row 2 is blank) and 李四 in row 5.
    assert table.row_numbers == [3, 5]


def test_title_row_is_skipped_and_said(tmp_path: Path) -> None:
    text = "新城镇人员登记表,,\n姓名,身份证号,现住地址\n张三,1,a\n"
    table = read_table(write_bytes(tmp_path, "r.csv", text.encode()))
    assert table.headers == ["姓名", "身份证号", "现住地址"]
    assert table.row_numbers == [3]
    assert "title" in table.notes[0]


def test_short_and_long_rows_fit_the_header(tmp_path: Path) -> None:
    text = "a,b,c\n1\n1,2,3,4\n"
    table = read_table(write_bytes(tmp_path, "r.csv", text.encode()))
    assert table.rows == [["1", None, None], ["1", "2", "3"]]
    assert "right of the last header column" in table.notes[0]


PLAIN_CSV_TEXTS = [
    "姓名,身份证号\n张三,1\n",
    "姓名,身份证号\r\n张三,1\r\n李四,2",
    "姓名,身份证号\n\n 张三 ,\u3000\n,,\n李四,x,y\n\n",
    "姓名;地址\r\n张三;人民路1号,2栋\r\n",
    "姓名\t地址\n张三\t\t\n",
    "新城镇人员登记表,,\n姓名,身份证号,现住地址\n张三,1,a\n",
    "a,b,c\n1\n1,2,3,4\n",
    # Not plain: each goes to the csv module, which must give the same table.
    '姓名,地址\n张三,"人民路1号,2栋"\n',
    "姓名,地址\r张三,a\r",
    "姓名,地址\r\n张三,a\n李四,b\r\n",
    "姓名,地址\n张三,a\rb\n",
    "姓名,地址\n张三,a\x0bb\n",
    "姓名,地址\n张三,a\u2028b\n",
]


@pytest.mark.parametrize("text", PLAIN_CSV_TEXTS)
def test_csv_read_by_splitting_is_read_as_by_the_csv_module(
    tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_bytes(tmp_path, "r.csv", text.encode())
    fast = read_table(path)
    monkeypatch.setattr(geo.tabular, "_plain_csv_records", lambda text, delimiter: None)
    assert fast == read_table(path)


def test_oversized_field_is_refused_by_either_reader(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "r.csv", ("a,b\n1," + "x" * 200_000 + "\n").encode())
    with pytest.raises(InvalidInput, match="malformed CSV at row 2"):
        read_table(path)


# --- XLSX --------------------------------------------------------------------------------


def test_xlsx_cells_become_text(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path,
        [
            ["姓名", "手机号", "出生日期", "时间", "体温", "身份证号", "是否"],
            [
                "张三",
                13812345678,
                dt.date(2020, 2, 6),
                dt.datetime(2020, 2, 6, 8, 30),
                36.5,
                "44532119900101123X",
                True,
            ],
            [" 李四 ", 13812345678.0, dt.datetime(1990, 1, 1), None, 37, None, None],
        ],
    )
    table = read_table(path)
    assert table.encoding is None
    assert table.sheet == "Sheet"
    assert table.rows == [
        [
            "张三",
            "13812345678",
            "2020-02-06",
            "2020-02-06 08:30:00",
            "36.5",
            "44532119900101123X",
            "TRUE",
        ],
        ["李四", "13812345678", "1990-01-01", None, "37", None, None],
    ]
    assert table.row_numbers == [2, 3]
    assert table.notes == []


def test_xlsx_id_number_stored_as_number_is_reported(tmp_path: Path) -> None:
    path = write_workbook(tmp_path, [["姓名", "身份证号"], ["张三", 445321199001011234]])
    table = read_table(path)
    # What Excel shows: 15 significant digits, then zeros.
    assert table.rows[0][1] == "445321199001011000"
    assert len(table.notes) == 1
    assert "身份证号" in table.notes[0] and "15 significant digits" in table.notes[0]


def test_xlsx_register_sheet_is_chosen(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.title = "说明"
    first.append(["填表说明"])
    people = workbook.create_sheet("居民人员表")
    people.append(["姓名", "备注"])
    people.append(["张三", "x"])
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    table = read_table(path)
    assert table.sheet == "居民人员表"
    assert table.rows == [["张三", "x"]]
    assert "居民人员表" in table.notes[0]


def test_xlsx_blank_rows_and_late_start(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["B3"] = "姓名"
    sheet["C3"] = "备注"
    sheet["B6"] = "张三"
    path = tmp_path / "late.xlsx"
    workbook.save(path)
    table = read_table(path)
    assert table.headers == ["", "姓名", "备注"]
    assert table.rows == [[None, "张三", None]]
    assert table.row_numbers == [6]


# --- errors ------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"r\.csv: the file is empty"):
        read_table(write_bytes(tmp_path, "r.csv", b""))


def test_no_header_row(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no header row"):
        read_table(write_bytes(tmp_path, "r.csv", b"\r\n , ,\r\n\r\n"))


def test_no_header_row_in_workbook(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no header row"):
        read_table(write_workbook(tmp_path, []))


def test_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"registry\.txt: unsupported file type '\.txt'"):
        read_table(write_bytes(tmp_path, "registry.txt", b"a,b\n"))


def test_xls_says_save_as_xlsx(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"save as \.xlsx"):
        read_table(write_bytes(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0rest"))


def test_display_name_is_used(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^人员表\.csv: the file is empty"):
        read_table(write_bytes(tmp_path, "upload-123.csv", b""), display_name="人员表.csv")


def test_undecodable_bytes(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot be decoded as UTF-8 or GBK/GB18030"):
        read_table(write_bytes(tmp_path, "r.csv", b"a,b\n\xff\xfe\xff,1\n\x80"))


def test_bom_then_invalid_utf8_is_not_guessed_as_gbk(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + "姓名\n".encode() + "张三\n".encode("gbk")
    with pytest.raises(InvalidInput, match="cannot be decoded as UTF-8"):
        read_table(write_bytes(tmp_path, "r.csv", data))


def test_workbook_named_csv(tmp_path: Path) -> None:
    book = write_workbook(tmp_path, [["a"]])
    with pytest.raises(InvalidInput, match=r"this is an \.xlsx workbook"):
        read_table(write_bytes(tmp_path, "r.csv", book.read_bytes()))


def test_corrupt_workbook(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"broken\.xlsx: not a readable \.xlsx workbook"):
        read_table(write_bytes(tmp_path, "broken.xlsx", b"PK\x03\x04not really a zip"))


def test_too_many_rows(tmp_path: Path) -> None:
    text = "a\n" + "x\n" * 11
    path = write_bytes(tmp_path, "r.csv", text.encode())
    assert len(read_table(path, max_rows=11)) == 11
    with pytest.raises(LimitExceeded, match="more than 10 data rows"):
        read_table(path, max_rows=10)


def test_too_many_rows_in_workbook(tmp_path: Path) -> None:
    path = write_workbook(tmp_path, [["a"], *[["x"]] * 4])
    with pytest.raises(LimitExceeded):
        read_table(path, max_rows=3)


# --- writing -----------------------------------------------------------------------------


def test_gbk_refuses_what_it_cannot_encode(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with pytest.raises(InvalidInput, match=r"row 3, column '姓名': '𠮷' cannot be written in GBK"):
        write_table(path, headers=["姓名"], rows=[["张三"], ["𠮷"]], fmt="csv-gbk")
    assert not path.exists()


def test_xlsx_keeps_text_text(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    rows: list[list[str | dt.date | None]] = [
        ["=1+1", "0012", dt.date(2020, 2, 6), None],
        ["+8613812345678", "44532119900101123X", None, "x"],
    ]
    assert write_table(path, headers=["a", "b", "c", "d"], rows=rows, fmt="xlsx") == 2
    table: Table = read_table(path)
    assert table.rows == [
        ["=1+1", "0012", "2020-02-06", None],
        ["+8613812345678", "44532119900101123X", None, "x"],
    ]


def test_utf8_csv_has_bom_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_table(path, headers=["a", "b"], rows=[["x,y", '"q"'], [dt.date(2020, 1, 2), 5]], fmt="csv-utf8")  # fmt: skip
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_table(path).rows == [["x,y", '"q"'], ["2020-01-02", "5"]]
