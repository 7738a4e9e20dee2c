"""Which column of a register export fills which field: the built-in header aliases, a saved
mapping (TOML, as `directory mapping init` writes it), the header row and the file's layout."""

from __future__ import annotations

import itertools
import re
import tomllib
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from credmail.service.import_errors import DirectoryError, ImportRefused
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
    "sex",
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
    "sex": ("sesso", "sex", "genere", "sesso alunno"),
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


@dataclass(frozen=True)
class ColumnMapping:
    """A saved column mapping: normalized header -> field ('' = ignored)."""

    name: str
    layout: str | None
    columns: dict[str, str]


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
    found = find_header(sheet, mapping)
    if found is None:
        raise ImportRefused(
            "no header row in the first rows",
            "nelle prime righe non c'è l'intestazione delle colonne",
            sheet.name,
        )
    line, header, _ = found
    columns = column_fields(header, mapping)
    layout = layout_of(set(columns.values()))
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


def find_header(
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


def column_fields(header: list[str], mapping: ColumnMapping | None) -> dict[int, str]:
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


def layout_of(fields: set[str]) -> str | None:
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
