"""SQLAlchemy repository: people, their addresses and guardianships."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import CompoundSelect, Executable, Select, bindparam, select
from sqlalchemy.orm import Session

from credmail.adapters.db.models import EmailRow, GuardianshipRow, PersonRow, RememberedAddressRow
from credmail.adapters.db.repositories._common import core, storable
from credmail.core.values import Person, Role


def to_person(row: PersonRow, students: Sequence[str] = ()) -> Person:
    return Person(
        username=row.username,
        role=Role(row.role),
        first_name=row.first_name,
        last_name=row.last_name,
        birth_date=row.birth_date,
        emails=tuple(email.address for email in row.emails),
        students=tuple(students),
        language=row.language,
        new_student=bool(row.new_student),
        active=row.active is not False,
        sex=row.sex,
    )


def _people_query(ids: Select[Any] | CompoundSelect[Any]) -> Executable:
    """People (with each address, in order) whose ids the subquery selects. An address
    the secretariat remembered for a person (`remembered_addresses`) is on file too,
    after the register's: a second outer join (an empty table costs nothing), the
    repeated rows it makes dropped when the rows are read."""
    return (
        select(
            PersonRow.id,
            PersonRow.username,
            PersonRow.role,
            PersonRow.first_name,
            PersonRow.last_name,
            PersonRow.birth_date,
            PersonRow.language,
            PersonRow.sex,
            PersonRow.new_student,
            PersonRow.active,
            EmailRow.address,
            RememberedAddressRow.address.label("remembered"),
        )
        .outerjoin(EmailRow, EmailRow.person_id == PersonRow.id)
        .outerjoin(RememberedAddressRow, RememberedAddressRow.person_id == PersonRow.id)
        .where(PersonRow.id.in_(ids))
        .order_by(PersonRow.username, EmailRow.position, EmailRow.id, RememberedAddressRow.id)
    )


_WITH_ADDRESS = (
    select(EmailRow.person_id)
    .where(EmailRow.address_key == bindparam("address_key"))
    .union_all(
        select(RememberedAddressRow.person_id).where(
            RememberedAddressRow.address_key == bindparam("address_key")
        )
    )
)
_PEOPLE_WITH_ADDRESS = _people_query(_WITH_ADDRESS)
_NAMED = select(PersonRow.id).where(PersonRow.username == bindparam("username"))
_PEOPLE_NAMED = _people_query(_NAMED)
_GUARDIANS = select(PersonRow.id).where(
    PersonRow.username.in_(bindparam("usernames", expanding=True))
)
_STUDENTS_OF = _people_query(
    select(GuardianshipRow.student_id).where(GuardianshipRow.guardian_id.in_(_GUARDIANS))
)
_GUARDIANS_OF = _people_query(
    select(GuardianshipRow.guardian_id).where(GuardianshipRow.student_id.in_(_NAMED))
)
_CHILDREN = (
    select(GuardianshipRow.guardian_id, PersonRow.username)
    .join(PersonRow, PersonRow.id == GuardianshipRow.student_id)
    .where(GuardianshipRow.guardian_id.in_(bindparam("ids", expanding=True)))
    .order_by(PersonRow.username)
)


_OWNERS = (
    select(EmailRow.address_key, EmailRow.person_id)
    .where(EmailRow.address_key.in_(bindparam("keys", expanding=True)))
    .union_all(
        select(RememberedAddressRow.address_key, RememberedAddressRow.person_id).where(
            RememberedAddressRow.address_key.in_(bindparam("keys", expanding=True))
        )
    )
)
_PEOPLE_BY_ID = _people_query(
    select(PersonRow.id).where(PersonRow.id.in_(bindparam("ids", expanding=True)))
)


class SqlDirectory:
    """Reads people with plain column queries (no ORM objects): one query for the people
    and their addresses, one more for guardians' students.

    `prefetch` (once per unit of work) reads the people of a whole batch's senders, and
    their students, in four queries; within this unit of work `people_with_address` and
    `students_of` then answer from memory for them, in the database's order (the pipeline
    never writes the directory)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._at: dict[str, list[Person]] = {}
        self._students_of: dict[str, set[str]] = {}
        self._students: list[Person] = []

    def people_among(self, ids: Select[int]) -> list[Person]:
        """The people whose ids `ids` selects, by username (other repositories' queries)."""
        return self._people(_people_query(ids))

    def prefetch(self, address_keys: Sequence[str]) -> list[Person]:
        """The people at any of the addresses (each once), remembered per address."""
        keys = storable(address_keys)
        if not keys:
            return []
        owners: dict[str, set[int]] = {key: set() for key in keys}
        for key, person_id in core(self.session).execute(_OWNERS, {"keys": keys}):
            owners[key].add(person_id)
        ids = sorted(set().union(*owners.values()))
        people = self._people_by_id(_PEOPLE_BY_ID, {"ids": ids}) if ids else {}
        for key, found in owners.items():
            self._at[key] = [person for i, person in people.items() if i in found]
        self._students_of = {p.username: set(p.students) for p in people.values()}
        guardians = sorted(name for name, students in self._students_of.items() if students)
        self._students = self._people(_STUDENTS_OF, {"usernames": guardians}) if guardians else []
        return list(people.values())

    def _people(self, query: Executable, params: dict[str, Any] | None = None) -> list[Person]:
        return list(self._people_by_id(query, params).values())

    def _people_by_id(
        self, query: Executable, params: dict[str, Any] | None = None
    ) -> dict[int, Person]:
        rows: dict[int, Any] = {}
        emails: dict[int, dict[str, None]] = {}
        remembered: dict[int, dict[str, None]] = {}
        for row in core(self.session).execute(query, params or {}):
            rows.setdefault(row.id, row)
            if row.address is not None:
                emails.setdefault(row.id, {})[row.address] = None
            if row.remembered is not None:
                remembered.setdefault(row.id, {})[row.remembered] = None
        for person_id, extra in remembered.items():  # after the register's, each once
            emails.setdefault(person_id, {}).update(extra)
        children = self._children([i for i, r in rows.items() if r.role == Role.GUARDIAN.value])
        return {
            person_id: Person(
                username=row.username,
                role=Role(row.role),
                first_name=row.first_name,
                last_name=row.last_name,
                birth_date=row.birth_date,
                emails=tuple(emails.get(person_id, ())),
                students=tuple(children.get(person_id, ())),
                language=row.language,
                new_student=bool(row.new_student),
                active=row.active is not False,
                sex=row.sex,
            )
            for person_id, row in rows.items()
        }

    def _children(self, guardian_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each guardian's students' usernames (Person.students), in one query."""
        if not guardian_ids:
            return {}
        found: dict[int, list[str]] = {}
        rows = core(self.session).execute(_CHILDREN, {"ids": list(guardian_ids)})
        for guardian_id, username in rows:
            found.setdefault(guardian_id, []).append(username)
        return found

    def people_with_address(self, address_key: str) -> list[Person]:
        if address_key in self._at:
            return list(self._at[address_key])
        return self._people(_PEOPLE_WITH_ADDRESS, {"address_key": address_key})

    def students_of(self, guardian_usernames: Sequence[str]) -> list[Person]:
        if all(name in self._students_of for name in guardian_usernames):  # in database order
            wanted = set().union(*(self._students_of[name] for name in guardian_usernames))
            return [student for student in self._students if student.username in wanted]
        return self._people(_STUDENTS_OF, {"usernames": list(guardian_usernames)})

    def guardians_of(self, student_username: str) -> list[Person]:
        return self._people(_GUARDIANS_OF, {"username": student_username})

    def get(self, username: str) -> Person | None:
        found = self._people(_PEOPLE_NAMED, {"username": username})
        return found[0] if found else None
