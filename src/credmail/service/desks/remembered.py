"""Remembered addresses: on approving a request from an address not on file, the
reviewer may add it to the person ("ricorda"). It is then on file like the register's
addresses (verify, recipients and the links read it through the directory), kept in its
own table so a re-import of the register does not wipe it, and removable from the
person's page. Each addition and removal is in the activity log (without the address:
the log is kept longer than the directory)."""

from __future__ import annotations

from dataclasses import dataclass

from credmail.core.recipients import request_kind_of
from credmail.core.values import Person
from credmail.service.desks.base import DeskError
from credmail.service.ports import (
    RememberedAddress,
    ReviewItem,
    UnitOfWork,
    UnitOfWorkFactory,
)
from credmail.service.review import (
    Actor,
    AlreadyDecided,
    ReviewDesk,
    ReviewError,
    audit_entry,
    check_rememberable,
)


@dataclass(frozen=True)
class Proposal:
    """What approving `item` for `person` with its sender remembered would do (the
    console's confirmation page): the link's kind, and who may get the address."""

    item: ReviewItem
    person: Person
    link: str  # "adult" | "student"
    owners: tuple[Person, ...]  # the person, or a minor student's guardians
    refusal: str | None = None  # why the sender may not be added (then it is not offered)


def _refusal(uow: UnitOfWork, item: ReviewItem) -> str | None:
    try:
        check_rememberable(uow, item)
    except ReviewError as refused:
        return str(refused)
    return None


class RememberedDesk:
    """The review page's proposal, the person's page: the addresses the secretariat
    added, and removing one."""

    def __init__(self, uow: UnitOfWorkFactory, review: ReviewDesk) -> None:
        self.uow, self.review = uow, review
        self.clock, self.timezone = review.clock, review.timezone

    def proposal(self, item_id: int, username: str) -> Proposal:
        today = self.clock().astimezone(self.timezone).date()
        with self.uow(read_only=True) as uow:
            item = uow.review.get(item_id)
            if item is None:
                raise ReviewError(f"nessuna richiesta con id {item_id}")
            if item.status != "pending":
                raise AlreadyDecided(item_id, item.decided_by, item.status)
            person = uow.directory.get(username)
            if person is None:
                raise ReviewError(f"nessuna persona con codice {username}")
            refusal = _refusal(uow, item)
            minor = person.is_minor_on(today)
            owners = tuple(uow.directory.guardians_of(username)) if minor else (person,)
        if not owners:
            raise ReviewError(f"{username} è minorenne e non ha genitori/tutori in rubrica")
        return Proposal(item, person, request_kind_of(person, today), owners, refusal)

    def listing(self, username: str) -> list[RememberedAddress]:
        with self.uow(read_only=True) as uow:
            return uow.remembered.for_person(username)

    def remove(self, username: str, entry_id: int, actor: Actor) -> RememberedAddress:
        """Off file: later requests from it go to review again, and a link already sent to
        it stops working (the person's record changed)."""
        self.review.authorize(actor)  # who may decide requests may undo this
        now = self.clock()
        with self.uow() as uow:
            gone = uow.remembered.remove(entry_id, username)
            if gone is None:
                raise DeskError(f"nessun indirizzo aggiunto con numero {entry_id} per {username}")
            detail = f"indirizzo aggiunto il {gone.added_at:%Y-%m-%d} da {gone.added_by} rimosso"
            uow.audit.add(
                audit_entry(actor, now, "directory.unremember", f"persona {username}", detail)
            )
            uow.commit()
        return gone
