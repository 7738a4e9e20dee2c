"""Forse richieste di credenziali: the near misses, and the secretariat's one-step actions.

Treating a near miss as a request runs the normal decision with every check (the sender
on file, the student named, the limits): a collegamento only ever goes to an address on
file. The message is then moved by the daemon's next sync, like a request, and its
keyword taken off; dismissing leaves it where it is and takes the keyword off.
`open_near_misses` is the query the secretariat's daily digest lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from credmail.core.decide import decide
from credmail.core.parse import parse_message
from credmail.core.values import (
    Classification,
    Decision,
    Outcome,
    RequestKind,
    SendLink,
    SendReply,
)
from credmail.service.desks.base import DeskError
from credmail.service.handle_request import MessageProcessor
from credmail.service.ports import (
    Clock,
    NearMissRecord,
    NearMissStatus,
    UnitOfWork,
    UnitOfWorkFactory,
)
from credmail.service.review import Actor, audit_entry

TREAT_ADULT, TREAT_STUDENT, DISMISS = "adult", "student", "dismiss"
MAX_NAME = 200


@dataclass(frozen=True)
class NearMissSummary:
    """One open near miss as a digest lists it (no body, no raw message)."""

    id: int
    received_at: datetime
    sender: str | None
    subject: str
    rule: str
    guided: bool


@dataclass(frozen=True)
class Treated:
    """What treating a near miss did: the decision's outcome and its reasons."""

    near_miss_id: int
    outcome: str
    reasons: tuple[str, ...]


def open_near_misses(uow: UnitOfWork) -> list[NearMissSummary]:
    """The open near misses, oldest first (the daily digest's query)."""
    return [
        NearMissSummary(r.id, r.created_at, r.sender, r.subject, r.rule, r.guided)
        for r in uow.near_misses.listing(NearMissStatus.OPEN)
    ]


class NearMissDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        processor: MessageProcessor,
        clock: Clock,
        authorize: Callable[[Actor], None],
    ) -> None:
        """`authorize`: the review desk's (review.staff, then the role): treating a near
        miss decides a request, dismissing one closes it."""
        self.uow, self.processor, self.clock = uow, processor, clock
        self.authorize = authorize
        self.log = structlog.get_logger("credmail.near_miss")

    def listing(self, status: str | None = NearMissStatus.OPEN) -> list[NearMissRecord]:
        with self.uow(read_only=True) as uow:
            return uow.near_misses.listing(status)

    def open_items(self) -> list[NearMissSummary]:
        with self.uow(read_only=True) as uow:
            return open_near_misses(uow)

    def count_open(self) -> int:
        with self.uow(read_only=True) as uow:
            return uow.near_misses.count_open()

    def treat(
        self, near_miss_id: int, actor: Actor, kind: str, student: str | None = None
    ) -> Treated:
        """Treat as an adult's request, or as a request for the named student."""
        self.authorize(actor)
        if kind not in (TREAT_ADULT, TREAT_STUDENT):
            raise DeskError("scegliere se la richiesta è per sé o per uno studente")
        name = " ".join((student or "").split())[:MAX_NAME]
        if kind == TREAT_STUDENT and not name:
            raise DeskError("scrivere il nome e il cognome dello studente")
        now = self.clock()
        with self.uow() as uow:
            record = _open(uow, near_miss_id)
            if record.raw is None or record.ledger_id is None:
                raise DeskError(f"il messaggio {near_miss_id} non è più disponibile")
            request = RequestKind.STUDENT if kind == TREAT_STUDENT else RequestKind.ADULT
            treated = Classification(request, True, rest=name)
            decision = decide_treated(self.processor, uow, record.ledger_id, record.raw, treated)
            _close(uow, record, NearMissStatus.TREATED, actor, kind, decision.outcome, now)
            detail = f"trattato come richiesta {'per uno studente' if name else 'per sé'}"
            uow.audit.add(audit_entry(actor, now, "near_miss.treat", _item(record), detail))
            uow.commit()
        self.log.info(
            "near_miss.treated", id=near_miss_id, kind=kind, outcome=str(decision.outcome)
        )
        return Treated(near_miss_id, str(decision.outcome), decision.reasons)

    def dismiss(self, near_miss_id: int, actor: Actor) -> None:
        """Not a request: the message stays where it is, without the keyword."""
        self.authorize(actor)
        now = self.clock()
        with self.uow() as uow:
            record = _open(uow, near_miss_id)
            _close(uow, record, NearMissStatus.DISMISSED, actor, DISMISS, None, now)
            uow.audit.add(audit_entry(actor, now, "near_miss.dismiss", _item(record)))
            uow.commit()
        self.log.info("near_miss.dismissed", id=near_miss_id)


def decide_treated(
    processor: MessageProcessor,
    uow: UnitOfWork,
    ledger_id: int,
    raw: bytes,
    treated: Classification,
) -> Decision:
    """A near miss a person treated as a request: the normal decision, with every check,
    recorded on the message's ledger entry (the daemon's next sync moves the message)."""
    now = processor.clock()
    mail = parse_message(raw)
    sender_auth = processor.authenticator.check(raw, mail)
    if treated.rest:  # the student a person named: only that name chooses
        mail = replace(mail, text="", html_text="")
    facts = processor.facts(uow, mail, sender_auth, now, treated)
    decision = processor.limiter.limit(uow, decide(facts), now)
    target = processor.policy.folders.get(decision.outcome)
    uow.ledger.retarget(ledger_id, decision.outcome, decision.reasons, target)
    processor.apply(uow, decision, facts, raw, ledger_id, now)
    if any(isinstance(a, SendLink | SendReply) for a in decision.actions):
        processor.on_outbox()
    return decision


def _open(uow: UnitOfWork, near_miss_id: int) -> NearMissRecord:
    record = uow.near_misses.get(near_miss_id)
    if record is None:
        raise DeskError(f"nessun messaggio con numero {near_miss_id}")
    if record.status != NearMissStatus.OPEN:
        raise DeskError(f"il messaggio {near_miss_id} è già stato gestito")
    return record


def _close(
    uow: UnitOfWork,
    record: NearMissRecord,
    status: str,
    actor: Actor,
    decision: str,
    outcome: Outcome | None,
    now: datetime,
) -> None:
    """Close the record first of all: a second click or a colleague's finds it closed."""
    value = str(outcome) if outcome is not None else None
    if not uow.near_misses.decide(record.id, status, str(actor), decision, value, now):
        raise DeskError(f"il messaggio {record.id} è già stato gestito")


def _item(record: NearMissRecord) -> str:
    return f"messaggio {record.id}"
