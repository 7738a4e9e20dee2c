"""The one CSV writer behind every CSV credmail writes (the console's activity log, the
register import's report, the campaign's plan and report, the sample directory).

The cells come from mail, the register's files and staff: a cell that a spreadsheet would
run as a formula (`=HYPERLINK(...)`, `=CMD|' /C calc'!A0`, `@SUM(1)`) is neutralised as
OWASP's CSV-injection guidance says, by a leading single quote when it starts with `=`, `+`,
`-`, `@`, a tab or a carriage return (also a line feed, NUL and the full-width `＝＋－＠`
some spreadsheets read alike). A plain number (`-1`, `+39`, `2,5`: an optional sign, digits,
at most one decimal separator) is kept as it is: a spreadsheet reads it as that number and
nothing else can hide in it, while a quote would turn it into text. Everything else (dates,
addresses, names, phone numbers without a sign) is written untouched.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "＝", "＋", "－", "＠")
SEPARATORS = (",", ";")
PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?\Z")


def safe_cell(value: object) -> str:
    """The cell's text, with a leading quote when a spreadsheet would read a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.match(text):
        return "'" + text
    return text


class CsvWriter:
    """csv.writer's rows, every cell through `safe_cell`."""

    def __init__(self, stream: TextIO, *, delimiter: str = ",", lineterminator: str = "\r\n"):
        self._writer = csv.writer(stream, delimiter=delimiter, lineterminator=lineterminator)
        # A row with a cell holding either separator is written fully quoted: a spreadsheet
        # that splits on the other one (`;` in an Italian Excel reading a comma file) must
        # not find a second cell, and a formula, inside it ("x;=cmd|' /C calc'!A0").
        self._quoted = csv.writer(
            stream, delimiter=delimiter, lineterminator=lineterminator, quoting=csv.QUOTE_ALL
        )

    def writerow(self, cells: Iterable[object]) -> None:
        row = [safe_cell(cell) for cell in cells]
        risky = any(sep in cell for cell in row for sep in SEPARATORS)
        (self._quoted if risky else self._writer).writerow(row)

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def spreadsheet_writer(stream: TextIO) -> CsvWriter:
    """The dialect of the files the secretariat opens in Excel in Italy: `;` between cells
    (the stream is opened as UTF-8 with a BOM, `newline=""`)."""
    return CsvWriter(stream, delimiter=";")
