"""One row of a register export read into a pupil or a guardian: names, keys, dates and
addresses; what is wrong with a row becomes a Problem (the row is skipped, a bad address
dropped), never an exception."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from credmail.core.values import sex_code
from credmail.service.directory_csv import addr_spec_problem
from credmail.service.register_columns import PARENT_PARTS

STUDENT_CODE = re.compile(r"S\d{7}[A-Z]\Z")
GUARDIAN_CODE = re.compile(r"[GX]\d{7}[A-Z]\Z")
# usernames made when a file has no login code: the register's own code must be looked up
STUDENT_REFERENCE, GUARDIAN_REFERENCE = "alunno-", "tutore-"


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
    "username_taken",
)


@dataclass
class Student:
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
    sex: str | None = None


@dataclass
class Guardian:
    username: str
    line: int
    file: str
    first_name: str
    last_name: str
    emails: list[str]
    students: list[str] = field(default_factory=list)
    language: str | None = None
    tax_code: str | None = None


@dataclass
class Builder:
    today: date
    on_file: Mapping[str, str] = field(default_factory=dict)  # username -> role
    students: dict[str, Student] = field(default_factory=dict)
    guardians: dict[str, Guardian] = field(default_factory=dict)
    by_pupil: dict[str, str] = field(default_factory=dict)  # "id:…"/"cf:…" -> username
    pupil_tax_codes: dict[str, tuple[str, int]] = field(default_factory=dict)
    guardian_tax_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    pending: list[tuple[Guardian, str, int, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def problem(
        self, file: str, line: int | None, code: str, detail: str, who: str | None = None
    ) -> None:
        self.problems.append(Problem(file, line, code, detail, who))


def read_row(b: Builder, file: str, line: int, kind: str, row: dict[str, str]) -> None:
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


def key_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def student_reference(pupil_id: str | None, tax_code: str | None) -> str:
    """The username credmail makes up for a pupil with no login code: from the register's
    pupil id, else from a hash of the tax code."""
    if pupil_id:
        return f"{STUDENT_REFERENCE}{pupil_id}"
    if tax_code:
        return f"{STUDENT_REFERENCE}cf-{key_hash(tax_code)}"
    raise ValueError("a pupil id or a tax code is needed")


def guardian_reference(tax_code: str) -> str:
    """The username credmail makes up for a guardian with a tax code but no login code."""
    return f"{GUARDIAN_REFERENCE}cf-{key_hash(tax_code)}"


def _read_student(b: Builder, file: str, line: int, row: dict[str, str]) -> Student | None:
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
    elif pupil_id or tax:
        username = student_reference(pupil_id, tax)
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
    student = Student(
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
        sex=_sex(row.get("sex", "")),
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
    b: Builder,
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
        username = guardian_reference(tax)
    else:
        basis = "|".join((last.casefold(), first.casefold(), *(e.casefold() for e in emails)))
        username = f"tutore-{key_hash(basis if emails else f'{basis}|{student or pupil}')}"
    if tax:
        seen = b.guardian_tax_codes.get(tax)
        if seen and seen[1] != f"{last} {first}".casefold():
            if not code:  # two people, one tax code: keep them apart
                username = f"tutore-{key_hash(f'{tax}|{last}|{first}'.casefold())}"
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
        guardian = Guardian(username, line, file, first or "-", last or "-", [])
        b.guardians[username] = guardian
    guardian.tax_code = guardian.tax_code or tax or None
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


def _sex(value: str) -> str | None:
    """The register's Sesso (M/F): anything else is left unknown (neutral words)."""
    try:
        return sex_code(value)
    except ValueError:
        return None


def _language(value: str) -> str | None:
    code = value.strip().lower()
    return code if re.fullmatch(r"[a-z]{2}", code) and code != "it" else None


def _date(
    b: Builder,
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
    serial = int(value) if value.isascii() and value.isdigit() and len(value) < 10 else 0
    if 10000 < serial < 80000:
        return EXCEL_EPOCH + timedelta(days=serial)
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def _addresses(
    b: Builder, file: str, line: int, values: Sequence[str], who: str | None
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
