"""The secretariat's review queue: list, show, approve, reject, discard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from credmail.core.addresses import normalize_address
from credmail.core.decide import (
    PURPOSE_ADULT,
    PURPOSE_STUDENT,
    TEMPLATE_LINK_ADULT,
    TEMPLATE_LINK_STUDENT,
)
from credmail.core.values import Person, SendLink, SendReply
from credmail.service.outgoing import Mailer
from credmail.service.pipeline import Clock
from credmail.service.ports import ReviewItem, UnitOfWork, UnitOfWorkFactory

TEMPLATE_REJECTED = "review_rejected"


class ReviewError(Exception):
    """A review command that cannot be carried out, worded for the secretariat."""


@dataclass(frozen=True)
class ReviewDetail:
    item: ReviewItem
    headers: dict[str, str]
    text: str
    people: list[Person]


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

    def _authorize(self, by: str) -> None:
        if self.staff and by not in self.staff:
            raise ReviewError(f"{by} non è tra il personale autorizzato alla revisione")

    def pending(self) -> list[ReviewItem]:
        with self.uow(read_only=True) as uow:
            return uow.review.pending()

    def show(self, item_id: int) -> ReviewDetail:
        with self.uow(read_only=True) as uow:
            item = self._item(uow, item_id)
            people = uow.directory.people_with_address(item.sender) if item.sender else []
        headers, text = _summary(item.raw or b"")
        return ReviewDetail(item, headers, text, people)

    def approve(self, item_id: int, username: str, by: str, to: str | None = None) -> str:
        self._authorize(by)
        now = self.clock()
        with self.uow() as uow:
            item = self._pending(uow, item_id)
            person = uow.directory.get(username)
            if person is None:
                raise ReviewError(f"nessuna persona con username {username}")
            address = _recipient(uow, person, item.sender, to)
            minor = person.is_minor_on(now.astimezone(self.timezone).date())
            purpose, template = (
                (PURPOSE_STUDENT, TEMPLATE_LINK_STUDENT)
                if minor
                else (PURPOSE_ADULT, TEMPLATE_LINK_ADULT)
            )
            action = SendLink(username, purpose, address, template)
            self.mailer.queue(uow, action, item.message_id, now, review_id=item_id)
            sent = f"{template} for {username}"
            uow.review.record_decision(item_id, "approved", by, now, None, sent)
            uow.commit()
        return sent

    def reject(self, item_id: int, note: str, notify: bool, by: str) -> str:
        self._authorize(by)
        now = self.clock()
        with self.uow() as uow:
            item = self._pending(uow, item_id)
            sent = "nothing"
            if notify:
                if not item.sender:
                    raise ReviewError("la richiesta non ha un mittente valido da avvisare")
                notice = SendReply(TEMPLATE_REJECTED, item.sender)
                self.mailer.queue(
                    uow, notice, item.message_id, now, context={"note": note}, review_id=item_id
                )
                sent = TEMPLATE_REJECTED
            uow.review.record_decision(item_id, "rejected", by, now, note, sent)
            uow.commit()
        return sent

    def discard(self, item_id: int, by: str) -> None:
        self._authorize(by)
        with self.uow() as uow:
            self._pending(uow, item_id)
            uow.review.record_decision(item_id, "discarded", by, self.clock(), None, "nothing")
            uow.commit()

    def _item(self, uow: UnitOfWork, item_id: int) -> ReviewItem:
        item = uow.review.get(item_id)
        if item is None:
            raise ReviewError(f"nessuna richiesta con id {item_id}")
        return item

    def _pending(self, uow: UnitOfWork, item_id: int) -> ReviewItem:
        item = self._item(uow, item_id)
        if item.status != "pending":
            raise ReviewError(f"la richiesta {item_id} è già stata decisa ({item.status})")
        return item


def _recipient(uow: UnitOfWork, person: Person, sender: str | None, to: str | None) -> str:
    """An address on file for the person (for a student, also their guardians')."""
    on_file = list(person.emails)
    for guardian in uow.directory.guardians_of(person.username):
        on_file += guardian.emails
    by_key = {normalize_address(a): a for a in on_file}
    if to is not None:
        key = normalize_address(to)
        if key not in by_key:
            raise ReviewError(f"{to} non è un indirizzo registrato per {person.username}")
        return by_key[key]
    if sender in by_key:
        return by_key[sender]
    if len(by_key) == 1:
        return next(iter(by_key.values()))
    if not by_key:
        raise ReviewError(f"{person.username} non ha indirizzi registrati")
    raise ReviewError(
        f"{person.username} ha {len(by_key)} indirizzi registrati: sceglierne uno con --to"
    )


def _summary(raw: bytes) -> tuple[dict[str, str], str]:
    msg = message_from_bytes(raw, policy=policy.default)
    headers = {}
    for name in ("From", "To", "Subject", "Date", "Reply-To", "Message-ID"):
        try:
            value = msg.get(name)
        except Exception:
            value = "(illeggibile)"
        if value is not None:
            headers[name] = str(value)
    text = ""
    if isinstance(msg, EmailMessage):
        try:
            body = msg.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
        except Exception:
            text = "(testo illeggibile)"
    return headers, str(text)[:4000]


def fmt_time(moment: datetime, timezone: ZoneInfo) -> str:
    return moment.astimezone(timezone).strftime("%d/%m/%Y %H:%M")


REASON_LABELS = {
    "missing_from": "manca il mittente (From)",
    "repeated_from": "il campo From compare più volte",
    "multi_address_from": "il campo From contiene più indirizzi",
    "malformed_from": "il campo From è malformato",
    "non_ascii_local_part": "l'indirizzo del mittente contiene caratteri non ASCII",
    "malformed_subject": "l'oggetto è malformato",
    "reply_prefix": "l'oggetto è una risposta o un inoltro (Re:, I:, Fwd: …)",
    "unknown_sender": "l'indirizzo del mittente non è registrato",
    "ambiguous_person": "l'indirizzo appartiene a più persone e il messaggio non indica quale",
    "not_guardian": "il mittente non è un genitore/tutore registrato",
    "no_linked_student": "il genitore/tutore non ha studenti collegati",
    "ambiguous_student": "il genitore/tutore ha più studenti e il messaggio non indica quale",
    "adult_student": "lo studente indicato è maggiorenne",
    "processing_error": "il messaggio non è stato elaborato per un errore",
    "oversize": "il messaggio supera la dimensione massima",
    "too_many_attempts": "l'elaborazione si è interrotta più volte",
    "delivery_failed": "la risposta non è stata consegnata (errore permanente del server)",
    "display_name_address": "il nome del mittente contiene un indirizzo o una @",
    "display_name_encoded": "il nome del mittente contiene una parte codificata illeggibile",
    "display_name_control": "il nome del mittente contiene caratteri invisibili o di controllo",
    "display_name_mixed_script": "il nome del mittente mescola alfabeti che si somigliano",
    "display_name_too_long": "il nome del mittente è troppo lungo",
    "header_smuggling": "le intestazioni hanno fine riga anomale: il mittente può essere falso",
    "header_too_long": "un'intestazione del messaggio è troppo lunga ed è stata ignorata",
    "mime_too_complex": "il messaggio ha troppe parti, o parti troppo complesse, per essere letto",
    "confusable_domain": "il dominio del mittente usa caratteri ingannevoli o misti",
    "auth_results_conflict": "più intestazioni Authentication-Results attendibili",
    "auth_results_unparseable": "intestazione Authentication-Results illeggibile",
    "unauthenticated_sender": "il mittente non è autenticato (DMARC/DKIM)",
    "rate_limited": "troppe richieste per questo account o indirizzo",
    "circuit_breaker": "limite orario globale raggiunto: invii sospesi",
    "undecided": "nessuna regola ha permesso una risposta automatica",
}


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code, code)
