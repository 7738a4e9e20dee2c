"""An .xlsx opened so that its size cannot exhaust memory: openpyxl reads the workbook in
read-only mode (worksheets streamed row by row) through a ZIP whose parts are bounded.

Before a part is read, its unpacked size (which zipfile then holds it to) is checked: a
worksheet may unpack to WORKSHEET_EXPANSION times the file limit, every other part (the
shared strings, which openpyxl holds whole, the styles, the workbook) to the file limit.
A worksheet's XML is also counted as it streams: more rows than the row limit, or a row of
more cells than Excel allows, stops the read at once (the XML parser holds the cells of one
row together, so that bound keeps a single crafted row from filling memory). Each is an
ImportRefused.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import IO, Any

from credmail.service.import_errors import ImportRefused, italian_number, too_many_rows

WORKSHEET_EXPANSION = 8  # a school's sheet unpacks to 5-10 times its ZIP size
EXCEL_COLUMNS = 16_384  # the most cells a row of a valid .xlsx has
_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)\b")  # a row's or a cell's start tag


def open_workbook(data: bytes, max_bytes: int, max_rows: int) -> Any:
    """The workbook (openpyxl, read-only, values only) over the bounded ZIP."""
    from openpyxl.reader.excel import ExcelReader

    reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
    reader.archive = BoundedZip(reader.archive, max_bytes, max_rows)
    reader.read()
    return reader.wb


class BoundedZip:
    """The ZipFile openpyxl reads, with every part it opens or reads bounded."""

    def __init__(self, archive: zipfile.ZipFile, max_bytes: int, max_rows: int) -> None:
        self._archive, self._max_bytes, self._max_rows = archive, max_bytes, max_rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._archive, name)

    def open(self, name: str | zipfile.ZipInfo, mode: str = "r") -> io.RawIOBase:
        if mode != "r":
            raise ValueError("a bounded archive is read-only")
        info = name if isinstance(name, zipfile.ZipInfo) else self._archive.getinfo(name)
        sheet = info.filename.startswith("xl/worksheets/")
        limit = self._max_bytes * (WORKSHEET_EXPANSION if sheet else 1)
        if info.file_size > limit:
            raise ImportRefused(
                f"{info.filename} unpacks to {info.file_size:,} bytes, more than the "
                f"{limit:,} allowed for it (directory.max_import_bytes)",
                "il file si espande oltre il limite ammesso: è danneggiato o troppo grande",
            )
        part = self._archive.open(info)
        return _Rows(part, self._max_rows) if sheet else _Part(part)

    def read(self, name: str | zipfile.ZipInfo, pwd: bytes | None = None) -> bytes:
        with self.open(name) as part:
            return part.read()


class _Part(io.RawIOBase):
    """A part as a raw stream (zipfile holds it to its declared size)."""

    def __init__(self, part: IO[bytes]) -> None:
        self._part = part

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._part.read(len(buffer))
        self.seen(data)
        buffer[: len(data)] = data
        return len(data)

    def seen(self, data: bytes) -> None:
        """What a subclass looks at in each chunk read."""

    def close(self) -> None:
        self._part.close()
        super().close()


class _Rows(_Part):
    """A worksheet's XML, its rows and the cells of each row counted as it streams."""

    def __init__(self, part: IO[bytes], max_rows: int) -> None:
        super().__init__(part)
        self._max_rows, self._rows, self._cells = max_rows, 0, 0
        self._carry = b""

    def seen(self, data: bytes) -> None:
        buffer = self._carry + data
        cut = buffer.rfind(b"<")
        if cut != -1 and b">" not in buffer[cut:] and len(buffer) - cut < 64:
            buffer, self._carry = buffer[:cut], buffer[cut:]  # a tag cut in two: next time
        else:
            self._carry = b""
        for tag in _TAG.finditer(buffer):
            if tag.group(1) == b"row":
                self._rows, self._cells = self._rows + 1, 0
                if self._rows > self._max_rows:
                    raise too_many_rows(self._max_rows)
                continue
            self._cells += 1
            if self._cells > EXCEL_COLUMNS:
                raise ImportRefused(
                    f"row {self._rows}: more than {EXCEL_COLUMNS:,} cells (a damaged or crafted "
                    "file)",
                    f"la riga {self._rows} ha più di {italian_number(EXCEL_COLUMNS)} celle: il "
                    "file è danneggiato",
                )
