"""Upsert validated directory records in one transaction (the `directory import` command)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, SQLColumnExpression, delete, func, insert, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from credmail.adapters.db.models import EmailRow, GuardianshipRow, PersonRow, RememberedAddressRow
from credmail.adapters.db.renames import describe_renames, follow_renames, rename_people
from credmail.adapters.db.uow import SqlUnitOfWorkFactory
from credmail.core.addresses import normalize_address
from credmail.core.values import Role
from credmail.service.directory_csv import DirectoryError, DirectoryRecord, student_problem
from credmail.service.ports import AuditEntry, ImportSummary, PersonView


class SqlDirectoryAdmin:
    """The DirectoryAdmin port on the SQL unit of work."""

    def __init__(self, uow: SqlUnitOfWorkFactory) -> None:
        self.uow = uow

    def apply(
        self,
        records: Sequence[DirectoryRecord],
        *,
        prune: bool,
        keep: Callable[[ImportSummary], bool],
        retire: bool = False,
        renames: Mapping[str, str] | None = None,
    ) -> ImportSummary:
        with self.uow() as uow:
            summary = import_records(
                uow.session, records, prune=prune, retire=retire, renames=renames
            )
            if keep(summary):
                uow.commit()
        return summary

    def people(self, username: str | None = None) -> list[PersonView]:
        with self.uow(read_only=True) as uow:
            return people(uow.session, username)

    def roles(self) -> dict[str, Role]:
        with self.uow(read_only=True) as uow:
            return roles_on_file(uow.session)

    def search(self, text: str, limit: int) -> list[PersonView]:
        with self.uow(read_only=True) as uow:
            return search(uow.session, text, limit)

    def set_language(self, username: str, language: str | None, audit: AuditEntry) -> bool:
        with self.uow() as uow:
            if not set_language(uow.session, username, language):
                return False
            uow.audit.add(audit)
            uow.commit()
        return True


def import_records(
    session: Session,
    records: Sequence[DirectoryRecord],
    *,
    prune: bool,
    retire: bool = False,
    renames: Mapping[str, str] | None = None,
) -> ImportSummary:
    """Apply records to the session (the caller commits, or rolls back for --dry-run).
    `renames` (old -> new) are done first: a renamed person is then updated as on file."""
    renamed = rename_people(session, renames or {})
    new_names = set(renamed.values())
    existing = {
        row.username: row
        for row in session.scalars(select(PersonRow).options(selectinload(PersonRow.emails)))
    }
    links = _current_links(session)
    counts = {"added": 0, "updated": 0, "unchanged": 0, "renamed": len(renamed)}
    rows: dict[str, PersonRow | _Added] = {}
    added = [r for r in records if r.username not in existing]
    rows.update(_insert_people(session, added))
    counts["added"] = len(added)
    for record in records:
        row = existing.get(record.username)
        if row is None:
            continue
        elif _same(row, record, links.get(record.username, set())):
            counts["unchanged"] += record.username not in new_names
            rows[record.username] = row
            continue  # nothing to write: a yearly refresh touches only what changed
        else:
            counts["updated"] += record.username not in new_names
        _fill(row, record)
        rows[record.username] = row
    removed = []
    if prune:
        for username, row in existing.items():
            if username not in rows:
                session.delete(row)
                removed.append(_describe(row))
    retired = []
    if retire and not prune:
        for username, row in existing.items():
            if username not in rows and row.role == Role.STUDENT.value and row.active is not False:
                row.active = False
                retired.append(_describe(row))
    session.flush()
    _link_guardians(session, records, rows, {} if prune else existing)
    follow_renames(session, renamed)
    return ImportSummary(
        added=counts["added"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        removed=len(removed),
        before=len(existing),
        removed_people=tuple(removed),
        retired=len(retired),
        retired_people=tuple(retired),
        renamed=counts["renamed"],
        renamed_people=describe_renames(session, renamed),
    )


@dataclass(frozen=True)
class _Added:
    """A person inserted in bulk (no ORM object: what the links need)."""

    id: int
    role: str


def _insert_people(session: Session, records: Sequence[DirectoryRecord]) -> dict[str, _Added]:
    """New people and their addresses in two bulk INSERTs (a first import of a whole
    school is thousands of rows: one ORM object per row is several times slower)."""
    if not records:
        return {}
    values = [
        {
            "username": r.username,
            "role": r.role.value,
            "first_name": r.first_name,
            "last_name": r.last_name,
            "birth_date": r.birth_date,
            "class_name": r.class_name,
            "language": r.language,
            "sex": r.sex,
            "new_student": r.new_student,
            "active": r.active,
        }
        for r in records
    ]
    session.flush()
    found = session.execute(
        insert(PersonRow).returning(PersonRow.id, PersonRow.username), values
    ).all()
    ids = {username: person_id for person_id, username in found}
    emails = [
        {
            "person_id": ids[record.username],
            "position": position,
            "address": address,
            "address_key": key,
        }
        for record in records
        for position, (key, address) in enumerate(_addresses(record).items())
    ]
    if emails:
        session.execute(insert(EmailRow), emails)
    return {r.username: _Added(ids[r.username], r.role.value) for r in records}


def _describe(row: PersonRow) -> str:
    return f"{row.username} ({row.role}, {row.first_name} {row.last_name})"


def _same(row: PersonRow, record: DirectoryRecord, students: set[str]) -> bool:
    return (
        row.role == record.role.value
        and row.first_name == record.first_name
        and row.last_name == record.last_name
        and row.birth_date == record.birth_date
        and row.class_name == record.class_name
        and (record.language is None or row.language == record.language)
        and (record.sex is None or row.sex == record.sex)
        and bool(row.new_student) == record.new_student
        and (row.active is not False) == record.active
        and [e.address for e in row.emails] == list(_addresses(record).values())
        and students == set(record.students)
    )


def _current_links(session: Session, among: Sequence[int] | None = None) -> dict[str, set[str]]:
    """Guardian username -> student usernames, as stored now (one query for the file);
    with `among`, only the links that touch those people."""
    guardian, student = aliased(PersonRow), aliased(PersonRow)
    query = (
        select(guardian.username, student.username)
        .join(GuardianshipRow, GuardianshipRow.guardian_id == guardian.id)
        .join(student, GuardianshipRow.student_id == student.id)
    )
    if among is not None:
        query = query.where(
            or_(GuardianshipRow.guardian_id.in_(among), GuardianshipRow.student_id.in_(among))
        )
    links: dict[str, set[str]] = {}
    for guardian_name, student_name in session.execute(query):
        links.setdefault(guardian_name, set()).add(student_name)
    return links


def _addresses(record: DirectoryRecord) -> dict[str, str]:
    """Key -> address of a record's addresses, in order; two spellings of one address
    (case, a Unicode and an ASCII domain) are one address: the first listed is kept."""
    found: dict[str, str] = {}
    for address in record.emails:
        found.setdefault(normalize_address(address), address)
    return found


def _fill(row: PersonRow, record: DirectoryRecord) -> None:
    row.role = record.role.value
    row.first_name, row.last_name = record.first_name, record.last_name
    row.birth_date, row.class_name = record.birth_date, record.class_name
    if record.language is not None:  # a file without one keeps what the secretariat set
        row.language = record.language
    if record.sex is not None:
        row.sex = record.sex
    row.new_student, row.active = record.new_student, record.active
    kept = {email.address_key: email for email in row.emails}
    emails: list[EmailRow] = []
    for position, (key, address) in enumerate(_addresses(record).items()):
        email = kept.pop(key, None) or EmailRow(address_key=key)
        email.position, email.address = position, address
        emails.append(email)
    row.emails = emails


def _link_guardians(
    session: Session,
    records: Sequence[DirectoryRecord],
    rows: dict[str, PersonRow | _Added],
    existing: dict[str, PersonRow],
) -> None:
    """Replace each record's links: one DELETE per few hundred people and one INSERT, not a
    statement per person (no Guardianship objects live in the session to synchronize)."""
    problems = []
    ids = [rows[record.username].id for record in records]
    for start in range(0, len(ids), 500):
        session.execute(
            delete(GuardianshipRow)
            .where(GuardianshipRow.guardian_id.in_(ids[start : start + 500]))
            .execution_options(synchronize_session=False)
        )
    links = []
    for record in records:
        guardian = rows[record.username]
        for username in dict.fromkeys(record.students):
            student = rows.get(username) or existing.get(username)
            problem = student_problem(username, None if student is None else Role(student.role))
            if student is None or problem:
                problems.append(f"line {record.line}: {problem}")
                continue
            links.append({"guardian_id": guardian.id, "student_id": student.id})
    if problems:
        raise DirectoryError(problems)
    if links:
        session.execute(insert(GuardianshipRow), links)
    session.flush()


def roles_on_file(session: Session) -> dict[str, Role]:
    """Every username on file with its role: `read_directory`'s `on_file`."""
    return {
        name: Role(role)
        for name, role in session.execute(select(PersonRow.username, PersonRow.role))
    }


def people(session: Session, username: str | None = None) -> list[PersonView]:
    """The directory as stored (or one person): the `directory` commands."""
    query = select(PersonRow).options(selectinload(PersonRow.emails)).order_by(PersonRow.username)
    if username is not None:
        query = query.where(PersonRow.username == username)
    rows = list(session.scalars(query))
    links = _current_links(session)
    guardians: dict[str, list[str]] = {}
    for guardian_name, students in links.items():
        for student in students:
            guardians.setdefault(student, []).append(guardian_name)
    return [_view(row, links, guardians) for row in rows]


def search(session: Session, text: str, limit: int) -> list[PersonView]:
    """People whose username, first or last name (or both) or an address contains `text`,
    in any case; at most `limit`, ordered by last name.

    The database stops at the first `limit` matches (no ORDER BY: a broad search does not
    sort thousands of rows only to show fifty); those are then sorted here. SQLite's LIKE
    already ignores ASCII case (lower() on every row would double the scan's cost);
    PostgreSQL uses ILIKE."""
    needle = "%" + text.strip().casefold().replace("\\", "").replace("%", "").replace("_", "") + "%"
    if needle == "%%":
        return []
    sqlite = session.get_bind().dialect.name == "sqlite"

    def has(column: SQLColumnExpression[str]) -> ColumnElement[bool]:
        return column.like(needle) if sqlite else func.lower(column).like(needle)

    by_address = (
        select(EmailRow.person_id)
        .where(EmailRow.address_key.like(needle))
        .union_all(  # an address the secretariat remembered finds the person too
            select(RememberedAddressRow.person_id).where(
                RememberedAddressRow.address_key.like(needle)
            )
        )
    )
    matches = [has(PersonRow.username), PersonRow.id.in_(by_address)]
    if "@" not in needle:
        matches.append(has(PersonRow.first_name + " " + PersonRow.last_name))
        matches.append(has(PersonRow.last_name + " " + PersonRow.first_name))
    query = (
        select(PersonRow).options(selectinload(PersonRow.emails)).where(or_(*matches)).limit(limit)
    )
    rows = sorted(session.scalars(query), key=lambda r: (r.last_name, r.first_name, r.username))
    links = _current_links(session, [row.id for row in rows])
    guardians: dict[str, list[str]] = {}
    for guardian_name, students in links.items():
        for student in students:
            guardians.setdefault(student, []).append(guardian_name)
    return [_view(row, links, guardians) for row in rows]


def set_language(session: Session, username: str, language: str | None) -> bool:
    row = session.scalar(select(PersonRow).where(PersonRow.username == username))
    if row is None:
        return False
    row.language = language
    return True


def _view(
    row: PersonRow, links: dict[str, set[str]], guardians: dict[str, list[str]]
) -> PersonView:
    return PersonView(
        username=row.username,
        role=row.role,
        first_name=row.first_name,
        last_name=row.last_name,
        birth_date=row.birth_date.isoformat() if row.birth_date else None,
        class_name=row.class_name,
        emails=tuple(email.address for email in row.emails),
        students=tuple(sorted(links.get(row.username, ()))),
        guardians=tuple(sorted(guardians.get(row.username, ()))),
        language=row.language,
        active=row.active is not False,
        new_student=bool(row.new_student),
    )
