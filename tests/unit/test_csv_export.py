"""The one CSV writer: formula cells neutralised (OWASP), plain numbers and ordinary values
left readable."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from credmail.samples import directory_csv
from credmail.service.csv_export import CsvWriter, safe_cell, spreadsheet_writer

HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "=CMD|' /C calc'!A0",
    "@SUM(1)",
    "+1+1",
    "-1+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "+39 333 1234567",  # not a plain number: Excel would try a formula
    "-",
    "＝1+1",  # full-width, as some spreadsheets read it
]
ORDINARY = [
    "-1",  # plain numbers: read as the number, nothing can hide in them
    "+1",
    "-2,5",
    "3.5",
    "3331234567",
    "2026-09-01",
    "2026-09-01 08:00",
    "mario.rossi@example.org",
    "Via Roma 1",
    "De Luca",
    "",
    " =1",  # a leading space: text in every spreadsheet
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(value: str) -> None:
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ORDINARY)
def test_ordinary_values_and_plain_numbers_are_written_as_they_are(value: str) -> None:
    assert safe_cell(value) == value


def test_non_text_cells() -> None:
    assert [safe_cell(v) for v in (None, 3, -1, 2.5, date(2026, 9, 1))] == [
        "",
        "3",
        "-1",
        "2.5",
        "2026-09-01",
    ]


def test_the_writer_neutralises_every_cell_and_quotes_as_csv_does() -> None:
    out = io.StringIO(newline="")
    spreadsheet_writer(out).writerows([["a", "=1;2"], ['@x"y', "-1"]])
    assert list(csv.reader(io.StringIO(out.getvalue()), delimiter=";")) == [
        ["a", "'=1;2"],
        ["'@x\"y", "-1"],
    ]


def test_the_sample_directory_is_written_unchanged() -> None:
    text = directory_csv(date(2026, 9, 1)).decode()
    assert "'" not in text
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO(newline="")
    CsvWriter(out, lineterminator="\n").writerows(rows)
    assert out.getvalue() == text
