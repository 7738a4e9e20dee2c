"""What an import of the register's files would change in the directory on file (added,
renamed, new addresses, left, back, new students), and the usernames an import refuses
because they differ from another only in case (the school's LDAP would not tell them apart).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from credmail.core.values import Role
from credmail.service.directory_csv import DirectoryRecord
from credmail.service.import_errors import ImportRefused
from credmail.service.ports import PersonView

CHANGE_KINDS = ("added", "renamed", "address_changed", "left", "returned", "new_student")
CLASHES_SHOWN = 3  # case clashes named in the refusal


@dataclass(frozen=True)
class Change:
    """One difference between the files and the directory on file."""

    kind: str
    username: str
    role: str
    name: str
    detail: str = ""


def changes(
    records: Sequence[DirectoryRecord],
    on_file: Mapping[str, PersonView],
    renames: Mapping[str, str],
    *,
    retire: bool,
) -> tuple[Change, ...]:
    """The differences, record by record; `renames` (old -> new) are the same people under
    the register's code; with `retire`, active students absent from the files have left."""
    found: list[Change] = []
    old_name = {new: old for old, new in renames.items()}
    seen = set(renames)
    for r in records:
        seen.add(r.username)
        name = f"{r.first_name} {r.last_name}"
        was = old_name.get(r.username)
        old = on_file.get(was or r.username)
        if old is None:
            found.append(Change("added", r.username, r.role.value, name))
        elif was is not None:
            detail = f"{was} -> {r.username}"
            found.append(Change("renamed", r.username, r.role.value, name, detail))
        if old is not None:
            before = {a.casefold() for a in old.emails}
            if before != {a.casefold() for a in r.emails}:
                detail = f"{'; '.join(old.emails) or '-'} -> {'; '.join(r.emails) or '-'}"
                found.append(Change("address_changed", r.username, r.role.value, name, detail))
        found += _enrolment(r, old, name)
    if retire:
        for username, person in sorted(on_file.items()):
            if username not in seen and person.role == Role.STUDENT.value and person.active:
                name = f"{person.first_name} {person.last_name}"
                found.append(Change("left", username, person.role, name, "absent from the files"))
    return tuple(found)


def _enrolment(r: DirectoryRecord, old: PersonView | None, name: str) -> list[Change]:
    if r.role is not Role.STUDENT:
        return []
    found = []
    if not r.active and old is not None and old.active:
        found.append(Change("left", r.username, r.role.value, name, "per the register"))
    if r.active and old is not None and not old.active:
        found.append(Change("returned", r.username, r.role.value, name))
    if r.new_student and r.active:
        found.append(Change("new_student", r.username, r.role.value, name))
    return found


def refuse_case_clashes(usernames: Iterable[str], on_file: Iterable[str]) -> None:
    """ImportRefused when two usernames of the file, or one of the file and another on file,
    differ only in case (`G1001`, `g1001`): LDAP and the register match names in any case,
    so one family could set the other's password."""
    clashes: list[tuple[str, str, bool]] = []  # (in the file, the other, the other on file)
    spellings: dict[str, str] = {}
    for name in usernames:
        first = spellings.setdefault(name.casefold(), name)
        if first != name:
            clashes.append((first, name, False))
    in_file = set(spellings.values())
    for name in on_file:
        match = spellings.get(name.casefold())
        if match is not None and match != name and name not in in_file:
            clashes.append((match, name, True))
    if clashes:
        raise ImportRefused(
            f"usernames that differ only in case: {_listed(clashes, 'on file')}; correct the file",
            "codici utente che differiscono solo per maiuscole e minuscole: "
            f"{_listed(clashes, 'già in rubrica')}; correggere il file e riprovare",
        )


def _listed(clashes: list[tuple[str, str, bool]], on_file: str) -> str:
    shown = [f"{a} / {b}" + (f" ({on_file})" if kept else "") for a, b, kept in clashes]
    more = " …" if len(shown) > CLASHES_SHOWN else ""
    return ", ".join(shown[:CLASHES_SHOWN]) + more
