"""Damaged and oversized files through the directory desk's import, as the CLI and the console
call it: real .xls, .xlsx and CSV bytes mutated (a fixed seed, a few dozen mutants each),
every failure one ImportRefused line naming the file, never another exception; and the
limits on bytes, rows and columns."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from credmail.adapters.spreadsheets import SpreadsheetFiles
from credmail.service.desks import Actor, DirectoryDesk
from credmail.service.import_errors import DirectoryError, ImportRefused
from credmail.service.import_files import ImportLimits
from tests.fakes import FakeClock, FakeDirectoryAdmin, FakeUnitOfWorkFactory
from tests.support.register_files import (
    Guardian,
    Pupil,
    classeviva_xls,
    families_csv,
    guardians_xlsx,
    students_csv_cp1252,
)

CLERK = Actor("segreteria", "cli")
PUPILS = [
    Pupil(5256300 + n, "Rossi", f"Luca{n}", date(2012, 5, 1), f"RSSLCU12E01H5{n:02d}A")
    for n in range(6)
]
PARENTS = [
    Guardian(p.tax_code, f"g{n}@example.org", "MADRE", "ROSSI", f"ANNA{n}", f"RSSNNA{n:02d}")
    for n, p in enumerate(PUPILS)
]
CREDMAIL_CSV = (
    b"role,username,first_name,last_name,birth_date,emails,students,class\n"
    b"teacher,T9001,Nuova,Docente,,nuova.docente@example.org,,\n"
)
MUTANTS = 30


def desk(limits: ImportLimits | None = None) -> DirectoryDesk:
    limits = limits or ImportLimits()
    admin = FakeDirectoryAdmin(FakeUnitOfWorkFactory())
    zone = ZoneInfo("Europe/Rome")
    return DirectoryDesk(
        admin, FakeClock(), zone, 1.0, sheets=SpreadsheetFiles(limits), limits=limits
    )


def refusal(name: str, data: bytes, limits: ImportLimits | None = None) -> ImportRefused | None:
    """The one-line refusal of an import (a dry run), or None when it was read."""
    try:
        desk(limits).import_files([(name, data)], CLERK, dry_run=True)
    except ImportRefused as exc:
        return exc
    except DirectoryError as exc:  # credmail's CSV: every bad line, each naming the file
        assert all(problem.startswith(f"{name}: ") for problem in exc.problems), exc.problems
    return None


def flip(rng: random.Random, data: bytes, start: int = 0) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        position = rng.randrange(start, len(out))
        out[position] = rng.randrange(256)
    return bytes(out)


def cut(rng: random.Random, data: bytes, start: int = 0) -> bytes:
    return data[: rng.randrange(start, len(data))]


def splice(rng: random.Random, data: bytes, start: int = 0) -> bytes:
    """A slice of the file copied over another place (records repeated or overlapping)."""
    a, b = sorted(rng.sample(range(start, len(data)), 2))
    at = rng.randrange(start, len(data))
    return data[:at] + data[a:b] + data[at + (b - a) // 2 :]


MUTATIONS: list[Callable[..., bytes]] = [flip, cut, splice]


def mutants(data: bytes, seed: int, start: int = 0) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(MUTANTS):
        yield rng.choice(MUTATIONS)(rng, data, start)


def xml_mutants(data: bytes, seed: int) -> Iterator[bytes]:
    """An .xlsx whose XML parts (not the ZIP around them) are damaged, then zipped again."""
    rng = random.Random(seed)
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        parts = {info.filename: book.read(info) for info in book.infolist()}
    xml = [name for name in parts if name.endswith(".xml")]
    sheet = "xl/worksheets/sheet1.xml"
    rows_start = parts[sheet].index(b"<sheetData>")
    for n in range(MUTANTS):
        damaged = dict(parts)
        name = sheet if n % 2 else rng.choice(xml)  # half in the rows, read only as they stream
        start = rows_start if name == sheet else 0
        damaged[name] = rng.choice(MUTATIONS)(rng, parts[name], start)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as book:
            for part, content in damaged.items():
                book.writestr(part, content)
        yield out.getvalue()


def assert_one_line(exc: ImportRefused | None, name: str) -> None:
    if exc is None:
        return
    (line,) = exc.problems
    assert "\n" not in line and line.startswith(f"{name}: "), line
    assert exc.italian and "\n" not in exc.for_staff and exc.for_staff.startswith(f"{name}: ")


@pytest.mark.parametrize(
    ("name", "data", "start"),
    [
        ("alunni.xls", classeviva_xls(PUPILS), 512),  # past the OLE header: into BIFF records
        ("alunni.xls", classeviva_xls(PUPILS), 0),
        ("tutori.xlsx", guardians_xlsx(PARENTS), 0),
        ("alunni.csv", students_csv_cp1252(PUPILS), 0),
        ("famiglie.csv", families_csv([(p, [g]) for p, g in zip(PUPILS, PARENTS, strict=True)]), 0),
        ("rubrica.csv", CREDMAIL_CSV, 0),
    ],
)
def test_every_mutant_is_read_or_refused_in_one_line(name: str, data: bytes, start: int) -> None:
    refused = 0
    for mutant in mutants(data, seed=len(data) + start, start=start):
        exc = refusal(name, mutant)
        assert_one_line(exc, name)
        refused += exc is not None
    assert refused > 0  # the mutations reached the parsers


def test_every_mutant_of_an_xlsx_xml_part_is_read_or_refused_in_one_line() -> None:
    reasons = set()
    for mutant in xml_mutants(guardians_xlsx(PARENTS), seed=27):
        exc = refusal("tutori.xlsx", mutant)
        assert_one_line(exc, "tutori.xlsx")
        if exc is not None:
            reasons.add(exc.reason.partition("(")[0])
    assert "not a readable .xlsx file " in reasons


def test_a_csv_field_past_the_readers_limit_is_one_line() -> None:
    data = students_csv_cp1252(PUPILS[:1]) + b'"' + b"x" * 200_000 + b'"\r\n'
    exc = refusal("alunni.csv", data)
    assert exc is not None and "field larger than field limit" in exc.reason
    exc = refusal("rubrica.csv", CREDMAIL_CSV + b'teacher,T2,"' + b"x" * 200_000 + b'",X,,,,\n')
    assert exc is not None and exc.reason.startswith("not a readable CSV file (line 3:")


def test_a_file_past_the_size_limit_is_refused_before_it_is_read() -> None:
    limits = ImportLimits(max_bytes=64 * 1024, max_rows=100)
    exc = refusal("alunni.csv", b"\x00" * (64 * 1024 + 1), limits)
    assert exc is not None
    assert exc.reason == "larger than the 64 KiB an import reads (directory.max_import_bytes)"
    assert exc.italian == "il file supera i 64 KB ammessi per un'importazione"


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("alunni.xls", classeviva_xls),
        ("alunni.csv", students_csv_cp1252),
        ("tutori.xlsx", lambda pupils: guardians_xlsx(PARENTS * 5)),
    ],
)
def test_rows_past_the_limit_stop_the_read(
    name: str, build: Callable[[list[Pupil]], bytes]
) -> None:
    data = build(PUPILS * 5)
    assert refusal(name, data, ImportLimits(max_rows=40)) is None
    exc = refusal(name, data, ImportLimits(max_rows=20))
    assert exc is not None and exc.problems == [
        f"{name}: more than 20 rows (directory.max_import_rows)"
    ]
    assert exc.italian == "il file ha più di 20 righe, il massimo ammesso per un'importazione"
    exc = refusal("rubrica.csv", CREDMAIL_CSV * 15, ImportLimits(max_rows=20))
    assert exc is not None and "more than 20 rows" in exc.reason


def test_a_row_of_too_many_columns_is_refused() -> None:
    data = b"Cognome;Nome;Id Alunno\r\nRossi;Luca;1" + b";x" * 1500 + b"\r\n"
    exc = refusal("alunni.csv", data)
    assert exc is not None and exc.reason == "line 2: more than 1,000 columns"


def test_an_xlsx_that_unpacks_past_its_bounds_is_refused() -> None:
    limits = ImportLimits(max_bytes=64 * 1024, max_rows=1000)
    blanks = rezip(  # a style sheet (read whole, like shared strings) with 1 MiB of blanks
        guardians_xlsx(PARENTS),
        "xl/styles.xml",
        lambda xml: xml.replace(b"<fonts", b" " * 1024 * 1024 + b"<fonts", 1),
    )
    exc = refusal("tutori.xlsx", blanks, limits)
    assert exc is not None and exc.reason.startswith("xl/styles.xml unpacks to 1,0")
    assert "more than the 65,536 allowed for it (directory.max_import_bytes)" in exc.reason
    one_row = rezip(  # one row of 20,000 cells
        guardians_xlsx(PARENTS),
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b"</row>", b"<c/>" * 20_000 + b"</row>", 1),
    )
    exc = refusal("tutori.xlsx", one_row)
    assert exc is not None and exc.reason.startswith("row 1: more than 16,384 cells")


def rezip(data: bytes, part: str, change: Callable[[bytes], bytes]) -> bytes:
    """The .xlsx with one part changed."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book,
    ):
        for info in source.infolist():
            content = source.read(info)
            book.writestr(info.filename, change(content) if info.filename == part else content)
    return out.getvalue()
