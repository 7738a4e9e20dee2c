"""SQLAlchemy repository: people, their addresses and guardianships."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Executable, Select, bindparam, select
from sqlalchemy.orm import Session

from credmail.adapters.db.models import EmailRow, GuardianshipRow, PersonRow
from credmail.adapters.db.repositories._common import core
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
    )


def _people_query(ids: Select[int]) -> Executable:
    """People (with each address, in order) whose ids the subquery selects."""
    return (
        select(
            PersonRow.id,
            PersonRow.username,
            PersonRow.role,
            PersonRow.first_name,
            PersonRow.last_name,
            PersonRow.birth_date,
            PersonRow.language,
            PersonRow.new_student,
            PersonRow.active,
            EmailRow.address,
        )
        .outerjoin(EmailRow, EmailRow.person_id == PersonRow.id)
        .where(PersonRow.id.in_(ids))
        .order_by(PersonRow.username, EmailRow.position, EmailRow.id)
    )


_WITH_ADDRESS = select(EmailRow.person_id).where(EmailRow.address_key == bindparam("address_key"))
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


class SqlDirectory:
    """Reads people with plain column queries (no ORM objects): one query for the people
    and their addresses, one more for guardians' students."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def people_among(self, ids: Select[int]) -> list[Person]:
        """The people whose ids `ids` selects, by username (other repositories' queries)."""
        return self._people(_people_query(ids))

    def _people(self, query: Executable, params: dict[str, Any] | None = None) -> list[Person]:
        rows: dict[int, Any] = {}
        emails: dict[int, list[str]] = {}
        for row in core(self.session).execute(query, params or {}):
            rows.setdefault(row.id, row)
            if row.address is not None:
                emails.setdefault(row.id, []).append(row.address)
        children = self._children([i for i, r in rows.items() if r.role == Role.GUARDIAN.value])
        return [
            Person(
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
            )
            for person_id, row in rows.items()
        ]

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
        return self._people(_PEOPLE_WITH_ADDRESS, {"address_key": address_key})

    def students_of(self, guardian_usernames: Sequence[str]) -> list[Person]:
        return self._people(_STUDENTS_OF, {"usernames": list(guardian_usernames)})

    def guardians_of(self, student_username: str) -> list[Person]:
        return self._people(_GUARDIANS_OF, {"username": student_username})

    def get(self, username: str) -> Person | None:
        found = self._people(_PEOPLE_NAMED, {"username": username})
        return found[0] if found else None
