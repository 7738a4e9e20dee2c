"""SQLAlchemy repository: addresses the secretariat added to a person on approving a
request (kept apart from the register's `person_emails`, so a re-import keeps them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from credmail.adapters.db.models import PersonRow, RememberedAddressRow
from credmail.adapters.db.repositories._common import rowcount
from credmail.core.addresses import address_key
from credmail.service.ports import RememberedAddress

_LISTED = select(RememberedAddressRow, PersonRow.username).join(
    PersonRow, PersonRow.id == RememberedAddressRow.person_id
)


def _entry(row: RememberedAddressRow, username: str) -> RememberedAddress:
    return RememberedAddress(
        id=row.id,
        username=username,
        address=row.address,
        added_by=row.added_by,
        added_at=row.added_at,
        review_id=row.review_id,
    )


class SqlRemembered:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _listed(self, query: Select[RememberedAddressRow, str]) -> list[RememberedAddress]:
        rows = self.session.execute(query.order_by(RememberedAddressRow.id))
        return [_entry(row, username) for row, username in rows]

    def add(
        self, username: str, address: str, by: str, now: datetime, review_id: int | None
    ) -> bool:
        """False when the person is not on file, the address has no key, or it is there."""
        key = address_key(address)
        person_id = self.session.scalar(select(PersonRow.id).where(PersonRow.username == username))
        if key is None or person_id is None:
            return False
        there = select(RememberedAddressRow.id).where(
            RememberedAddressRow.person_id == person_id, RememberedAddressRow.address_key == key
        )
        if self.session.scalar(there) is not None:
            return False
        self.session.add(
            RememberedAddressRow(
                person_id=person_id,
                address=address,
                address_key=key,
                added_by=by,
                added_at=now,
                review_id=review_id,
            )
        )
        self.session.flush()
        return True

    def for_person(self, username: str) -> list[RememberedAddress]:
        return self._listed(_LISTED.where(PersonRow.username == username))

    def remove(self, entry_id: int, username: str) -> RememberedAddress | None:
        query = _LISTED.where(RememberedAddressRow.id == entry_id, PersonRow.username == username)
        found = self._listed(query)
        if not found:
            return None
        self.session.execute(
            delete(RememberedAddressRow).where(RememberedAddressRow.id == entry_id)
        )
        return found[0]

    def for_address(self, address_key: str) -> list[RememberedAddress]:
        return self._listed(_LISTED.where(RememberedAddressRow.address_key == address_key))

    def forget_address(self, address_key: str) -> int:
        query = delete(RememberedAddressRow).where(RememberedAddressRow.address_key == address_key)
        return rowcount(self.session.execute(query))
