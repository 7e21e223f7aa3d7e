"""Read (and write) registry spreadsheets the way grid offices have them.

Grid offices keep their resident registers (人员登记表) in Excel and send either
the ``.xlsx`` itself or a "CSV" saved from it. Chinese Excel saves CSV in the
system code page, GBK, unless "CSV UTF-8" is chosen, so both must be read; and
Excel turns long digit strings (ID numbers) into numbers that lose their last
digits. This module turns either kind of file into one plain ``Table`` of
stripped strings and says what it noticed on the way.

Promises of ``read_table``:

* cells are stripped strings, an empty cell is ``None``; blank rows are skipped;
* ``row_numbers`` are the rows as a person sees them in Excel (the header is
  row 1 when it is the first row, the first data row 2): a rejected row can be
  found in the original file by its number;
* every failure is an ``InvalidInput`` (``LimitExceeded`` for too many rows)
  whose message names the file and says how to fix it.

``write_table`` is the way back: UTF-8 (with BOM) or GBK CSV, or ``.xlsx``, with
text cells kept as text so ID and phone numbers survive a round trip.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from geo.errors import InvalidInput, LimitExceeded

SUPPORTED_SUFFIXES = (".csv", ".xlsx")
DEFAULT_MAX_ROWS = 2_000_000
# Sheets named like this are the register when a workbook has several sheets.
REGISTER_SHEET_WORDS = ("人员", "居民", "人口", "登记")
# Excel stores numbers as IEEE doubles and shows at most 15 significant digits:
# a whole number of 16 digits or more typed into a number cell has lost digits.
EXCEL_EXACT_DIGITS = 15
# A file may open with a title row or two ("新城镇人员登记表") above the header.
_MAX_TITLE_ROWS = 2
_SNIFF_CHARS = 16_384
_DELIMITERS = ",\t;"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"
_ZIP_MAGIC = b"PK\x03\x04"
# How Excel writes a long number into a CSV: 4.45321E+17.
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+")

Cell = str | None
WritableCell = str | dt.date | int | float | None
TableFormat = Literal["csv-utf8", "csv-gbk", "xlsx"]


@dataclass(frozen=True)
class Table:
    """A registry file as read: a header row and data rows of stripped strings.

    ``rows[i]`` has exactly ``len(headers)`` cells and was row ``row_numbers[i]``
    in the file. ``encoding`` is the text encoding of a CSV (``utf-8``,
    ``utf-8-sig``, ``gb18030``, ``utf-16``) and ``None`` for ``.xlsx``.
    ``notes`` are things worth telling the person who sent the file (a title row
    skipped, another sheet chosen, ID numbers stored as numbers).
    """

    name: str
    headers: list[str]
    rows: list[list[str | None]]
    encoding: str | None
    row_numbers: list[int]
    notes: list[str] = field(default_factory=list)
    sheet: str | None = None

    def __len__(self) -> int:
        return len(self.rows)


def read_table(
    path: Path, *, display_name: str | None = None, max_rows: int = DEFAULT_MAX_ROWS
) -> Table:
    """Read the header and rows of a ``.csv`` or ``.xlsx`` registry file.

    CSV: decoded strictly as UTF-8 (BOM or not), else as GB18030 (a superset of
    GBK, what Chinese Excel writes); comma-separated unless a tab or semicolon
    is obviously the delimiter. XLSX: the first sheet, or the one named like
    人员/居民 when there are several; dates become ``YYYY-MM-DD``, whole numbers
    their integer digits. More than ``max_rows`` data rows is ``LimitExceeded``.
    """
    name = display_name or path.name
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InvalidInput(
            f"{name}: old Excel .xls files are not read; open it in Excel or WPS and"
            " save as .xlsx (or as CSV UTF-8)"
        )
    if suffix not in SUPPORTED_SUFFIXES:
        raise InvalidInput(
            f"{name}: unsupported file type {suffix or '(no extension)'!r}; give a .csv or"
            " .xlsx file"
        )
    if not path.is_file():
        raise InvalidInput(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{name}: the file is empty")
    if suffix == ".csv":
        return _read_csv(path, name=name, max_rows=max_rows)
    return _read_xlsx(path, name=name, max_rows=max_rows)


def write_table(
    path: Path,
    *,
    headers: Sequence[str],
    rows: Iterable[Sequence[WritableCell]],
    fmt: TableFormat,
    sheet_title: str = "人员",
) -> int:
    """Write ``headers`` and ``rows`` to ``path``; returns the number of data rows.

    ``csv-utf8`` is UTF-8 with a BOM (so Excel opens it as UTF-8), ``csv-gbk``
    plain GBK (what Chinese Excel opens by default: a value GBK cannot encode is
    an ``InvalidInput`` naming its row and column, and no file is left behind);
    ``xlsx`` keeps every string a text cell (an ID number stays 18 characters,
    a value starting with ``=`` is not turned into a formula) and writes dates
    as date cells. In CSV, dates are written as ``YYYY-MM-DD``.
    """
    try:
        if fmt == "xlsx":
            return _write_xlsx(path, headers=headers, rows=rows, sheet_title=sheet_title)
        if fmt in ("csv-utf8", "csv-gbk"):
            return _write_csv(path, headers=headers, rows=rows, fmt=fmt)
    except InvalidInput:
        path.unlink(missing_ok=True)
        raise
    raise InvalidInput(f"unknown table format {fmt!r}; use csv-utf8, csv-gbk or xlsx")


# --- CSV -------------------------------------------------------------------------------


def _read_csv(path: Path, *, name: str, max_rows: int) -> Table:
    data = path.read_bytes()
    _refuse_binary(data, name=name)
    text, encoding = _decode(data, name=name)
    delimiter = _delimiter(text)
    records = _plain_csv_records(text, delimiter=delimiter)
    if records is None:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        records = _numbered_csv_records(reader, name=name)
    return _assemble(records, name=name, encoding=encoding, max_rows=max_rows, notes=[])


def _plain_csv_records(text: str, *, delimiter: str) -> Iterator[_Record] | None:
    """The records of a CSV without quotes, read by splitting its lines (twice
    as fast as the csv module, with the same records); ``None`` for a CSV with
    quotes, NUL, a carriage return not followed by a line feed (a line end
    for the csv module), mixed line ends or an oversized field."""
    if '"' in text or "\x00" in text:
        return None
    if "\r" in text:
        crlf = text.count("\r\n")
        if text.count("\r") != crlf or text.count("\n") != crlf:
            return None
        lines = text.split("\r\n")
    else:
        lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the line end of the last line
    if max(map(len, lines), default=0) > csv.field_size_limit():
        return None  # the csv module refuses such a field: let it say so
    return (
        (number, [value.strip() or None for value in line.split(delimiter)])
        for number, line in enumerate(lines, start=1)
    )


def _refuse_binary(data: bytes, *, name: str) -> None:
    """A workbook renamed to .csv gets a message that says what it really is."""
    if data.startswith(_XLS_MAGIC):
        raise InvalidInput(f"{name}: this is an old Excel .xls workbook, not CSV; save it as .xlsx")
    if data.startswith(_ZIP_MAGIC):
        raise InvalidInput(f"{name}: this is an .xlsx workbook, not CSV; name it .xlsx")


def _decode(data: bytes, *, name: str) -> tuple[str, str]:
    """Text and the encoding used: UTF-16 by BOM, UTF-8 strictly, else GB18030.

    GB18030 is a superset of GBK, so it also reads GBK exports. A file with a
    UTF-8 BOM that is not valid UTF-8 is an error, not a GBK file.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise _undecodable(name, exc, tried="UTF-16") from None
    try:
        text = data.decode("utf-8-sig")
        return text, "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    except UnicodeDecodeError as exc:
        if data.startswith(codecs.BOM_UTF8):
            raise _undecodable(name, exc, tried="UTF-8") from None
    if b"\x00" in data:
        raise InvalidInput(f"{name}: holds NUL bytes: not a text CSV file")
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError as exc:
        raise _undecodable(name, exc, tried="UTF-8 or GBK/GB18030") from None


def _undecodable(name: str, exc: UnicodeDecodeError, *, tried: str) -> InvalidInput:
    return InvalidInput(
        f"{name}: cannot be decoded as {tried} (invalid bytes at offset {exc.start}); save it"
        " from Excel as 'CSV UTF-8' or as .xlsx"
    )


def _delimiter(text: str) -> str:
    """Comma, unless the sniffer finds a tab or semicolon that the header line uses.

    Addresses often hold commas, so the sniffer alone is not trusted: its choice
    must occur in the first non-blank line; else the most frequent candidate
    there wins, and comma when there is none.
    """
    sample = text[:_SNIFF_CHARS]
    first = next((line for line in sample.splitlines() if line.strip()), "")
    try:
        sniffed: str | None = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    if sniffed and sniffed in first:
        return sniffed
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _numbered_csv_records(reader: Iterator[list[str]], *, name: str) -> Iterator[_Record]:
    """(Excel row number, cells): each CSV record is one Excel row, blank ones too."""
    number = 0
    try:
        for record in reader:
            number += 1
            # _clean, inline: a million rows of a dozen cells make this the hot loop.
            yield number, [value.strip() or None for value in record]
    except csv.Error as exc:
        raise InvalidInput(f"{name}: malformed CSV at row {number + 1}: {exc}") from None


def _clean(value: str) -> str | None:
    text = value.strip()
    return text or None


def _write_csv(
    path: Path,
    *,
    headers: Sequence[str],
    rows: Iterable[Sequence[WritableCell]],
    fmt: TableFormat,
) -> int:
    encoding = "utf-8-sig" if fmt == "csv-utf8" else "gbk"
    count = 0
    with path.open("w", encoding=encoding, errors="strict", newline="") as handle:
        writer = csv.writer(handle)
        _write_csv_row(writer, cells=list(headers), row=1, headers=headers)
        for cells in rows:
            count += 1
            texts = [_csv_text(c) for c in cells]
            _write_csv_row(writer, cells=texts, row=count + 1, headers=headers)
    return count


def _write_csv_row(writer: Any, *, cells: list[str], row: int, headers: Sequence[str]) -> None:
    """One row; a value the encoding cannot hold is named by row and column."""
    try:
        writer.writerow(cells)
    except UnicodeEncodeError:
        column, value = _unencodable_cell(cells, headers=headers)
        raise InvalidInput(
            f"row {row}, column {column!r}: {value!r} cannot be written in GBK; use CSV UTF-8"
            " or .xlsx"
        ) from None


def _unencodable_cell(cells: list[str], *, headers: Sequence[str]) -> tuple[str, str]:
    for index, value in enumerate(cells):
        try:
            value.encode("gbk")
        except UnicodeEncodeError:
            column = headers[index] if index < len(headers) else f"#{index + 1}"
            return column, value
    return "?", ""


def _csv_text(value: WritableCell) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# --- XLSX ------------------------------------------------------------------------------


def _read_xlsx(path: Path, *, name: str, max_rows: int) -> Table:
    # Imported here: openpyxl is only needed by callers that read workbooks.
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise InvalidInput(f"{name}: not a readable .xlsx workbook ({exc})") from None
    try:
        sheet, notes = _register_sheet(workbook.worksheets, name=name)
        lossy: dict[int, list[int]] = {}
        records = _numbered_xlsx_records(sheet, lossy=lossy)
        table = _assemble(
            records, name=name, encoding=None, max_rows=max_rows, notes=notes, sheet=sheet.title
        )
    finally:
        workbook.close()
    table.notes.extend(_lossy_notes(lossy, headers=table.headers))
    return table


def _register_sheet(sheets: Sequence[Any], *, name: str) -> tuple[Any, list[str]]:
    """The first sheet, or the first one named like a register when there are several."""
    if not sheets:
        raise InvalidInput(f"{name}: the workbook has no worksheet")
    if len(sheets) == 1:
        return sheets[0], []
    for sheet in sheets:
        if any(word in str(sheet.title) for word in REGISTER_SHEET_WORDS):
            titles = ", ".join(str(s.title) for s in sheets)
            return sheet, [f"read sheet {sheet.title!r} of {len(sheets)} ({titles})"]
    titles = ", ".join(str(s.title) for s in sheets)
    return sheets[0], [f"read the first sheet {sheets[0].title!r} of {len(sheets)} ({titles})"]


def _numbered_xlsx_records(sheet: Any, *, lossy: dict[int, list[int]]) -> Iterator[_Record]:
    """(Excel row number, cells); ``lossy`` collects column → rows of too-long numbers."""
    for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
        cells: list[str | None] = []
        for column, value in enumerate(values):
            if _lost_digits(value):
                lossy.setdefault(column, []).append(number)
            cells.append(_xlsx_text(value))
        yield number, cells


def _lost_digits(value: object) -> bool:
    """A float too large to hold all its digits: Excel kept only 15 of them."""
    return (
        isinstance(value, float) and math.isfinite(value) and abs(value) >= 10**EXCEL_EXACT_DIGITS
    )


def _xlsx_text(value: object) -> str | None:
    """A cell as the text a person sees: ISO dates, whole numbers without ``.0``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    return _clean(str(value))


def _number_text(value: float) -> str:
    """Whole numbers as integer digits, others as their shortest decimal form.

    Numbers of 16 or more digits are shown as Excel shows them, rounded to 15
    significant digits: 4.45321199001011E+17 becomes ``445321199001011000``
    (and not the binary ``…1010944``), which is what the sender sees.
    """
    if not math.isfinite(value):
        return repr(value)
    if abs(value) >= 10**EXCEL_EXACT_DIGITS:
        return format(Decimal(f"{value:.{EXCEL_EXACT_DIGITS}g}"), "f")
    if value.is_integer():
        return str(int(value))
    return repr(value)


def _lossy_notes(lossy: dict[int, list[int]], *, headers: list[str]) -> list[str]:
    notes = []
    for column, rows in sorted(lossy.items()):
        header = headers[column] if column < len(headers) else f"#{column + 1}"
        shown = ", ".join(str(r) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
        notes.append(
            f"column {header!r}: {len(rows)} cell(s) (rows {shown}) hold numbers of 16 or more"
            f" digits; Excel keeps only {EXCEL_EXACT_DIGITS} significant digits, so the last"
            " digits are lost. ID numbers must be stored as text: format the column as 文本"
            " (Text) and enter them again"
        )
    return notes


def _write_xlsx(
    path: Path,
    *,
    headers: Sequence[str],
    rows: Iterable[Sequence[WritableCell]],
    sheet_title: str,
) -> int:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils.exceptions import IllegalCharacterError

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet(title=sheet_title)
    count = 0
    try:
        sheet.append(list(headers))
        for cells in rows:
            count += 1
            sheet.append([_xlsx_cell(sheet, value=c, cell_type=WriteOnlyCell) for c in cells])
    except IllegalCharacterError:
        raise InvalidInput(
            f"row {count + 1}: a value holds a control character that .xlsx cannot store"
        ) from None
    workbook.save(path)
    return count


def _xlsx_cell(sheet: Any, *, value: WritableCell, cell_type: Any) -> Any:
    """Strings starting with ``=`` stay text: openpyxl would write a formula."""
    if isinstance(value, str) and value.startswith("="):
        cell = cell_type(sheet, value=value)
        cell.data_type = "s"
        return cell
    return value


# --- shared ----------------------------------------------------------------------------

_Record = tuple[int, list[str | None]]


def _assemble(
    records: Iterator[_Record],
    *,
    name: str,
    encoding: str | None,
    max_rows: int,
    notes: list[str],
    sheet: str | None = None,
) -> Table:
    """Header row, then the data rows padded or cut to the header's width."""
    # Cells are None or non-empty strings: ``any(cells)`` is "has a value".
    nonblank = ((n, cells) for n, cells in records if any(cells))
    header_cells, pending = _find_header(nonblank, notes=notes)
    if header_cells is None:
        raise InvalidInput(f"{name}: no header row: the file holds no values")
    width = _width(header_cells)
    headers = [c or "" for c in header_cells[:width]]
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    overflow: list[int] = []
    padding: list[str | None] = [None] * width
    for number, cells in _chain(pending, nonblank):
        if len(cells) != width:  # else the row is already as wide as the header
            if any(cells[width:]):
                overflow.append(number)
            cells = (cells + padding)[:width]
        rows.append(cells)
        numbers.append(number)
        if len(rows) > max_rows:
            raise LimitExceeded(f"{name}: more than {max_rows:,} data rows; split the file")
    if overflow:
        notes.append(
            f"{len(overflow)} row(s) hold values right of the last header column (first: row"
            f" {overflow[0]}); they were ignored"
        )
    return Table(
        name=name,
        headers=headers,
        rows=rows,
        encoding=encoding,
        row_numbers=numbers,
        notes=notes,
        sheet=sheet,
    )


def _find_header(
    records: Iterator[_Record], *, notes: list[str]
) -> tuple[list[str | None] | None, list[_Record]]:
    """The header row; up to two one-cell title rows above a wider row are skipped.

    Returns the header's cells (``None`` for an empty file) and the records
    read ahead that are data.
    """
    seen: list[_Record] = []
    for record in records:
        seen.append(record)
        if _filled(record[1]) > 1 or len(seen) > _MAX_TITLE_ROWS:
            break
    if not seen:
        return None, []
    wide = next((i for i, (_, cells) in enumerate(seen) if _filled(cells) > 1), None)
    index = 0 if wide is None or wide > _MAX_TITLE_ROWS else wide
    for number, cells in seen[:index]:
        title = next(c for c in cells if c is not None)
        notes.append(f"row {number} ({title!r}) looks like a title and was skipped")
    return seen[index][1], seen[index + 1 :]


def _filled(cells: list[str | None]) -> int:
    return sum(1 for c in cells if c is not None)


def _width(cells: list[str | None]) -> int:
    """Columns up to the last non-empty header cell (Excel pads rows with blanks)."""
    return max((i + 1 for i, c in enumerate(cells) if c is not None), default=0)


def _chain(first: list[_Record], rest: Iterator[_Record]) -> Iterator[_Record]:
    yield from first
    yield from rest


def looks_like_number_text(value: str) -> bool:
    """True for text like ``4.45321E+17``: a long number Excel wrote in scientific form."""
    return bool(_SCIENTIFIC.fullmatch(value.strip()))
