"""Read and validate the directory CSV; every bad row is reported with its line number."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from credmail.core.addresses import AddressError, normalize_address
from credmail.core.values import Role

COLUMNS = ("role", "username", "first_name", "last_name", "birth_date", "emails", "students")
OPTIONAL = ("class",)


@dataclass(frozen=True)
class DirectoryRecord:
    line: int
    role: Role
    username: str
    first_name: str
    last_name: str
    birth_date: date | None
    emails: tuple[str, ...]
    students: tuple[str, ...]
    class_name: str | None


class DirectoryError(Exception):
    """The file cannot be imported; `problems` lists every bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_directory(data: bytes) -> list[DirectoryRecord]:
    """Parse UTF-8 CSV bytes; raise DirectoryError listing every problem found."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DirectoryError([f"file is not UTF-8 (byte {exc.start})"]) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    _check_header(header)
    reader.fieldnames = header
    records: list[DirectoryRecord] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        try:
            record = _record(line, row)
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if record.username in seen:
            problems.append(
                f"line {line}: username {record.username} repeats line {seen[record.username]}"
            )
        seen.setdefault(record.username, line)
        records.append(record)
    problems += _check_links(records)
    if problems:
        raise DirectoryError(problems)
    return records


def _check_header(header: list[str]) -> None:
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL]
    problems = [f"line 1: missing column {c}" for c in missing]
    problems += [f"line 1: unknown column {c}" for c in unknown]
    if problems:
        raise DirectoryError(problems)


def _field(row: dict[str, str | None], name: str) -> str:
    value = row.get(name)
    return (value or "").strip()


def _record(line: int, row: dict[str, str | None]) -> DirectoryRecord:
    if None in row:
        raise ValueError("more fields than columns")
    try:
        role = Role(_field(row, "role").lower())
    except ValueError:
        raise ValueError(f"role must be one of {', '.join(r.value for r in Role)}") from None
    username = _field(row, "username")
    for name in ("username", "first_name", "last_name"):
        if not _field(row, name):
            raise ValueError(f"{name} is empty")
    students = _split(_field(row, "students"))
    if students and role is not Role.GUARDIAN:
        raise ValueError("students is only for guardians")
    return DirectoryRecord(
        line=line,
        role=role,
        username=username,
        first_name=_field(row, "first_name"),
        last_name=_field(row, "last_name"),
        birth_date=_birth_date(_field(row, "birth_date"), role),
        emails=_emails(_field(row, "emails")),
        students=students,
        class_name=_field(row, "class") or None,
    )


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


def _birth_date(value: str, role: Role) -> date | None:
    if not value:
        if role is Role.STUDENT:
            raise ValueError("birth_date is required for students")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"birth_date {value!r} is not YYYY-MM-DD") from None


def _emails(value: str) -> tuple[str, ...]:
    emails = _split(value)
    for address in emails:
        try:
            normalize_address(address)
        except AddressError:
            raise ValueError(f"emails: {address!r} is not an address") from None
    return emails


def _check_links(records: list[DirectoryRecord]) -> list[str]:
    roles = {r.username: r.role for r in records}
    problems = []
    for record in records:
        for student in record.students:
            if student in roles and roles[student] is not Role.STUDENT:
                problems.append(f"line {record.line}: {student} is not a student")
    return problems
