"""The files a directory import reads, looked at before and around any parser: their kind
told by their first bytes (never by their name, so a named file, standard input and a console
upload read alike), the limits on size and rows, and the one line that refuses a file.

The CLI names standard input STANDARD_INPUT; every refusal is an ImportRefused naming the
file, in English for the terminal and in Italian for the console.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from credmail.service.import_errors import ImportRefused, italian_number, too_many_rows
from credmail.service.ports import Sheet

STANDARD_INPUT = "standard input"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound document (BIFF .xls)
ZIP_MAGIC = b"PK\x03\x04"  # .xlsx (Office Open XML), and .ods
MAX_COLUMNS = 1000  # the register's exports have tens; .xls itself stops at 256
MIB = 1024 * 1024

_MARKUP = re.compile(rb"\s*(<\?xml|<!doctype|<html|<table|<head|<body)", re.IGNORECASE)


def file_kind(data: bytes) -> str:
    """'xls', 'xlsx', 'ods', 'markup' (an HTML or XML page saved with a spreadsheet's name)
    or 'text' (CSV, or nothing readable: the text reader says which)."""
    if data.startswith(XLS_MAGIC):
        return "xls"
    if data.startswith(ZIP_MAGIC):
        return "ods" if b"application/vnd.oasis.opendocument" in data[:200] else "xlsx"
    if _MARKUP.match(data.removeprefix(b"\xef\xbb\xbf")[:200]):
        return "markup"
    return "text"


def refuse_kind(kind: str) -> ImportRefused | None:
    """The refusal of a kind no reader reads (None for .xls, .xlsx and text)."""
    if kind == "ods":
        return ImportRefused(
            "an OpenDocument spreadsheet (.ods); save it as .xlsx",
            "è un foglio OpenDocument (.ods): salvarlo come Excel (.xlsx) e riprovare",
        )
    if kind == "markup":
        return ImportRefused(
            "an HTML or XML page saved as a spreadsheet; save it as .xlsx",
            "è una pagina web salvata come foglio di calcolo: aprirla in Excel, salvarla "
            "come Excel (.xlsx) e riprovare",
        )
    return None


@dataclass(frozen=True)
class ImportLimits:
    """How much one imported file may hold: bytes (checked before any parser runs) and rows
    (counted as they stream). The defaults fit the largest Italian schools (about 2,000
    pupils and 3,500 guardians) several times over."""

    max_bytes: int = 10 * MIB
    max_rows: int = 20_000

    def check_size(self, size: int, file: str | None = None) -> None:
        """Refuse a file of more than `max_bytes` (before any parser sees it)."""
        if size > self.max_bytes:
            english, italian = _size(self.max_bytes)
            raise ImportRefused(
                f"larger than the {english} an import reads (directory.max_import_bytes)",
                f"il file supera i {italian} ammessi per un'importazione",
                file,
            )

    def bounded(self, sheet: Sheet) -> Sheet:
        """The sheet whose rows stop with ImportRefused past `max_rows` rows or MAX_COLUMNS
        columns; trailing empty cells are dropped as the rows stream."""
        return replace(sheet, rows=self._rows(sheet.name, sheet.rows))

    def _rows(
        self, file: str, rows: Iterator[tuple[int, list[str]]]
    ) -> Iterator[tuple[int, list[str]]]:
        for count, (line, cells) in enumerate(rows, start=1):
            if count > self.max_rows:
                raise too_many_rows(self.max_rows, file)
            while cells and not cells[-1]:
                cells.pop()
            if len(cells) > MAX_COLUMNS:
                raise ImportRefused(
                    f"line {line}: more than {MAX_COLUMNS:,} columns",
                    f"la riga {line} ha più di {italian_number(MAX_COLUMNS)} colonne",
                    file,
                )
            yield line, cells


def _size(size: int) -> tuple[str, str]:
    """10485760 -> ('10 MiB', '10 MB'); 65536 -> ('64 KiB', '64 KB')."""
    unit, scale = ("M", MIB) if size >= MIB else ("K", 1024)
    number = f"{size / scale:.1f}".removesuffix(".0")
    return f"{number} {unit}iB", f"{number.replace('.', ',')} {unit}B"
