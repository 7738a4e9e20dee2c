"""A command's spreadsheet (`--csv FILE`), and `--csv -`: on standard output.

Through the README's wrapper every command runs as the service user, who cannot write the
administrator's directory; a shell redirection can (`credmail ... --csv - > report.csv`).
The spreadsheet is then the command's whole output: what it would print for a person goes
to standard error instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from credmail.service.csv_export import spreadsheet_writer

STDOUT = Path("-")


class StandardOutput:
    """Stands for the `--csv` path: opened as a file is, written to standard output."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __str__(self) -> str:
        return "standard output"

    @contextlib.contextmanager
    def open(
        self, mode: str = "w", encoding: str = "utf-8", newline: str | None = None
    ) -> Iterator[TextIO]:
        self.stream.flush()
        out = io.TextIOWrapper(self.stream.buffer, encoding=encoding, newline=newline)
        try:
            yield out
        finally:
            out.flush()
            out.detach()  # standard output stays open


@contextlib.contextmanager
def csv_on_stdout(args: argparse.Namespace) -> Iterator[None]:
    """With `--csv -`, run the command with its printed text sent to standard error."""
    if getattr(args, "csv", None) != STDOUT:
        yield
        return
    args.csv = StandardOutput(sys.stdout)
    with contextlib.redirect_stdout(sys.stderr):
        yield


def write_spreadsheet(path: Path | StandardOutput, rows: Iterable[Iterable[object]]) -> None:
    """Rows (the header first) as Excel in Italy opens them: UTF-8 with a BOM and `;`,
    through the one writer that neutralises formula cells. OSError is the caller's."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        spreadsheet_writer(out).writerows(rows)
