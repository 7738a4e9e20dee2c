"""Read the register's exports as rows of text: legacy .xls (BIFF, read leniently), .xlsx
and CSV (`;` or `,`, UTF-8 or Windows-1252).

Every cell comes out as text: a number stored by Excel as 5256305.0 reads "5256305", a date
cell reads "dd/mm/yyyy"; nothing is ever turned into a number, so codes keep their leading
zeros whenever the file kept them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

from credmail.service.directory_csv import (
    DELIMITERS,
    ENCODINGS,
    DirectoryError,
    detect_delimiter,
    detect_encoding,
)
from credmail.service.ports import Sheet

XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound document
XLSX_MAGIC = b"PK\x03\x04"


class SpreadsheetFiles:
    """The SpreadsheetReader port: the file kind is told by its first bytes, not its name."""

    def open(self, name: str, data: bytes) -> Sheet:
        if data.startswith(XLS_MAGIC):
            return _xls(name, data)
        if data.startswith(XLSX_MAGIC):
            return _xlsx(name, data)
        if PurePath(name).suffix.lower() in {".xls", ".xlsx"} and data.lstrip().startswith(b"<"):
            raise DirectoryError([f"{name}: an HTML page saved as a spreadsheet; save it as .xlsx"])
        return _csv(name, data)


def cell_text(value: Any) -> str:
    """One cell as the secretariat sees it (never a float's '.0', dates as dd/mm/yyyy)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "VERO" if value else "FALSO"
    if isinstance(value, datetime):
        if (value.hour, value.minute, value.second) == (0, 0, 0):
            return value.strftime("%d/%m/%Y")
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def _xls(name: str, data: bytes) -> Sheet:
    import xlrd

    try:
        # ClasseViva's OLE header makes xlrd report "Workbook corruption: seen[..]" although
        # the sheet is intact; read it anyway.
        book = xlrd.open_workbook(
            file_contents=data,
            ignore_workbook_corruption=True,
            on_demand=True,
            logfile=io.StringIO(),
        )
    except Exception as exc:  # xlrd raises bare XLRDError/CompDocError/struct errors
        raise DirectoryError([f"{name}: not a readable .xls file ({exc})"]) from None
    sheet = book.sheet_by_index(0)

    def text(row: int, col: int) -> str:
        cell = sheet.cell(row, col)
        if cell.ctype == xlrd.XL_CELL_DATE:
            try:
                return cell_text(xlrd.xldate_as_datetime(cell.value, book.datemode))
            except (ValueError, OverflowError):
                return cell_text(cell.value)
        if cell.ctype == xlrd.XL_CELL_BOOLEAN:
            return cell_text(bool(cell.value))
        if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
            return ""
        return cell_text(cell.value)

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in range(sheet.nrows):
                yield row + 1, [text(row, col) for col in range(sheet.row_len(row))]
        finally:
            book.release_resources()

    return Sheet(name, f"Excel 97-2003 (.xls), sheet {sheet.name!r}", rows(), sheet.nrows)


def _xlsx(name: str, data: bytes) -> Sheet:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zipfile/openpyxl raise many kinds
        raise DirectoryError([f"{name}: not a readable .xlsx file ({exc})"]) from None
    sheet = book.worksheets[0]

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield line, [cell_text(value) for value in values]
        finally:
            book.close()

    total = sheet.max_row if isinstance(sheet.max_row, int) else None
    return Sheet(name, f"Excel (.xlsx), sheet {sheet.title!r}", rows(), total)


def _csv(name: str, data: bytes) -> Sheet:
    encoding = detect_encoding(data)
    text = data.decode(encoding)
    delimiter = detect_delimiter(text)
    described = (
        f"CSV, fields separated by {DELIMITERS[delimiter]} ({delimiter!r}), "
        f"text in {ENCODINGS[encoding]}"
    )

    def rows() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        line = 0
        for fields in reader:
            start, line = line + 1, reader.line_num
            yield start, [field.strip() for field in fields]

    return Sheet(name, described, rows(), text.count("\n") + 1)
