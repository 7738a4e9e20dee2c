"""Read the register's exports as rows of text: legacy .xls (BIFF, read leniently), .xlsx
and CSV (`;` or `,`, UTF-8 or Windows-1252), the kind told by the first bytes.

Every cell comes out as text: a number stored by Excel as 5256305.0 reads "5256305", a date
cell reads "dd/mm/yyyy"; nothing is ever turned into a number, so codes keep their leading
zeros whenever the file kept them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from credmail.adapters.xlsx_guard import open_workbook
from credmail.service.directory_csv import (
    DELIMITERS,
    ENCODINGS,
    csv_rows,
    detect_delimiter,
    detect_encoding,
    text_stream,
)
from credmail.service.import_errors import DirectoryError, ImportRefused, unreadable
from credmail.service.import_files import ImportLimits, file_kind, refuse_kind
from credmail.service.ports import Sheet


class SpreadsheetFiles:
    """The SpreadsheetReader port: the file kind is told by its first bytes, not its name.
    Whatever a parser raises on a damaged file, at opening or while its rows stream, becomes
    one ImportRefused naming the file. An .xlsx streams within `limits` (xlsx_guard); an
    .xls is read whole by xlrd (the format stops at 65,536 rows), bounded by the file size
    the desk checked."""

    def __init__(self, limits: ImportLimits | None = None) -> None:
        self.limits = limits or ImportLimits()

    def open(self, name: str, data: bytes) -> Sheet:
        kind = file_kind(data)
        refusal = refuse_kind(kind)
        if refusal is not None:
            raise refusal.named(name)
        try:
            sheet = self._read(kind, name, data)
        except DirectoryError as exc:
            raise _named(exc, name) from None
        except Exception as exc:  # xlrd, openpyxl, zipfile and expat raise many kinds
            raise unreadable(kind, exc, name) from None
        return replace(sheet, rows=_guarded(kind, name, sheet.rows))

    def _read(self, kind: str, name: str, data: bytes) -> Sheet:
        if kind == "xls":
            return _xls(name, data)
        if kind == "xlsx":
            return _xlsx(name, open_workbook(data, self.limits.max_bytes, self.limits.max_rows))
        return _csv(name, data)


def _guarded(
    kind: str, name: str, rows: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    try:
        yield from rows
    except DirectoryError as exc:
        raise _named(exc, name) from None
    except Exception as exc:  # a damaged part found only when its rows are read
        raise unreadable(kind, exc, name) from None


def _named(exc: DirectoryError, name: str) -> DirectoryError:
    return exc.named(name) if isinstance(exc, ImportRefused) else exc


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

    # ClasseViva's OLE header makes xlrd report "Workbook corruption: seen[..]" although
    # the sheet is intact; read it anyway.
    book = xlrd.open_workbook(
        file_contents=data, ignore_workbook_corruption=True, on_demand=True, logfile=io.StringIO()
    )
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


def _xlsx(name: str, book: Any) -> Sheet:  # openpyxl is untyped
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
    delimiter = detect_delimiter(text_stream(data, encoding).readline())
    described = (
        f"CSV, fields separated by {DELIMITERS[delimiter]} ({delimiter!r}), "
        f"text in {ENCODINGS[encoding]}"
    )

    def rows() -> Iterator[tuple[int, list[str]]]:
        for start, fields in csv_rows(text_stream(data, encoding), delimiter):
            yield start, [field.strip() for field in fields]

    return Sheet(name, described, rows(), data.count(b"\n") + 1)
