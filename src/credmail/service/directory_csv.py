"""Read and validate the directory CSV; every bad row is reported with its line number."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date

from credmail.core.addresses import AddressError, normalize_address
from credmail.core.values import Role, sex_code
from credmail.service.import_errors import DirectoryError as DirectoryError
from credmail.service.import_errors import ImportRefused, too_many_rows, unreadable

COLUMNS = ("role", "username", "first_name", "last_name", "birth_date", "emails", "students")
OPTIONAL = ("class", "new", "language", "sex")
YES = frozenset({"sì", "si", "yes", "true", "1", "x"})
DELIMITERS = {",": "comma", ";": "semicolon"}
ENCODINGS = {"utf-8-sig": "UTF-8", "cp1252": "Windows-1252"}  # tried in this order
CHUNK = 64 * 1024

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


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
    new_student: bool = False
    language: str | None = None
    active: bool = True  # False: the register says the pupil left
    sex: str | None = None  # "M" / "F" for the replies' words; None keeps what is on file


def detect_encoding(data: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8, else Windows-1252 (what Excel writes in an
    Italian locale); raises ImportRefused for an empty file or bytes that are neither.
    Decoded a chunk at a time: the text is never held whole."""
    for encoding in ENCODINGS:
        blank = _blank(data, encoding)
        if blank is None:
            continue
        if blank:
            raise ImportRefused("the file is empty", "il file è vuoto")
        return encoding
    raise ImportRefused(
        "not .xls, .xlsx or CSV: the bytes are neither UTF-8 nor Windows-1252 text",
        "non è un foglio Excel (.xls, .xlsx) né un file CSV",
    )


def _blank(data: bytes, encoding: str) -> bool | None:
    """None when `data` is not `encoding`, else whether its text is only blanks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    view, blank = memoryview(data), True
    try:
        for start in range(0, len(data), CHUNK):  # every chunk: a bad byte may come late
            text = decoder.decode(view[start : start + CHUNK])
            blank = blank and not text.strip()
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return blank and not tail.strip()


def text_stream(data: bytes, encoding: str) -> io.TextIOWrapper:
    """The bytes as text, decoded as it is read (line ends kept for the CSV reader)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")


def first_line(data: bytes) -> str:
    """The text's first line (a byte-order mark dropped)."""
    return text_stream(data, detect_encoding(data)).readline().rstrip("\r\n")


def describe_input(data: bytes) -> str:
    """The one summary line: the delimiter and the encoding found."""
    delimiter = detect_delimiter(first_line(data))
    encoding = ENCODINGS[detect_encoding(data)]
    return f"fields separated by {DELIMITERS[delimiter]} ({delimiter!r}), text in {encoding}"


def detect_delimiter(text: str) -> str:
    """';' when the header row is semicolon-separated (Excel in an Italian locale), else ','."""
    header = text.partition("\n")[0]
    return ";" if header.count(";") > header.count(",") else ","


def read_directory(
    data: bytes,
    today: date | None = None,
    on_file: Mapping[str, Role] | None = None,
    *,
    max_rows: int | None = None,
) -> list[DirectoryRecord]:
    """Parse UTF-8 or Windows-1252 CSV bytes (comma- or semicolon-separated); raise
    DirectoryError listing every problem found. Birth dates after `today` (default: the
    system date) are errors. With `on_file` (the directory's usernames and roles now), a
    guardian's student found neither in the file nor on file is reported in the same pass;
    without it the import reports it. More than `max_rows` rows, or a line the CSV reader
    cannot read, refuses the file (ImportRefused)."""
    today = today or date.today()
    encoding = detect_encoding(data)
    header_line = text_stream(data, encoding).readline()
    rows = _rows(csv_rows(text_stream(data, encoding), detect_delimiter(header_line)), max_rows)
    header = [name.strip() for name in next(rows, (1, []))[1]]
    _check_header(header)
    records: list[DirectoryRecord] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, fields in rows:
        try:
            record = _record(line, header, fields, today)
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if record.username in seen:
            problems.append(
                f"line {line}: username {record.username} repeats line {seen[record.username]}"
            )
        seen.setdefault(record.username, line)
        records.append(record)
    problems += _check_links(records, on_file)
    if problems:
        raise DirectoryError(problems)
    return records


def _rows(
    rows: Iterator[tuple[int, list[str]]], max_rows: int | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Non-empty rows, each with the line it starts on (a quoted field may span lines)."""
    for count, (start, fields) in enumerate(rows, start=1):
        if max_rows is not None and count > max_rows:
            raise too_many_rows(max_rows)
        if fields:
            yield start, fields


def csv_rows(text: Iterable[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Every row with the line it starts on; a line the reader refuses (a field over its
    limit) is ImportRefused."""
    reader = csv.reader(text, delimiter=delimiter)
    line = 0
    try:
        for fields in reader:
            start, line = line + 1, reader.line_num
            yield start, fields
    except (csv.Error, UnicodeDecodeError) as exc:
        raise unreadable("text", ValueError(f"line {reader.line_num}: {exc}")) from None


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


def _record(line: int, header: list[str], fields: list[str], today: date) -> DirectoryRecord:
    if len(fields) > len(header):
        raise ValueError("more fields than columns")
    row: dict[str, str | None] = dict(zip(header, fields, strict=False))
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
        birth_date=_birth_date(_field(row, "birth_date"), role, today),
        emails=_emails(_field(row, "emails")),
        students=students,
        class_name=_field(row, "class") or None,
        new_student=_new_flag(_field(row, "new"), role),
        language=_language(_field(row, "language")),
        sex=sex_code(_field(row, "sex")),
    )


def _new_flag(value: str, role: Role) -> bool:
    """The optional `new` column: sì/si/yes/true/1 marks a new student; empty means no."""
    if not value:
        return False
    if value.lower() not in YES | {"no", "false", "0"}:
        raise ValueError(f"new must be sì or empty, not {value!r}")
    flagged = value.lower() in YES
    if flagged and role is not Role.STUDENT:
        raise ValueError("new is only for students")
    return flagged


def _language(value: str) -> str | None:
    """The optional `language` column: an ISO 639-1 code (two letters), empty = Italian only."""
    if not value:
        return None
    code = value.strip().lower()
    if not re.fullmatch(r"[a-z]{2}", code):
        raise ValueError(f"language must be a two-letter ISO 639-1 code, not {value!r}")
    return None if code == "it" else code


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(";") if part.strip())


def _birth_date(value: str, role: Role, today: date) -> date | None:
    if not value:
        if role is Role.STUDENT:
            raise ValueError("birth_date is required for students")
        return None
    try:
        born = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"birth_date {value!r} is not YYYY-MM-DD") from None
    if born > today:
        raise ValueError(f"birth_date {value} is in the future")
    return born


def _emails(value: str) -> tuple[str, ...]:
    emails = _split(value)
    for address in emails:
        problem = addr_spec_problem(address)
        if problem:
            raise ValueError(f"emails: {address!r} is not an address ({problem})")
    return emails


def addr_spec_problem(address: str) -> str | None:
    """Why `address` is not one plain local@domain (RFC 5322 dot-atom, DNS host name)."""
    local, at, _ = address.rpartition("@")
    if not at or not _LOCAL_PART.match(local) or len(local) > 64:
        return "one address per entry, local@domain, nothing around it"
    try:
        labels = normalize_address(address).rpartition("@")[2].split(".")
    except AddressError:
        return "bad domain"
    if len(labels) < 2 or labels[-1].isdigit() or not all(map(_LABEL.match, labels)):
        return "bad domain"
    return None


def _check_links(records: list[DirectoryRecord], on_file: Mapping[str, Role] | None) -> list[str]:
    roles = {**(on_file or {}), **{r.username: r.role for r in records}}
    problems = []
    for record in records:
        for student in record.students:
            problem = student_problem(student, roles.get(student), known=on_file is not None)
            if problem:
                problems.append(f"line {record.line}: {problem}")
    return problems


def student_problem(username: str, role: Role | None, *, known: bool = True) -> str | None:
    """Why a guardian cannot be linked to `username` (None: it can). `role` is None for
    nobody found; `known` is False when only the file was searched."""
    if role is None:
        return f"unknown student {username}" if known else None
    return None if role is Role.STUDENT else f"{username} is not a student"
