"""The secretariat's review queue: list, show, approve, reject, discard.

Refusals are worded for the secretariat and name no command-line flag: each door adds
its own way to confirm (the CLI its flags, the console a second step in the page)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from credmail.core.addresses import normalize_address
from credmail.core.parse import parse_message
from credmail.core.recipients import link_kind, matching, recipients, request_kind_of
from credmail.core.values import Person, SendLink, SendReply
from credmail.service.outbox.queue import Mailer
from credmail.service.ports import (
    AuditEntry,
    Clock,
    ReviewFilter,
    ReviewItem,
    ReviewStatus,
    UnitOfWork,
    UnitOfWorkFactory,
)
from credmail.service.presentation import (
    decider_label,
    decision_label,
    kind_label,
    link_label,
    template_label,
)
from credmail.service.review_choices import Choice, approval_choices
from credmail.service.review_message import PEC_HEADERS as PEC_HEADERS
from credmail.service.review_message import SHOWN_HEADERS as SHOWN_HEADERS
from credmail.service.review_message import Attachment, extras, summary, with_pec
from credmail.service.review_message import html_to_text as html_to_text

TEMPLATE_REJECTED = "review_rejected"
NOTHING_SENT = "nessun messaggio"


class ReviewError(Exception):
    """A review command that cannot be carried out, worded for the secretariat."""


class AlreadyDecided(ReviewError):
    """Someone else decided the item first (the console shows "già deciso da …")."""

    def __init__(self, item_id: int, by: str | None, decision: str | None) -> None:
        self.by, self.decision = by or "?", decision_label(decision)
        super().__init__(
            f"la richiesta {item_id} è già stata decisa ({self.decision}): "
            f"già deciso da {decider_label(self.by)}"
        )


class KindMismatch(ReviewError):
    """The person's link is not what the request asked for: approvable once confirmed."""

    def __init__(self, username: str, asked: str, gets: str) -> None:
        self.gets = gets
        super().__init__(
            f"la richiesta chiede {kind_label(asked)}, ma {username} "
            f"riceverebbe il collegamento {link_label(gets)}"
        )


class NotACandidate(ReviewError):
    """The person is not among those the request could concern: approvable once confirmed
    (a mistyped code would otherwise revoke a stranger's live link)."""

    def __init__(self, username: str, candidates: Sequence[str]) -> None:
        super().__init__(
            f"{username} non è tra le persone collegate al mittente della richiesta "
            f"(candidati: {', '.join(candidates) or 'nessuno'})"
        )


class AddressNeeded(ReviewError):
    """Several addresses may receive the link: one must be chosen."""

    def __init__(self, username: str, addresses: Sequence[str]) -> None:
        super().__init__(
            f"{username} ha {len(addresses)} indirizzi possibili ({', '.join(addresses)}): "
            "sceglierne uno"
        )


class NotPermitted(Exception):
    """The signed-in staff member's role does not allow this action."""


OPERATOR, ADMINISTRATOR = "operatore", "amministratore"
STAFF_ROLES = (OPERATOR, ADMINISTRATOR)
ADMIN_ONLY = frozenset(
    {"directory.import", "staff.manage", "limits.reset", "stats.view", "campaign.manage"}
)
"""Operators decide requests, work register tasks and set a person's language;
administrators also import the directory, manage staff, reset the limits breaker, read
the statistics and run the September mailing."""


@dataclass(frozen=True)
class Actor:
    """Who decides: the OS user (CLI) or an authenticated session (web), never a flag.

    At the terminal the OS already grants everything (whoever runs the command can write
    the database); in the console the staff member's `role` decides."""

    name: str
    source: Literal["cli", "web"]
    role: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.source})"

    def may(self, permission: str) -> bool:
        if self.source == "cli":
            return True
        if self.role == ADMINISTRATOR:
            return True
        return self.role == OPERATOR and permission not in ADMIN_ONLY

    def require(self, permission: str) -> None:
        if not self.may(permission):
            raise NotPermitted(f"{self.name} non ha il permesso per questa operazione")


def audit_entry(
    actor: Actor, now: datetime, action: str, item: str | None, detail: str | None = None
) -> AuditEntry:
    return AuditEntry(now, actor.name, actor.source, action, item, detail)


@dataclass(frozen=True)
class Candidate:
    """A person on file with the sender's address, and a guardian's students."""

    person: Person
    children: tuple[Person, ...] = ()


@dataclass(frozen=True)
class ReviewDetail:
    item: ReviewItem
    headers: dict[str, str]
    text: str
    people: list[Candidate]
    attachments: tuple[Attachment, ...] = ()
    authentication: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()  # the approvals a pending item offers (console)


@dataclass(frozen=True)
class Approval:
    """What an approval queued, and the addresses of the still-valid links it revoked."""

    template: str
    username: str
    to: str
    revoked: tuple[str, ...] = ()
    remembered_for: str | None = None  # the sender's address was added to this person


class ReviewDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        mailer: Mailer,
        clock: Clock,
        timezone: ZoneInfo,
        staff: tuple[str, ...] = (),
    ) -> None:
        self.uow, self.mailer = uow, mailer
        self.clock, self.timezone, self.staff = clock, timezone, staff

    def authorize(self, actor: Actor) -> None:
        """May `actor` decide requests (`review.staff`, then the role)?"""
        if self.staff and actor.name not in self.staff:
            raise ReviewError(f"{actor.name} non è tra il personale autorizzato alla revisione")
        actor.require("review.decide")

    def pending(self) -> list[ReviewItem]:
        """The queue: pending items, a deferred one only once its date came."""
        with self.uow(read_only=True) as uow:
            return uow.review.pending(self.clock())

    def queue(
        self, where: ReviewFilter, limit: int = 50, offset: int = 0
    ) -> tuple[list[ReviewItem], int]:
        """A page of the pending items matching `where` (without their raw messages)."""
        with self.uow(read_only=True) as uow:
            return uow.review.queue(where, limit, offset)

    def _decide(
        self,
        uow: UnitOfWork,
        item: ReviewItem,
        decision: ReviewStatus,
        actor: Actor,
        now: datetime,
        note: str | None,
        sent: str,
    ) -> None:
        """Record the decision and its audit entry; the loser of a race learns who won."""
        if not uow.review.record_decision(item.id, decision, str(actor), now, note, sent):
            won = uow.review.get(item.id)
            raise AlreadyDecided(
                item.id, won.decided_by if won else None, won.status if won else None
            )
        detail = sent if not note else f"{sent}; nota: {note}"
        uow.audit.add(audit_entry(actor, now, f"review.{decision}", f"richiesta {item.id}", detail))

    def show(self, item_id: int) -> ReviewDetail:
        with self.uow(read_only=True) as uow:
            item = self._item(uow, item_id)
            pec = parse_message(item.raw).pec if item.raw else None
            sender = pec.sender if pec and pec.sender else item.sender  # PEC: the original's
            people = uow.directory.people_with_address(sender) if sender else []
            candidates = [_candidate(uow, person) for person in people]
            choices = self._choices(uow, item, sender, candidates)
        headers, text = with_pec(pec, *summary(item.raw or b""))
        attachments, authentication = extras(item.raw or b"")
        return ReviewDetail(item, headers, text, candidates, attachments, authentication, choices)

    def _choices(
        self, uow: UnitOfWork, item: ReviewItem, sender: str | None, people: list[Candidate]
    ) -> tuple[Choice, ...]:
        if item.status != ReviewStatus.PENDING:
            return ()
        today = self.clock().astimezone(self.timezone).date()
        pairs: list[tuple[Person, Person | None]] = [(c.person, None) for c in people]
        pairs += [(child, c.person) for c in people for child in c.children]
        return approval_choices(uow, str(item.kind), sender, pairs, today)

    def approve(
        self,
        item_id: int,
        username: str,
        actor: Actor,
        to: str | None = None,
        *,
        kind: str | None = None,
        note: str | None = None,
        confirmed: bool = False,
        remember: bool = False,
        remember_for: str | None = None,
    ) -> Approval:
        """Queue the link for `username`; `kind` confirms a link of another kind than asked,
        `confirmed` a person who is not among the request's candidates (a typo revokes links).
        `remember`: first add the sender's address to the person (for a minor student, to
        the guardian `remember_for`, needed when there are several), then send it there."""
        self.authorize(actor)
        now = self.clock()
        today = now.astimezone(self.timezone).date()
        with self.uow() as uow:
            item = self._pending(uow, item_id)
            person = uow.directory.get(username)
            if person is None:
                raise ReviewError(f"nessuna persona con codice {username}")
            _check_kind(item, person, today, kind)
            if not confirmed:
                _check_candidate(uow, item, username)
            owner = None
            if remember:
                minor = person.is_minor_on(today)
                owner = remember_sender(uow, item, person, minor, actor, now, remember_for)
                person, to = uow.directory.get(username) or person, to or item.sender
            guardians = uow.directory.guardians_of(username) if person.is_minor_on(today) else []
            address = _recipient(person, recipients(person, guardians, today), to)
            purpose, template = link_kind(person, today)
            revoked = tuple(r.address or "?" for r in uow.tokens.active(username, purpose, now))
            action = SendLink(username, purpose, address, template)
            self.mailer.queue(uow, action, item.message_id, now, review_id=item_id)
            uow.nudge()  # the daemon sends it at once, not at its next outbox tick
            sent = f"{template_label(template)} ({username})" + (
                f"; {_revoked(len(revoked))}" if revoked else ""
            )
            self._decide(uow, item, ReviewStatus.APPROVED, actor, now, note, sent)
            uow.commit()
        return Approval(template, username, address, revoked, owner)

    def reject(
        self, item_id: int, note: str, notify: bool, actor: Actor, *, extra: str | None = None
    ) -> str:
        self.authorize(actor)
        now = self.clock()
        with self.uow() as uow:
            item = self._pending(uow, item_id)
            sent = "niente"
            if notify:
                if not item.sender:
                    raise ReviewError("la richiesta non ha un mittente valido da avvisare")
                notice = SendReply(TEMPLATE_REJECTED, item.sender)
                self.mailer.queue(
                    uow, notice, item.message_id, now, context={"note": note}, review_id=item_id
                )
                sent = TEMPLATE_REJECTED
                uow.nudge()
            recorded = f"{note} ({extra})" if extra else note
            said = template_label(sent) if notify else NOTHING_SENT
            self._decide(uow, item, ReviewStatus.REJECTED, actor, now, recorded, said)
            uow.commit()
        return sent

    def discard(self, item_id: int, actor: Actor, *, note: str | None = None) -> None:
        self.authorize(actor)
        with self.uow() as uow:
            item = self._pending(uow, item_id)
            now = self.clock()
            self._decide(uow, item, ReviewStatus.DISCARDED, actor, now, note, NOTHING_SENT)
            uow.commit()

    def _item(self, uow: UnitOfWork, item_id: int) -> ReviewItem:
        item = uow.review.get(item_id)
        if item is None:
            raise ReviewError(f"nessuna richiesta con id {item_id}")
        return item

    def _pending(self, uow: UnitOfWork, item_id: int) -> ReviewItem:
        item = self._item(uow, item_id)
        if item.status != ReviewStatus.PENDING:
            raise AlreadyDecided(item_id, item.decided_by, item.status)
        return item


def _revoked(count: int) -> str:
    if count == 1:
        return "revocato 1 collegamento ancora valido"
    return f"revocati {count} collegamenti ancora validi"


def _candidate(uow: UnitOfWork, person: Person) -> Candidate:
    children = uow.directory.students_of([person.username]) if person.students else []
    return Candidate(person, tuple(children))


def _check_candidate(uow: UnitOfWork, item: ReviewItem, username: str) -> None:
    """Refuse a person `review show` does not list for the request, unless confirmed."""
    people = uow.directory.people_with_address(item.sender) if item.sender else []
    names: list[str] = []
    for candidate in (_candidate(uow, person) for person in people):
        names.append(candidate.person.username)
        names.extend(child.username for child in candidate.children)
    if username not in names:
        raise NotACandidate(username, list(dict.fromkeys(names)))


def _check_kind(item: ReviewItem, person: Person, today: date, kind: str | None) -> None:
    """Refuse a person whose link is not what the request asked for, unless confirmed."""
    gets = request_kind_of(person, today)
    if kind is not None and kind != gets:
        raise ReviewError(
            f"{person.username} riceverebbe il collegamento {link_label(gets)}, "
            f"non {link_label(kind)}"
        )
    if kind is None and str(item.kind) != gets:
        raise KindMismatch(person.username, str(item.kind), gets)


def _recipient(person: Person, addresses: tuple[str, ...], to: str | None) -> str:
    """One of the addresses that may receive mail about the account (see core.recipients)."""
    if to is not None:
        found = set(matching(addresses, to))
        if len(found) != 1:
            raise ReviewError(
                f"{to} non è un indirizzo registrato per {person.username} "
                f"(ammessi: {', '.join(addresses) or 'nessuno'})"
            )
        return found.pop()
    if len(addresses) == 1:
        return addresses[0]
    if not addresses:
        whose = "dei genitori/tutori" if person.role.value == "student" else "propri"
        raise ReviewError(f"{person.username} non ha indirizzi registrati ({whose})")
    raise AddressNeeded(person.username, addresses)


def remember_sender(
    uow: UnitOfWork,
    item: ReviewItem,
    person: Person,
    minor: bool,
    actor: Actor,
    now: datetime,
    owner_name: str | None = None,
) -> str:
    """Add the request's sender to the person who will read mail about `person`'s account
    (the person; for a minor student, one guardian); the owner's username."""
    sender = check_rememberable(uow, item)
    owner = _owner(uow, person, minor, owner_name)
    if matching(owner.emails, sender):
        raise ReviewError(f"{sender} è già in rubrica per {owner.username}")
    if not uow.remembered.add(owner.username, sender, str(actor), now, item.id):
        raise ReviewError(f"{sender} non può essere aggiunto a {owner.username}")
    detail = f"indirizzo del mittente della richiesta {item.id} aggiunto alla rubrica"
    entry = audit_entry(actor, now, "directory.remember", f"persona {owner.username}", detail)
    uow.audit.add(entry)
    return owner.username


def check_rememberable(uow: UnitOfWork, item: ReviewItem) -> str:
    """The request's sender, when it may be added to a person: never an address already
    on file for anyone (a minor's own, another family's, a teacher forwarding a parent's
    mail) and never a PEC gateway's (its From is the provider's, shared by every sender)."""
    if not item.sender:
        raise ReviewError("la richiesta non ha un mittente valido da aggiungere alla rubrica")
    if item.raw is not None and parse_message(item.raw).pec is not None:
        raise ReviewError(
            "la richiesta è arrivata via PEC: l'indirizzo del mittente è quello del gestore "
            "PEC e non si può aggiungere alla rubrica"
        )
    if uow.directory.people_with_address(normalize_address(item.sender)):
        raise ReviewError(
            f"{item.sender} è già in rubrica per un'altra persona: non si può aggiungere"
        )
    return item.sender


def _owner(uow: UnitOfWork, person: Person, minor: bool, name: str | None) -> Person:
    """Who the address is added to: an adult's own; a minor's guardian (named when the
    student has several on file)."""
    if not minor:
        if name not in (None, person.username):
            raise ReviewError(
                f"l'indirizzo si aggiunge a {person.username}, che riceve il collegamento"
            )
        return person
    guardians = uow.directory.guardians_of(person.username)
    if name is None and len(guardians) == 1:
        return guardians[0]
    found = [g for g in guardians if g.username == name]
    if name is None or not found:
        names = ", ".join(g.username for g in guardians) or "nessuno in rubrica"
        raise ReviewError(
            f"{person.username} è minorenne: indicare a quale genitore/tutore aggiungere "
            f"l'indirizzo ({names})"
        )
    return found[0]
