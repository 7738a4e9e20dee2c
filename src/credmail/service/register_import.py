"""The register's exports as directory records: header mapping, the student-guardian join,
the yearly refresh (left and new pupils) and the problems a secretariat should see.

Pure: rows of text in (from a SpreadsheetReader), records and a report out. Only the fields
credmail needs are read; tax codes serve to join and, hashed, as a key when a file has no
better one; residence, phones and citizenship are never looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from credmail.core.values import Role
from credmail.service.directory_csv import DirectoryRecord
from credmail.service.import_errors import ImportRefused
from credmail.service.ports import Sheet
from credmail.service.register_columns import ColumnMapping, column_fields, find_header, layout_of
from credmail.service.register_renames import find_renames
from credmail.service.register_rows import (
    GUARDIAN_REFERENCE,
    PROBLEM_CODES,
    STUDENT_REFERENCE,
    Builder,
    Guardian,
    Problem,
    read_row,
    student_reference,
)


def is_register_reference(username: str) -> bool:
    """True for a username credmail made up (no login code in the files): replies then say
    where to find the register's code instead of naming it."""
    return username.startswith((STUDENT_REFERENCE, GUARDIAN_REFERENCE))


@dataclass(frozen=True)
class FileInfo:
    name: str
    description: str
    layout: str
    header_line: int
    rows: int
    ignored_columns: tuple[str, ...]


@dataclass
class RegisterData:
    """What the files say, joined: students and guardians as records, and the problems."""

    files: list[FileInfo]
    records: list[DirectoryRecord]
    problems: list[Problem]
    has_students: bool
    has_guardians: bool
    renames: dict[str, str] = field(default_factory=dict)  # old username -> new


Progress = Callable[[int, int | None], None]


def read_register(
    sheets: Iterable[Sheet],
    today: date,
    *,
    layout: str | None = None,
    mapping: ColumnMapping | None = None,
    progress: Progress | None = None,
    on_file: Mapping[str, str] | None = None,
) -> RegisterData:
    """Read every sheet, join guardians to students, report problems. `layout` forces a
    layout (classeviva / guardians); a sheet whose layout cannot be told raises
    ImportRefused asking for a mapping. `on_file`: username -> role of the people on file
    (a guardian sheet alone joins them; a made-up reference given a login code is renamed)."""
    builder = Builder(today, dict(on_file or {}))
    files = []
    done = 0
    for sheet in sheets:
        found = find_header(sheet, mapping)
        if found is None:
            raise ImportRefused(
                "no header row with known column names",
                "nelle prime righe non c'è l'intestazione delle colonne",
                sheet.name,
            )
        header_line, header, rows_after = found
        columns = column_fields(header, mapping)
        kind = (mapping.layout if mapping else None) or layout_of(set(columns.values()))
        if layout == "guardians" and kind == "classeviva":
            kind = None
        if kind is None or (layout == "classeviva" and kind != "classeviva"):
            raise _unknown_layout(sheet.name, header)
        rows = 0
        for line, cells in rows_after:
            done += 1
            if progress and done % 200 == 0:
                progress(done, None)
            if not any(cells):
                continue
            rows += 1
            row = {name: cells[pos].strip() for pos, name in columns.items() if pos < len(cells)}
            read_row(builder, sheet.name, line, kind, row)
        ignored = tuple(h for pos, h in enumerate(header) if h and pos not in columns)
        files.append(FileInfo(sheet.name, sheet.description, kind, header_line, rows, ignored))
    if progress:
        progress(done, done)
    _join(builder)
    renames = find_renames(builder)
    records = _records(builder)
    _address_problems(builder)
    has_guardians = any(f.layout in ("guardians", "families") for f in files)
    if has_guardians:
        _students_without_address(builder)
    return RegisterData(
        files,
        records,
        sorted(builder.problems, key=_problem_order),
        has_students=any(f.layout in ("classeviva", "families") for f in files),
        has_guardians=has_guardians,
        renames=renames,
    )


def _unknown_layout(file: str, header: list[str]) -> ImportRefused:
    names = ", ".join(h for h in header if h)
    return ImportRefused(
        f"unknown layout (columns: {names}); write a mapping with "
        f"`credmail directory mapping init {file}`, edit it, and import with --mapping NAME",
        "le colonne non sono quelle di un elenco alunni o tutori noto; chiedere all'amministratore "
        "di sistema di preparare la corrispondenza delle colonne per questo file",
        file,
    )


def _problem_order(p: Problem) -> tuple[str, int, int]:
    return (p.file, p.line or 0, PROBLEM_CODES.index(p.code) if p.code in PROBLEM_CODES else 99)


def _join(b: Builder) -> None:
    for guardian, pupil, line, file in b.pending:
        username = b.by_pupil.get(pupil)
        if username is None and _derived(pupil) in b.on_file:
            username = _derived(pupil)
        if username is None:
            what = "pupil id " + pupil[3:] if pupil.startswith("id:") else "pupil tax code"
            b.problem(
                file,
                line,
                "unknown_pupil",
                f"{what} is neither in the files nor on file "
                "(import a guardian sheet together with the student list)",
                guardian.username,
            )
            continue
        guardian.students.append(username)


def _derived(pupil: str) -> str:
    """The username a pupil got from an earlier import keyed by pupil id or tax code."""
    kind, _, value = pupil.partition(":")
    return student_reference(value, None) if kind == "id" else student_reference(None, value)


def _records(b: Builder) -> list[DirectoryRecord]:
    records = [
        DirectoryRecord(
            line=s.line,
            role=Role.STUDENT,
            username=s.username,
            first_name=s.first_name,
            last_name=s.last_name,
            birth_date=s.birth_date,
            emails=tuple(s.emails),
            students=(),
            class_name=s.class_name,
            new_student=s.first_year,
            language=s.language,
            active=not s.left,
            sex=s.sex,
        )
        for s in b.students.values()
    ]
    for g in b.guardians.values():
        if not g.students:
            continue
        records.append(
            DirectoryRecord(
                line=g.line,
                role=Role.GUARDIAN,
                username=g.username,
                first_name=g.first_name,
                last_name=g.last_name,
                birth_date=None,
                emails=tuple(g.emails),
                students=tuple(dict.fromkeys(g.students)),
                class_name=None,
                language=g.language,
            )
        )
    return records


def _address_problems(b: Builder) -> None:
    owners: dict[str, list[Guardian]] = {}
    for g in b.guardians.values():
        for address in g.emails:
            owners.setdefault(address.casefold(), []).append(g)
    for address, guardians in owners.items():
        if len(guardians) < 2:
            continue
        first = guardians[0]
        families = _families(guardians)
        names = ", ".join(f"{g.last_name} {g.first_name}" for g in guardians)
        if any(len(family) > 1 for family in families):
            b.problem(
                first.file,
                first.line,
                "shared_by_parents",
                f"{address} is the address of more than one guardian of the same pupil ({names})",
                first.username,
            )
        if len(families) > 1:
            b.problem(
                first.file,
                first.line,
                "shared_by_families",
                f"{address} is shared by guardians of {len(families)} families ({names})",
                first.username,
            )


def _families(guardians: list[Guardian]) -> list[list[Guardian]]:
    """Guardians grouped into families: two are one family when they share a pupil."""
    families: list[tuple[set[str], list[Guardian]]] = []
    for guardian in guardians:
        pupils = set(guardian.students)
        joined = [f for f in families if f[0] & pupils]
        merged = (pupils.union(*(f[0] for f in joined)), [g for f in joined for g in f[1]])
        merged[1].append(guardian)
        families = [f for f in families if f not in joined] + [merged]
    return [members for _, members in families]


def _students_without_address(b: Builder) -> None:
    reached: set[str] = set()
    for g in b.guardians.values():
        if g.emails:
            reached.update(g.students)
    for s in b.students.values():
        if s.username not in reached and not s.left:
            b.problem(
                s.file,
                s.line,
                "no_guardian_address",
                f"{s.last_name} {s.first_name}: no guardian with an address",
                s.username,
            )
