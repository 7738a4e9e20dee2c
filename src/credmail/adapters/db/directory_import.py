"""Upsert validated directory records in one transaction (the `directory import` command)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, aliased, selectinload

from credmail.adapters.db.models import EmailRow, GuardianshipRow, PersonRow
from credmail.core.addresses import normalize_address
from credmail.core.values import Role
from credmail.service.directory_csv import DirectoryError, DirectoryRecord, student_problem


@dataclass
class ImportSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    changed_usernames: list[str] = field(default_factory=list)
    before: int = 0
    removed_people: list[str] = field(default_factory=list)

    def prune_refusal(self, max_share: float) -> str | None:
        """Why this prune is refused without --force: it removes too much of the directory."""
        if not self.removed or self.removed <= max_share * self.before:
            return None
        return (
            f"refusing to remove {self.removed} of {self.before} people "
            f"({self.removed / self.before:.0%}), more than directory.max_prune_share "
            f"({max_share:.0%}); check the file, or use --force"
        )

    def as_text(self) -> str:
        return (
            f"added {self.added}, updated {self.updated}, "
            f"unchanged {self.unchanged}, removed {self.removed}"
        )


def import_records(
    session: Session, records: Sequence[DirectoryRecord], *, prune: bool
) -> ImportSummary:
    """Apply records to the session (the caller commits, or rolls back for --dry-run)."""
    existing = {
        row.username: row
        for row in session.scalars(select(PersonRow).options(selectinload(PersonRow.emails)))
    }
    links = _current_links(session)
    summary = ImportSummary(before=len(existing))
    rows = {}
    for record in records:
        row = existing.get(record.username)
        if row is None:
            row = PersonRow(username=record.username)
            session.add(row)
            summary.added += 1
        elif _same(row, record, links.get(record.username, set())):
            summary.unchanged += 1
        else:
            summary.updated += 1
        _fill(row, record)
        rows[record.username] = row
    if prune:
        for username, row in existing.items():
            if username not in rows:
                session.delete(row)
                summary.removed += 1
                summary.removed_people.append(_describe(row))
    session.flush()
    _link_guardians(session, records, rows, {} if prune else existing)
    return summary


def _describe(row: PersonRow) -> str:
    return f"{row.username} ({row.role}, {row.first_name} {row.last_name})"


def _same(row: PersonRow, record: DirectoryRecord, students: set[str]) -> bool:
    return (
        row.role == record.role.value
        and row.first_name == record.first_name
        and row.last_name == record.last_name
        and row.birth_date == record.birth_date
        and row.class_name == record.class_name
        and [e.address for e in row.emails] == list(record.emails)
        and students == set(record.students)
    )


def _current_links(session: Session) -> dict[str, set[str]]:
    """Guardian username -> student usernames, as stored now (one query for the file)."""
    guardian, student = aliased(PersonRow), aliased(PersonRow)
    query = (
        select(guardian.username, student.username)
        .join(GuardianshipRow, GuardianshipRow.guardian_id == guardian.id)
        .join(student, GuardianshipRow.student_id == student.id)
    )
    links: dict[str, set[str]] = {}
    for guardian_name, student_name in session.execute(query):
        links.setdefault(guardian_name, set()).add(student_name)
    return links


def _fill(row: PersonRow, record: DirectoryRecord) -> None:
    row.role = record.role.value
    row.first_name, row.last_name = record.first_name, record.last_name
    row.birth_date, row.class_name = record.birth_date, record.class_name
    kept = {email.address_key: email for email in row.emails}
    emails = []
    for position, address in enumerate(dict.fromkeys(record.emails)):
        key = normalize_address(address)
        email = kept.pop(key, None) or EmailRow(address_key=key)
        email.position, email.address = position, address
        emails.append(email)
    row.emails = emails


def _link_guardians(
    session: Session,
    records: Sequence[DirectoryRecord],
    rows: dict[str, PersonRow],
    existing: dict[str, PersonRow],
) -> None:
    problems = []
    for record in records:
        guardian = rows[record.username]
        session.execute(delete(GuardianshipRow).where(GuardianshipRow.guardian_id == guardian.id))
        for username in dict.fromkeys(record.students):
            student = rows.get(username) or existing.get(username)
            problem = student_problem(username, None if student is None else Role(student.role))
            if student is None or problem:
                problems.append(f"line {record.line}: {problem}")
                continue
            session.add(GuardianshipRow(guardian_id=guardian.id, student_id=student.id))
    if problems:
        raise DirectoryError(problems)
    session.flush()


def roles_on_file(session: Session) -> dict[str, Role]:
    """Every username on file with its role: `read_directory`'s `on_file`."""
    return {
        name: Role(role)
        for name, role in session.execute(select(PersonRow.username, PersonRow.role))
    }


def people(session: Session, username: str | None = None) -> list[dict[str, Any]]:
    """The directory as stored (or one person), ready for JSON: the `directory` commands."""
    query = select(PersonRow).options(selectinload(PersonRow.emails)).order_by(PersonRow.username)
    if username is not None:
        query = query.where(PersonRow.username == username)
    rows = list(session.scalars(query))
    links = _current_links(session)
    guardians: dict[str, list[str]] = {}
    for guardian_name, students in links.items():
        for student in students:
            guardians.setdefault(student, []).append(guardian_name)
    return [_as_json(row, links, guardians) for row in rows]


def _as_json(
    row: PersonRow, links: dict[str, set[str]], guardians: dict[str, list[str]]
) -> dict[str, Any]:
    return {
        "username": row.username,
        "role": row.role,
        "first_name": row.first_name,
        "last_name": row.last_name,
        "birth_date": row.birth_date.isoformat() if row.birth_date else None,
        "class": row.class_name,
        "emails": [email.address for email in row.emails],
        "students": sorted(links.get(row.username, ())),
        "guardians": sorted(guardians.get(row.username, ())),
    }
