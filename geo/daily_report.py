"""The daily report (一排查、一汇总、一上报) as an Excel workbook.

Pure: takes the report's figures (``DailyReport``, made in ``db.reports``)
and returns the bytes of an .xlsx a grid office hands up: a title, the date
and round, a two-line header (Chinese, then English), one row per area at
each level — parents before their children, names indented by depth and
rows grouped (Excel outline) under their parent — and a total row.

Aggregates only: areas' codes and names and counts; never a person.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

REPORT_TITLE = "疫情防控网格化排查日报"

LEVEL_NAMES: dict[str, str] = {
    "city": "市",
    "county": "县(区)",
    "township": "镇(街道)",
    "community": "社区(村)",
    "grid": "网格",
    "microgrid": "微网格",
}


@dataclass(frozen=True)
class ReportRow:
    """One area's figures on the report's date (counts; coverage in %)."""

    code: str
    name: str
    level: str
    parent_code: str | None
    depth: int  # 0 for the first level under the report's area
    households: int  # every household of the area
    round_households: int  # households of the round in the area (coverage's denominator)
    complete: int
    incomplete: int
    unvisited: int
    quarantined: int
    overdue_checks: int
    fever: int
    active_cases: int
    flagged_passages: int

    @property
    def visited(self) -> int:
        return self.complete + self.incomplete

    @property
    def coverage_pct(self) -> float | None:
        """Complete ÷ households of the round, in %; None without households in the round."""
        if not self.round_households:
            return None
        return 100.0 * self.complete / self.round_households


@dataclass(frozen=True)
class DailyReport:
    within: str | None
    within_name: str
    as_of: dt.date
    round_name: str | None
    round_dates: tuple[dt.date, dt.date] | None
    rows: tuple[ReportRow, ...]  # depth-first: each parent before its children
    total: ReportRow
    unlocated_households: int


# (Chinese header, English header, attribute, width, kind)
COLUMNS: tuple[tuple[str, str, str, float, str], ...] = (
    ("序号", "No.", "_index", 6, "int"),
    ("层级", "Level", "_level", 10, "text"),
    ("编码", "Code", "code", 16, "text"),
    ("名称", "Area", "name", 30, "text"),
    ("总户数", "Households", "households", 10, "int"),
    ("本轮应排查户数", "Households in round", "round_households", 12, "int"),
    ("已走访户数", "Visited", "visited", 10, "int"),
    ("已完成户数", "Complete", "complete", 10, "int"),
    ("未完成户数", "Incomplete", "incomplete", 10, "int"),
    ("未走访户数", "Unvisited", "unvisited", 10, "int"),
    ("排查覆盖率", "Coverage", "_coverage", 10, "pct"),
    ("隔离人数", "Quarantined", "quarantined", 10, "int"),
    ("漏测体温人数", "Overdue checks", "overdue_checks", 11, "int"),
    ("发热人数", "Fever", "fever", 9, "int"),
    ("现有病例", "Active cases", "active_cases", 9, "int"),
    ("卡口预警人次", "Flagged passages", "flagged_passages", 11, "int"),
)
HEADER_ROWS = (4, 5)
FIRST_DATA_ROW = 6

_THIN = Side(style="thin", color="808080")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_TOTAL_FILL = PatternFill("solid", fgColor="FFF2CC")
_LEVEL_FILLS = ("F2F2F2", "FFFFFF", "FFFFFF", "FFFFFF")


def report_filename(report: DailyReport) -> tuple[str, str]:
    """(an ASCII fallback name, the Chinese name) of the workbook file."""
    day = report.as_of.isoformat()
    ascii_name = f"wangge-daily-{report.within or 'all'}-{day}.xlsx"
    return ascii_name, f"{report.within_name}{REPORT_TITLE}_{day}.xlsx"


def _cell_value(row: ReportRow, attribute: str, index: int | None) -> object:
    if attribute == "_index":
        return index
    if attribute == "_level":
        return LEVEL_NAMES.get(row.level, row.level)
    if attribute == "_coverage":
        pct = row.coverage_pct
        return None if pct is None else pct / 100.0
    return getattr(row, attribute)


def daily_report_xlsx(report: DailyReport) -> bytes:
    """The report as .xlsx bytes (one sheet, 日报)."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "日报"
    last_col = get_column_letter(len(COLUMNS))

    sheet["A1"] = f"{report.within_name}{REPORT_TITLE}"
    sheet.merge_cells(f"A1:{last_col}1")
    sheet["A1"].font = Font(name="SimSun", size=16, bold=True)
    sheet["A1"].alignment = Alignment(horizontal="center", vertical="center")
    sheet.row_dimensions[1].height = 30

    round_text = "无排查轮次 No screening round"
    if report.round_name is not None and report.round_dates is not None:
        start, end = report.round_dates
        round_text = (
            f"排查轮次 Round：{report.round_name}（{start.isoformat()} 至 {end.isoformat()}）"
        )
    sheet["A2"] = (
        f"统计日期 Date：{report.as_of.isoformat()}    {round_text}    "
        f"统计范围 Area：{report.within_name}（{report.within or '全部'}）"
    )
    sheet.merge_cells(f"A2:{last_col}2")
    sheet["A3"] = "单位：户、人、人次    Units: households, people, passages"
    sheet.merge_cells(f"A3:{last_col}3")
    for ref in ("A2", "A3"):
        sheet[ref].font = Font(size=10)

    for col, (zh, en, _attr, width, _kind) in enumerate(COLUMNS, start=1):
        for row_number, label in zip(HEADER_ROWS, (zh, en), strict=True):
            cell = sheet.cell(row=row_number, column=col, value=label)
            cell.font = Font(bold=row_number == HEADER_ROWS[0], size=10 if zh == label else 9)
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.fill = _HEADER_FILL
            cell.border = _BORDER
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.row_dimensions[HEADER_ROWS[0]].height = 30

    row_number = FIRST_DATA_ROW
    for index, area in enumerate(report.rows, start=1):
        _write_row(sheet, row_number, area, index=index)
        if area.depth:
            sheet.row_dimensions[row_number].outline_level = min(area.depth, 7)
        row_number += 1
    _write_row(sheet, row_number, report.total, index=None, total=True)
    total_row = row_number

    notes = (
        "说明：排查覆盖率 = 已完成户数 ÷ 本轮应排查户数；上级数字为下级之和。"
        "Coverage = complete ÷ households in the round; each parent is the sum of its children.",
        f"未定位户数 Households not located in a micro-grid (not in the rows above)："
        f"{report.unlocated_households}",
        "本表仅含汇总数字，不含个人信息。Aggregates only: no personal data.",
        "填报单位：                    填报人：                    审核人：                    "
        "联系电话：",
    )
    for offset, note in enumerate(notes, start=2):
        sheet.cell(row=total_row + offset, column=1, value=note).font = Font(size=9)
        sheet.merge_cells(
            start_row=total_row + offset, start_column=1,
            end_row=total_row + offset, end_column=len(COLUMNS),
        )  # fmt: skip

    sheet.freeze_panes = f"E{FIRST_DATA_ROW}"
    sheet.sheet_properties.outlinePr.summaryBelow = False
    sheet.auto_filter.ref = f"A{HEADER_ROWS[1]}:{last_col}{total_row - 1}"
    sheet.print_title_rows = f"{HEADER_ROWS[0]}:{HEADER_ROWS[1]}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.oddFooter.center.text = "第 &P 页，共 &N 页"

    workbook.properties.title = f"{report.within_name}{REPORT_TITLE} {report.as_of.isoformat()}"
    workbook.properties.creator = "Wangge"
    # A fixed timestamp: the same figures give the same workbook.
    stamp = dt.datetime.combine(report.as_of, dt.time(0, 0))
    workbook.properties.created = stamp
    workbook.properties.modified = stamp
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _write_row(
    sheet: object, row_number: int, area: ReportRow, *, index: int | None, total: bool = False
) -> None:
    for col, (_zh, _en, attribute, _width, kind) in enumerate(COLUMNS, start=1):
        value = _cell_value(area, attribute, index)
        cell = sheet.cell(row=row_number, column=col, value=value)  # type: ignore[attr-defined]
        cell.border = _BORDER
        if kind == "int":
            cell.number_format = "#,##0"
        elif kind == "pct":
            cell.number_format = "0.0%"
            if value is None:
                cell.value = "—"
                cell.alignment = Alignment(horizontal="center")
        if attribute == "name":
            cell.alignment = Alignment(indent=0 if total else area.depth)
        if total:
            cell.font = Font(bold=True)
            cell.fill = _TOTAL_FILL
        elif area.depth == 0:
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor=_LEVEL_FILLS[0])
    if total:
        sheet.cell(row=row_number, column=1, value="合计")  # type: ignore[attr-defined]
        sheet.cell(row=row_number, column=2, value="Total")  # type: ignore[attr-defined]
