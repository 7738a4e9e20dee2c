"""SQLAlchemy repository: people, their addresses and guardianships."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from credmail.adapters.db.models import EmailRow, GuardianshipRow, PersonRow
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


class SqlDirectory:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _people(self, query: Select[PersonRow]) -> list[Person]:
        rows = list(self.session.scalars(query.options(selectinload(PersonRow.emails))).unique())
        children = self._children([row.id for row in rows if row.role == Role.GUARDIAN.value])
        return [to_person(row, children.get(row.id, ())) for row in rows]

    def _children(self, guardian_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each guardian's students' usernames (Person.students), in one query."""
        if not guardian_ids:
            return {}
        query = (
            select(GuardianshipRow.guardian_id, PersonRow.username)
            .join(PersonRow, PersonRow.id == GuardianshipRow.student_id)
            .where(GuardianshipRow.guardian_id.in_(guardian_ids))
            .order_by(PersonRow.username)
        )
        found: dict[int, list[str]] = {}
        for guardian_id, username in self.session.execute(query):
            found.setdefault(guardian_id, []).append(username)
        return found

    def people_with_address(self, address_key: str) -> list[Person]:
        query = select(PersonRow).join(EmailRow).where(EmailRow.address_key == address_key)
        return self._people(query.order_by(PersonRow.username))

    def students_of(self, guardian_usernames: Sequence[str]) -> list[Person]:
        guardian = select(PersonRow.id).where(PersonRow.username.in_(guardian_usernames))
        student_ids = select(GuardianshipRow.student_id).where(
            GuardianshipRow.guardian_id.in_(guardian)
        )
        query = select(PersonRow).where(PersonRow.id.in_(student_ids))
        return self._people(query.order_by(PersonRow.username))

    def guardians_of(self, student_username: str) -> list[Person]:
        student = select(PersonRow.id).where(PersonRow.username == student_username)
        guardian_ids = select(GuardianshipRow.guardian_id).where(
            GuardianshipRow.student_id.in_(student)
        )
        query = select(PersonRow).where(PersonRow.id.in_(guardian_ids))
        return self._people(query.order_by(PersonRow.username))

    def get(self, username: str) -> Person | None:
        found = self._people(select(PersonRow).where(PersonRow.username == username))
        return found[0] if found else None
