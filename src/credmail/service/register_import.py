"""The register's exports as directory records: header mapping, the student-guardian join,
the yearly refresh (left and new pupils) and the problems a secretariat should see.

Pure: rows of text in (from a SpreadsheetReader), records and a report out. Only the fields
credmail needs are read; tax codes serve to join and, hashed, as a key when a file has no
better one; residence, phones and citizenship are never looked at.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
import unicodedata
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from credmail.core.values import Role
from credmail.service.directory_csv import DirectoryError, DirectoryRecord, addr_spec_problem
from credmail.service.ports import Sheet

STUDENT_FIELDS = (
    "pupil_id",
    "last_name",
    "first_name",
    "birth_date",
    "tax_code",
    "email",
    "email2",
    "class",
    "section",
    "year",
    "status",
    "status_type",
    "start_date",
    "end_date",
    "username",
    "language",
)
GUARDIAN_FIELDS = (
    "guardian_last_name",
    "guardian_first_name",
    "guardian_tax_code",
    "guardian_email",
    "guardian_role",
    "guardian_username",
    "guardian_language",
)
PARENT_PARTS = ("last_name", "first_name", "tax_code", "email", "username", "language", "role")
FIELDS = (
    *STUDENT_FIELDS,
    *GUARDIAN_FIELDS,
    *(f"g{n}_{part}" for n in (1, 2) for part in PARENT_PARTS),
)

_ALIASES: dict[str, tuple[str, ...]] = {
    "pupil_id": ("id alunno", "id studente", "idalunno", "id"),
    "last_name": ("cognome", "cognome alunno", "cognome studente"),
    "first_name": ("nome", "nome alunno", "nome studente"),
    "birth_date": ("data nascita", "data di nascita", "datanascita", "data nascita alunno"),
    "tax_code": (
        "codice fiscale",
        "codicefiscale",
        "cod fiscale",
        "cf",
        "codice fiscale alunno",
        "cf alunno",
        "codice fiscale studente",
    ),
    "email": ("email", "e-mail", "mail", "email alunno", "email studente"),
    "email2": ("email 2", "e-mail 2", "email2"),
    "class": ("classe",),
    "section": ("sezione",),
    "year": ("anno corso", "anno di corso"),
    "status": ("stato alunno", "stato"),
    "status_type": ("tipologia stato alunno",),
    "start_date": ("data inizio",),
    "end_date": ("data fine",),
    "username": (
        "username",
        "codice utente",
        "utente",
        "login",
        "codice utente alunno",
        "username alunno",
        "nome utente",
    ),
    "language": ("lingua", "language", "lingua comunicazioni"),
    "guardian_last_name": ("cognome tutore", "cognome genitore"),
    "guardian_first_name": ("nome tutore", "nome genitore"),
    "guardian_tax_code": ("codice fiscale tutore", "codice fiscale genitore", "cf tutore"),
    "guardian_email": ("email tutore", "email genitore", "e-mail tutore", "e-mail genitore"),
    "guardian_role": ("ruolo del tutore", "ruolo tutore", "ruolo", "parentela"),
    "guardian_username": (
        "codice utente tutore",
        "username tutore",
        "codice utente genitore",
        "username genitore",
    ),
    "guardian_language": ("lingua tutore", "lingua genitore"),
}
_PARENT_WORDS = {
    "last_name": "cognome",
    "first_name": "nome",
    "tax_code": "codicefiscale",
    "email": "email",
    "username": "username",
    "language": "lingua",
    "role": "ruolo",
}
for _n in (1, 2):
    for _part, _word in _PARENT_WORDS.items():
        _ALIASES[f"g{_n}_{_part}"] = (f"genitore{_n}{_word}", f"{_word}genitore{_n}")


def header_key(text: str) -> str:
    """Headers compare without case, accents, spaces, punctuation or a trailing '*'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.casefold())


ALIASES: dict[str, str] = {
    header_key(alias): name for name, aliases in _ALIASES.items() for alias in aliases
}

STUDENT_CODE = re.compile(r"S\d{7}[A-Z]\Z")
GUARDIAN_CODE = re.compile(r"[GX]\d{7}[A-Z]\Z")
# usernames made when a file has no login code: the register's own code must be looked up
STUDENT_REFERENCE, GUARDIAN_REFERENCE = "alunno-", "tutore-"


def is_register_reference(username: str) -> bool:
    """True for a username credmail made up (no login code in the files): replies then say
    where to find the register's code instead of naming it."""
    return username.startswith((STUDENT_REFERENCE, GUARDIAN_REFERENCE))
LEFT_WORDS = (
    "ritirat",
    "trasferit",
    "nullaosta",
    "nulla osta",
    "cessat",
    "abbandon",
    "depennat",
    "non frequentante",
    "interrott",
    "diplomat",
    "licenziat",
    "uscit",
    "escluso",
    "esclusa",
    "deceduto",
    "deceduta",
    "dimess",
)
PEC_DOMAINS = ("pec.it", "legalmail.it", "postecert.it", "arubapec.it", "pecmail.it", "cert.it")
DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d/%m/%y", "%d.%m.%Y", "%d/%m/%Y %H:%M")
EXCEL_EPOCH = date(1899, 12, 30)


@dataclass(frozen=True)
class ColumnMapping:
    """A saved column mapping: normalized header -> field ('' = ignored)."""

    name: str
    layout: str | None
    columns: dict[str, str]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    code: str
    detail: str
    username: str | None = None

    def as_text(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.code}: {self.detail}"


PROBLEM_CODES = (
    "missing_address",
    "malformed_address",
    "pec_address",
    "shared_by_parents",
    "shared_by_families",
    "no_guardian_address",
    "duplicate_tax_code",
    "duplicate_pupil",
    "impossible_date",
    "unknown_pupil",
    "missing_name",
    "missing_key",
    "login_code",
)


@dataclass(frozen=True)
class FileInfo:
    name: str
    description: str
    layout: str
    header_line: int
    rows: int
    ignored_columns: tuple[str, ...]


@dataclass
class _Student:
    username: str
    line: int
    file: str
    first_name: str
    last_name: str
    birth_date: date | None
    emails: list[str]
    class_name: str | None
    first_year: bool
    left: bool
    language: str | None
    pupil_id: str | None
    tax_code: str | None


@dataclass
class _Guardian:
    username: str
    line: int
    file: str
    first_name: str
    last_name: str
    emails: list[str]
    students: list[str] = field(default_factory=list)
    language: str | None = None


@dataclass
class RegisterData:
    """What the files say, joined: students and guardians as records, and the problems."""

    files: list[FileInfo]
    records: list[DirectoryRecord]
    problems: list[Problem]
    has_students: bool
    has_guardians: bool


Progress = Callable[[int, int | None], None]


def read_mapping(name: str, data: bytes) -> ColumnMapping:
    """A mapping TOML as `mapping init` writes it; DirectoryError names what is wrong."""
    try:
        doc = tomllib.loads(data.decode("utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DirectoryError([f"mapping {name}: not valid TOML ({exc})"]) from None
    columns = doc.get("columns")
    layout = doc.get("layout")
    problems = []
    if not isinstance(columns, dict):
        problems.append(f"mapping {name}: missing [columns] table")
        columns = {}
    if layout is not None and layout not in LAYOUTS:
        problems.append(f"mapping {name}: layout must be one of {', '.join(LAYOUTS)}")
    for header, target in columns.items():
        if not isinstance(target, str) or (target and target not in FIELDS):
            problems.append(f"mapping {name}: column {header!r}: unknown field {target!r}")
    if problems:
        raise DirectoryError(problems)
    return ColumnMapping(name, layout, {header_key(h): t for h, t in columns.items()})


LAYOUTS = ("classeviva", "guardians", "families")

_FIELD_HELP = {
    "pupil_id": "the register's pupil id (Id Alunno)",
    "tax_code": "the pupil's tax code: only to join students and guardians",
    "username": "the register's login code (S1234567A)",
    "status": "Stato Alunno: ritirato/trasferito marks the pupil inactive",
    "year": "Anno Corso: 1 marks a new student",
    "guardian_role": "read, not stored",
}


def mapping_toml(sheet: Sheet, mapping: ColumnMapping | None = None) -> str:
    """An editable mapping for the file's header row: each header, the field it fills."""
    found = _find_header(sheet, mapping)
    if found is None:
        raise DirectoryError([f"{sheet.name}: no header row in the first rows"])
    line, header, _ = found
    columns = _columns(header, mapping)
    layout = _layout(set(columns.values()))
    out = [
        "# credmail column mapping, written by `credmail directory mapping init`.",
        f"# From {sheet.name}, header on line {line}. Edit the right-hand side: the field each",
        '# column fills, or "" to ignore the column. Fields:',
        *(
            f"#   {name}" + (f": {_FIELD_HELP[name]}" if name in _FIELD_HELP else "")
            for name in FIELDS
        ),
        '# layout: "classeviva" (one row per pupil), "guardians" (one row per guardian),',
        '# "families" (one row per pupil with genitore1/genitore2 columns)',
        f'layout = "{layout or "classeviva"}"',
        "",
        "[columns]",
    ]
    for position, text in enumerate(header):
        if text:
            target = columns.get(position, "")
            out.append(f"{_toml_string(text)} = {_toml_string(target)}")
    return "\n".join(out) + "\n"


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def _find_header(
    sheet: Sheet, mapping: ColumnMapping | None
) -> tuple[int, list[str], Iterator[tuple[int, list[str]]]] | None:
    """The first of the first 10 rows naming two known columns (a title row may come
    first), else the first non-empty row; with the rows after it."""
    known = set(mapping.columns) if mapping else set(ALIASES)
    seen: list[tuple[int, list[str]]] = []
    for line, cells in sheet.rows:
        if not any(cells):
            continue
        seen.append((line, cells))
        if sum(header_key(c) in known for c in cells) >= 2:
            return line, cells, sheet.rows
        if len(seen) > 10:
            break
    if not seen:
        return None
    line, cells = seen[0]
    return line, cells, itertools.chain(seen[1:], sheet.rows)


def _columns(header: list[str], mapping: ColumnMapping | None) -> dict[int, str]:
    """Column position -> field; the first column wins when two map to one field."""
    columns: dict[int, str] = {}
    taken: set[str] = set()
    for position, text in enumerate(header):
        key = header_key(text)
        target = mapping.columns.get(key, "") if mapping else ALIASES.get(key, "")
        if target and target not in taken:
            columns[position] = target
            taken.add(target)
    return columns


def _layout(fields: set[str]) -> str | None:
    if any(f.startswith(("g1_", "g2_")) for f in fields):
        return "families"
    if fields & {"guardian_email", "guardian_last_name", "guardian_username"}:
        return "guardians"
    if {"last_name", "first_name"} <= fields and fields & {"pupil_id", "tax_code", "username"}:
        return "classeviva"
    return None


def is_credmail_csv(first_line: str) -> bool:
    """credmail's own CSV: its header names role, username and emails."""
    names = {c.strip().strip('"').lower() for c in re.split(r"[;,]", first_line)}
    return {"role", "username", "emails"} <= names


# --- reading -------------------------------------------------------------------------


@dataclass
class _Builder:
    today: date
    on_file: Collection[str] = ()
    students: dict[str, _Student] = field(default_factory=dict)
    guardians: dict[str, _Guardian] = field(default_factory=dict)
    by_pupil: dict[str, str] = field(default_factory=dict)  # "id:…"/"cf:…" -> username
    pupil_tax_codes: dict[str, tuple[str, int]] = field(default_factory=dict)
    guardian_tax_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    pending: list[tuple[_Guardian, str, int, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def problem(
        self, file: str, line: int | None, code: str, detail: str, who: str | None = None
    ) -> None:
        self.problems.append(Problem(file, line, code, detail, who))


def read_register(
    sheets: Iterable[Sheet],
    today: date,
    *,
    layout: str | None = None,
    mapping: ColumnMapping | None = None,
    progress: Progress | None = None,
    on_file: Collection[str] = (),
) -> RegisterData:
    """Read every sheet, join guardians to students, report problems. `layout` forces a
    layout (classeviva / guardians); a sheet whose layout cannot be told raises
    DirectoryError asking for a mapping."""
    builder = _Builder(today, frozenset(on_file))
    files = []
    done = 0
    for sheet in sheets:
        found = _find_header(sheet, mapping)
        if found is None:
            raise DirectoryError([f"{sheet.name}: no header row with known column names"])
        header_line, header, rows_after = found
        columns = _columns(header, mapping)
        kind = (mapping.layout if mapping else None) or _layout(set(columns.values()))
        if layout == "guardians" and kind == "classeviva":
            kind = None
        if kind is None or (layout == "classeviva" and kind != "classeviva"):
            raise DirectoryError(
                [
                    f"{sheet.name}: unknown layout (columns: {', '.join(h for h in header if h)}); "
                    f"write a mapping with `credmail directory mapping init {sheet.name}`, "
                    "edit it, and import with --mapping NAME"
                ]
            )
        rows = 0
        for line, cells in rows_after:
            done += 1
            if progress and done % 200 == 0:
                progress(done, None)
            if not any(cells):
                continue
            rows += 1
            row = {name: cells[pos].strip() for pos, name in columns.items() if pos < len(cells)}
            _read_row(builder, sheet.name, line, kind, row)
        ignored = tuple(h for pos, h in enumerate(header) if h and pos not in columns)
        files.append(FileInfo(sheet.name, sheet.description, kind, header_line, rows, ignored))
    if progress:
        progress(done, done)
    _join(builder)
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
    )


def _problem_order(p: Problem) -> tuple[str, int, int]:
    return (p.file, p.line or 0, PROBLEM_CODES.index(p.code) if p.code in PROBLEM_CODES else 99)


def _read_row(b: _Builder, file: str, line: int, kind: str, row: dict[str, str]) -> None:
    if kind in ("classeviva", "families"):
        student = _read_student(b, file, line, row)
        if student is None or kind == "classeviva":
            return
        for n in (1, 2):
            parent = {f"guardian_{part}": row.get(f"g{n}_{part}", "") for part in PARENT_PARTS}
            if any(parent.values()):
                _read_guardian(b, file, line, parent, student.username)
        return
    pupil = _pupil_ref(row)
    if pupil is None:
        b.problem(file, line, "missing_key", "no pupil tax code or pupil id: row skipped")
        return
    _read_guardian(b, file, line, row, None, pupil)


def _pupil_ref(row: Mapping[str, str]) -> str | None:
    if row.get("pupil_id"):
        return "id:" + row["pupil_id"].lstrip("0")
    tax = row.get("tax_code", "").upper().replace(" ", "")
    return "cf:" + tax if tax else None


def _key_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _read_student(b: _Builder, file: str, line: int, row: dict[str, str]) -> _Student | None:
    first, last = _name(row.get("first_name", "")), _name(row.get("last_name", ""))
    if not first or not last:
        b.problem(file, line, "missing_name", "pupil without first or last name: row skipped")
        return None
    code = row.get("username", "").upper()
    pupil_id = row.get("pupil_id", "").lstrip("0") or None
    tax = row.get("tax_code", "").upper().replace(" ", "") or None
    if code:
        username = code
        if not STUDENT_CODE.match(code):
            b.problem(
                file, line, "login_code", f"student login {code} is not S + 7 digits + letter"
            )
    elif pupil_id:
        username = f"{STUDENT_REFERENCE}{pupil_id}"
    elif tax:
        username = f"alunno-cf-{_key_hash(tax)}"
    else:
        b.problem(file, line, "missing_key", "no login code, pupil id or tax code: row skipped")
        return None
    if tax:
        earlier = b.pupil_tax_codes.get(tax)
        if earlier and earlier[0] != username:
            b.problem(
                file,
                line,
                "duplicate_tax_code",
                f"pupil tax code also on line {earlier[1]} ({earlier[0]})",
                username,
            )
        b.pupil_tax_codes.setdefault(tax, (username, line))
    birth = _date(b, file, line, "birth_date", row.get("birth_date", ""), username)
    end = _date(b, file, line, "end_date", row.get("end_date", ""), username, past_only=False)
    status = f"{row.get('status', '')} {row.get('status_type', '')}".casefold()
    left = any(word in status for word in LEFT_WORDS) or (end is not None and end <= b.today)
    emails = _addresses(b, file, line, [row.get("email", ""), row.get("email2", "")], username)
    student = _Student(
        username=username,
        line=line,
        file=file,
        first_name=first,
        last_name=last,
        birth_date=birth,
        emails=emails,
        class_name=_class_name(row),
        first_year=row.get("year", "").strip().lstrip("0") == "1",
        left=left,
        language=_language(row.get("language", "")),
        pupil_id=pupil_id,
        tax_code=tax,
    )
    old = b.students.get(username)
    if old is not None:
        b.problem(
            file,
            line,
            "duplicate_pupil",
            f"pupil {username} also on line {old.line}; this row wins",
            username,
        )
    b.students[username] = student
    if pupil_id:
        b.by_pupil[f"id:{pupil_id}"] = username
    if tax:
        b.by_pupil.setdefault(f"cf:{tax}", username)
    return student


def _read_guardian(
    b: _Builder,
    file: str,
    line: int,
    row: Mapping[str, str],
    student: str | None,
    pupil: str | None = None,
) -> None:
    first, last = (
        _name(row.get("guardian_first_name", "")),
        _name(row.get("guardian_last_name", "")),
    )
    code = row.get("guardian_username", "").upper()
    tax = row.get("guardian_tax_code", "").upper().replace(" ", "")
    raw = row.get("guardian_email", "")
    emails = _addresses(b, file, line, [raw], None)
    if not first and not last and not code:
        b.problem(file, line, "missing_name", "guardian without a name: skipped")
        return
    if code:
        username = code
        if not GUARDIAN_CODE.match(code):
            b.problem(
                file, line, "login_code", f"guardian login {code} is not G/X + 7 digits + letter"
            )
    elif tax:
        username = f"tutore-cf-{_key_hash(tax)}"
    else:
        basis = "|".join((last.casefold(), first.casefold(), *(e.casefold() for e in emails)))
        username = f"tutore-{_key_hash(basis if emails else f'{basis}|{student or pupil}')}"
    if tax:
        seen = b.guardian_tax_codes.get(tax)
        if seen and seen[1] != f"{last} {first}".casefold():
            if not code:  # two people, one tax code: keep them apart
                username = f"tutore-{_key_hash(f'{tax}|{last}|{first}'.casefold())}"
            b.problem(
                file,
                line,
                "duplicate_tax_code",
                f"guardian tax code also used for another name ({seen[0]})",
                username,
            )
        b.guardian_tax_codes.setdefault(tax, (username, f"{last} {first}".casefold()))
    if not raw.strip():
        who = f"guardian {last} {first}"
        b.problem(file, line, "missing_address", f"{who} has no address", username)
    guardian = b.guardians.get(username)
    if guardian is None:
        guardian = _Guardian(username, line, file, first or "-", last or "-", [])
        b.guardians[username] = guardian
    for address in emails:
        if address.casefold() not in {e.casefold() for e in guardian.emails}:
            guardian.emails.append(address)
    guardian.language = guardian.language or _language(row.get("guardian_language", ""))
    if student is not None:
        guardian.students.append(student)
    elif pupil is not None:
        b.pending.append((guardian, pupil, line, file))


def _name(text: str) -> str:
    """Names as the register writes them (often upper case) become 'Rossi', 'De Luca'."""
    text = " ".join(text.split())
    return text.title() if text.isupper() or text.islower() else text


def _class_name(row: Mapping[str, str]) -> str | None:
    klass, section = row.get("class", "").strip(), row.get("section", "").strip()
    if klass and section and not klass.endswith(section):
        return f"{klass}{section}"
    return klass or section or None


def _language(value: str) -> str | None:
    code = value.strip().lower()
    return code if re.fullmatch(r"[a-z]{2}", code) and code != "it" else None


def _date(
    b: _Builder,
    file: str,
    line: int,
    column: str,
    value: str,
    who: str,
    *,
    past_only: bool = True,
) -> date | None:
    value = value.strip()
    if not value:
        return None
    parsed = parse_date(value)
    if parsed is None:
        b.problem(file, line, "impossible_date", f"{column} {value!r} is not a date", who)
        return None
    if past_only and (parsed > b.today or parsed.year < 1900):
        b.problem(file, line, "impossible_date", f"{column} {value} is impossible", who)
        return None
    return parsed


def parse_date(value: str) -> date | None:
    """dd/mm/yyyy, yyyy-mm-dd, dd-mm-yyyy, dd/mm/yy, or an Excel serial number."""
    if value.isdigit() and 10000 < int(value) < 80000:
        return EXCEL_EPOCH + timedelta(days=int(value))
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def _addresses(
    b: _Builder, file: str, line: int, values: Sequence[str], who: str | None
) -> list[str]:
    found: list[str] = []
    for value in values:
        for address in re.split(r"[;,\s]+", value.strip()):
            if not address:
                continue
            problem = addr_spec_problem(address)
            if problem:
                b.problem(file, line, "malformed_address", f"{address!r}: {problem}", who)
                continue
            if is_pec(address):
                b.problem(file, line, "pec_address", f"{address} is a PEC address", who)
            if address.casefold() not in {a.casefold() for a in found}:
                found.append(address)
    return found


def is_pec(address: str) -> bool:
    domain = address.rpartition("@")[2].casefold()
    labels = domain.split(".")
    return domain.endswith(PEC_DOMAINS) or "pec" in labels[:-1] or "legalmail" in labels


def _join(b: _Builder) -> None:
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
    return f"alunno-{value}" if kind == "id" else f"alunno-cf-{_key_hash(value)}"


def _records(b: _Builder) -> list[DirectoryRecord]:
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


def _address_problems(b: _Builder) -> None:
    owners: dict[str, list[_Guardian]] = {}
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


def _families(guardians: list[_Guardian]) -> list[list[_Guardian]]:
    """Guardians grouped into families: two are one family when they share a pupil."""
    families: list[tuple[set[str], list[_Guardian]]] = []
    for guardian in guardians:
        pupils = set(guardian.students)
        joined = [f for f in families if f[0] & pupils]
        merged = (pupils.union(*(f[0] for f in joined)), [g for f in joined for g in f[1]])
        merged[1].append(guardian)
        families = [f for f in families if f not in joined] + [merged]
    return [members for _, members in families]


def _students_without_address(b: _Builder) -> None:
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
